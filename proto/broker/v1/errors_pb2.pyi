# mypy: ignore-errors
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorDetail(_message.Message):
    __slots__ = ("code", "message", "sender_fault", "http_status", "retryable")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SENDER_FAULT_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    sender_fault: bool
    http_status: int
    retryable: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., sender_fault: _Optional[bool] = ..., http_status: _Optional[int] = ..., retryable: _Optional[bool] = ...) -> None: ...
