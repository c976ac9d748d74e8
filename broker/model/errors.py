"""The one error hierarchy of RaftMQ.

Every client-visible failure is a ``BrokerError``: the model raises (or returns) them, front ends map them once per
wire protocol. ``code`` is the AWS error code as the JSON protocols spell it (the shape name, e.g.
``QueueDoesNotExist``); the protocol codecs look up the legacy Query code (``AWS.SimpleQueueService.NonExistentQueue``)
and the HTTP status in the pinned service model when the error is modelled there, and fall back to the values given
here otherwise.

    BrokerError
    ├── InvalidParameterValue, MissingParameter, InvalidAttributeName, ...   (400, sender)
    ├── QueueDoesNotExist, QueueAlreadyExists, ...                             (400, sender, modelled)
    └── InternalFailure                                                        (500, receiver)
"""

from __future__ import annotations


class BrokerError(Exception):
    """A failure reported to the client in the AWS error format of the protocol it spoke."""

    code: str = "InternalFailure"
    status: int = 400
    sender_fault: bool = True
    default_message: str = ""
    query_code: str | None = None  # legacy Query-protocol code when it differs from ``code``

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        sender_fault: bool | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if sender_fault is not None:
            self.sender_fault = sender_fault
        super().__init__(self.message)

    @property
    def legacy_code(self) -> str:
        """The code Query-protocol clients (and awsQueryCompatible JSON clients) expect."""
        return self.query_code or self.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BrokerError) and (self.code, self.message, self.status) == (
            other.code,
            other.message,
            other.status,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.message))


def _error(
    code: str, status: int = 400, message: str = "", sender_fault: bool = True, query_code: str | None = None
) -> type[BrokerError]:
    return type(
        code,
        (BrokerError,),
        {
            "code": code,
            "status": status,
            "default_message": message,
            "sender_fault": sender_fault,
            "query_code": query_code,
            "__module__": __name__,
        },
    )


# Common errors of every AWS service (not in the service models).
InvalidParameterValue = _error("InvalidParameterValue")
InvalidParameterCombination = _error("InvalidParameterCombination")
MissingParameter = _error("MissingParameter")
InvalidAction = _error("InvalidAction")
InvalidQueryParameter = _error("InvalidQueryParameter")
MalformedQueryString = _error("MalformedQueryString")
SerializationException = _error("SerializationException")
ValidationError = _error("ValidationError")
UnknownOperationException = _error("UnknownOperationException")
AccessDenied = _error("AccessDenied", 403)
InvalidClientTokenId = _error("InvalidClientTokenId", 403)
RequestEntityTooLarge = _error("RequestEntityTooLarge", 413, "Request entity too large.")
InternalFailure = _error("InternalFailure", 500, "We encountered an internal error. Please try again.", False)
ServiceUnavailable = _error("ServiceUnavailable", 503, "Service is unable to handle request.", False)

# SQS errors modelled in sqs-2012-11-05.json (codes are the model's shape names).
QueueDoesNotExist = _error(
    "QueueDoesNotExist",
    400,
    "The specified queue does not exist.",
    query_code="AWS.SimpleQueueService.NonExistentQueue",
)
QueueNameExists = _error("QueueNameExists", 400, query_code="QueueAlreadyExists")
QueueDeletedRecently = _error("QueueDeletedRecently", 400, query_code="AWS.SimpleQueueService.QueueDeletedRecently")
InvalidAttributeName = _error("InvalidAttributeName", 400)
InvalidAttributeValue = _error("InvalidAttributeValue", 400)
InvalidMessageContents = _error("InvalidMessageContents", 400)
MessageNotInflight = _error("MessageNotInflight", 400, query_code="AWS.SimpleQueueService.MessageNotInflight")
ReceiptHandleIsInvalid = _error("ReceiptHandleIsInvalid", 400)
InvalidIdFormat = _error("InvalidIdFormat", 400)
PurgeQueueInProgress = _error("PurgeQueueInProgress", 400, query_code="AWS.SimpleQueueService.PurgeQueueInProgress")
OverLimit = _error("OverLimit", 403)
TooManyEntriesInBatchRequest = _error(
    "TooManyEntriesInBatchRequest", 400, query_code="AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
)
EmptyBatchRequest = _error("EmptyBatchRequest", 400, query_code="AWS.SimpleQueueService.EmptyBatchRequest")
BatchEntryIdsNotDistinct = _error(
    "BatchEntryIdsNotDistinct", 400, query_code="AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
)
BatchRequestTooLong = _error("BatchRequestTooLong", 400, query_code="AWS.SimpleQueueService.BatchRequestTooLong")
InvalidBatchEntryId = _error("InvalidBatchEntryId", 400, query_code="AWS.SimpleQueueService.InvalidBatchEntryId")
UnsupportedOperation = _error("UnsupportedOperation", 400, query_code="AWS.SimpleQueueService.UnsupportedOperation")
InvalidSecurity = _error("InvalidSecurity", 403)
ResourceNotFoundException = _error("ResourceNotFoundException", 404)
RequestThrottled = _error("RequestThrottled", 400)
InvalidAddress = _error("InvalidAddress", 404, "The address is not valid for this endpoint.")

# SNS errors modelled in sns-2010-03-31.json (codes are the model's shape names; the model gives the Query code).
NotFoundException = _error("NotFoundException", 404, query_code="NotFound")
InvalidParameterException = _error("InvalidParameterException", 400, query_code="InvalidParameter")
SnsInvalidParameterValue = _error("InvalidParameterValueException", 400, query_code="ParameterValueInvalid")
AuthorizationErrorException = _error("AuthorizationErrorException", 403, query_code="AuthorizationError")
TopicLimitExceededException = _error("TopicLimitExceededException", 403, query_code="TopicLimitExceeded")
SubscriptionLimitExceededException = _error(
    "SubscriptionLimitExceededException", 403, query_code="SubscriptionLimitExceeded")
FilterPolicyLimitExceededException = _error(
    "FilterPolicyLimitExceededException", 403, query_code="FilterPolicyLimitExceeded")
TagLimitExceededException = _error("TagLimitExceededException", 400, query_code="TagLimitExceeded")
SnsEmptyBatchRequest = _error("EmptyBatchRequestException", 400, query_code="EmptyBatchRequest")
SnsTooManyEntriesInBatchRequest = _error(
    "TooManyEntriesInBatchRequestException", 400, query_code="TooManyEntriesInBatchRequest")
SnsBatchEntryIdsNotDistinct = _error("BatchEntryIdsNotDistinctException", 400, query_code="BatchEntryIdsNotDistinct")
SnsBatchRequestTooLong = _error("BatchRequestTooLongException", 400, query_code="BatchRequestTooLong")
SnsInvalidBatchEntryId = _error("InvalidBatchEntryIdException", 400, query_code="InvalidBatchEntryId")
