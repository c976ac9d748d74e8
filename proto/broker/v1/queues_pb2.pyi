# mypy: ignore-errors
from proto.broker.v1 import errors_pb2 as _errors_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueueRef(_message.Message):
    __slots__ = ("queue", "account")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    queue: str
    account: str
    def __init__(self, queue: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class CreateQueueRequest(_message.Message):
    __slots__ = ("queue", "attributes", "tags")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    attributes: _containers.ScalarMap[str, str]
    tags: _containers.ScalarMap[str, str]
    def __init__(self, queue: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListQueuesRequest(_message.Message):
    __slots__ = ("prefix", "max_results", "next_token")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    max_results: int
    next_token: str
    def __init__(self, prefix: _Optional[str] = ..., max_results: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListQueuesResponse(_message.Message):
    __slots__ = ("queues", "next_token")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedScalarFieldContainer[str]
    next_token: str
    def __init__(self, queues: _Optional[_Iterable[str]] = ..., next_token: _Optional[str] = ...) -> None: ...

class GetQueueAttributesRequest(_message.Message):
    __slots__ = ("queue", "names")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, queue: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class QueueAttributes(_message.Message):
    __slots__ = ("attributes",)
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SetQueueAttributesRequest(_message.Message):
    __slots__ = ("queue", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, queue: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AttributeValue(_message.Message):
    __slots__ = ("data_type", "string_value", "binary_value")
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BINARY_VALUE_FIELD_NUMBER: _ClassVar[int]
    data_type: str
    string_value: str
    binary_value: bytes
    def __init__(self, data_type: _Optional[str] = ..., string_value: _Optional[str] = ..., binary_value: _Optional[bytes] = ...) -> None: ...

class SendEntry(_message.Message):
    __slots__ = ("body", "delay_seconds", "group_id", "deduplication_id", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    BODY_FIELD_NUMBER: _ClassVar[int]
    DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    body: str
    delay_seconds: int
    group_id: str
    deduplication_id: str
    attributes: _containers.MessageMap[str, AttributeValue]
    def __init__(self, body: _Optional[str] = ..., delay_seconds: _Optional[int] = ..., group_id: _Optional[str] = ..., deduplication_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ...) -> None: ...

class SendRequest(_message.Message):
    __slots__ = ("queue", "entries")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    entries: _containers.RepeatedCompositeFieldContainer[SendEntry]
    def __init__(self, queue: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[SendEntry, _Mapping]]] = ...) -> None: ...

class SendResult(_message.Message):
    __slots__ = ("message_id", "sequence_number", "md5_of_body", "error")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MD5_OF_BODY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sequence_number: str
    md5_of_body: str
    error: _errors_pb2.ErrorDetail
    def __init__(self, message_id: _Optional[str] = ..., sequence_number: _Optional[str] = ..., md5_of_body: _Optional[str] = ..., error: _Optional[_Union[_errors_pb2.ErrorDetail, _Mapping]] = ...) -> None: ...

class SendResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SendResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SendResult, _Mapping]]] = ...) -> None: ...

class ReceiveRequest(_message.Message):
    __slots__ = ("queue", "max_messages", "visibility_timeout", "wait_seconds", "attempt_id")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    queue: str
    max_messages: int
    visibility_timeout: int
    wait_seconds: int
    attempt_id: str
    def __init__(self, queue: _Optional[str] = ..., max_messages: _Optional[int] = ..., visibility_timeout: _Optional[int] = ..., wait_seconds: _Optional[int] = ..., attempt_id: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("message_id", "receipt_handle", "body", "md5_of_body", "attributes", "receive_count", "sent_timestamp_ms", "first_receive_timestamp_ms", "group_id", "deduplication_id", "sequence_number", "sender_id")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_HANDLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    MD5_OF_BODY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SENT_TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_RECEIVE_TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    attributes: _containers.MessageMap[str, AttributeValue]
    receive_count: int
    sent_timestamp_ms: int
    first_receive_timestamp_ms: int
    group_id: str
    deduplication_id: str
    sequence_number: str
    sender_id: str
    def __init__(self, message_id: _Optional[str] = ..., receipt_handle: _Optional[str] = ..., body: _Optional[str] = ..., md5_of_body: _Optional[str] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ..., receive_count: _Optional[int] = ..., sent_timestamp_ms: _Optional[int] = ..., first_receive_timestamp_ms: _Optional[int] = ..., group_id: _Optional[str] = ..., deduplication_id: _Optional[str] = ..., sequence_number: _Optional[str] = ..., sender_id: _Optional[str] = ...) -> None: ...

class ReceiveResponse(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("queue", "receipt_handles")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_HANDLES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    receipt_handles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, queue: _Optional[str] = ..., receipt_handles: _Optional[_Iterable[str]] = ...) -> None: ...

class VisibilityChange(_message.Message):
    __slots__ = ("receipt_handle", "visibility_timeout")
    RECEIPT_HANDLE_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    receipt_handle: str
    visibility_timeout: int
    def __init__(self, receipt_handle: _Optional[str] = ..., visibility_timeout: _Optional[int] = ...) -> None: ...

class ChangeVisibilityRequest(_message.Message):
    __slots__ = ("queue", "changes")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    changes: _containers.RepeatedCompositeFieldContainer[VisibilityChange]
    def __init__(self, queue: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[VisibilityChange, _Mapping]]] = ...) -> None: ...

class EntryFailure(_message.Message):
    __slots__ = ("index", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    error: _errors_pb2.ErrorDetail
    def __init__(self, index: _Optional[int] = ..., error: _Optional[_Union[_errors_pb2.ErrorDetail, _Mapping]] = ...) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("failures",)
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    failures: _containers.RepeatedCompositeFieldContainer[EntryFailure]
    def __init__(self, failures: _Optional[_Iterable[_Union[EntryFailure, _Mapping]]] = ...) -> None: ...

class ConsumeStart(_message.Message):
    __slots__ = ("queue", "max_in_flight", "visibility_timeout", "max_batch")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    queue: str
    max_in_flight: int
    visibility_timeout: int
    max_batch: int
    def __init__(self, queue: _Optional[str] = ..., max_in_flight: _Optional[int] = ..., visibility_timeout: _Optional[int] = ..., max_batch: _Optional[int] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ("start", "ack", "nack", "extend")
    START_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    EXTEND_FIELD_NUMBER: _ClassVar[int]
    start: ConsumeStart
    ack: Ack
    nack: Nack
    extend: Extend
    def __init__(self, start: _Optional[_Union[ConsumeStart, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., nack: _Optional[_Union[Nack, _Mapping]] = ..., extend: _Optional[_Union[Extend, _Mapping]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("token", "receipt_handles")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_HANDLES_FIELD_NUMBER: _ClassVar[int]
    token: int
    receipt_handles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, token: _Optional[int] = ..., receipt_handles: _Optional[_Iterable[str]] = ...) -> None: ...

class Nack(_message.Message):
    __slots__ = ("token", "receipt_handles")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_HANDLES_FIELD_NUMBER: _ClassVar[int]
    token: int
    receipt_handles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, token: _Optional[int] = ..., receipt_handles: _Optional[_Iterable[str]] = ...) -> None: ...

class Extend(_message.Message):
    __slots__ = ("token", "receipt_handles", "visibility_timeout")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_HANDLES_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    token: int
    receipt_handles: _containers.RepeatedScalarFieldContainer[str]
    visibility_timeout: int
    def __init__(self, token: _Optional[int] = ..., receipt_handles: _Optional[_Iterable[str]] = ..., visibility_timeout: _Optional[int] = ...) -> None: ...

class Settled(_message.Message):
    __slots__ = ("token", "failures")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    token: int
    failures: _containers.RepeatedCompositeFieldContainer[EntryFailure]
    def __init__(self, token: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[EntryFailure, _Mapping]]] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ("messages", "settled")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    messages: ReceiveResponse
    settled: Settled
    def __init__(self, messages: _Optional[_Union[ReceiveResponse, _Mapping]] = ..., settled: _Optional[_Union[Settled, _Mapping]] = ...) -> None: ...
