# mypy: ignore-errors
from proto.broker.v1 import errors_pb2 as _errors_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamEmpty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamRef(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class CreateStreamRequest(_message.Message):
    __slots__ = ("stream", "shard_count")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    shard_count: int
    def __init__(self, stream: _Optional[str] = ..., shard_count: _Optional[int] = ...) -> None: ...

class Shard(_message.Message):
    __slots__ = ("shard_id", "starting_hash_key", "ending_hash_key", "starting_sequence_number", "ending_sequence_number", "parent_shard_id")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    STARTING_HASH_KEY_FIELD_NUMBER: _ClassVar[int]
    ENDING_HASH_KEY_FIELD_NUMBER: _ClassVar[int]
    STARTING_SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ENDING_SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PARENT_SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    starting_hash_key: str
    ending_hash_key: str
    starting_sequence_number: str
    ending_sequence_number: str
    parent_shard_id: str
    def __init__(self, shard_id: _Optional[str] = ..., starting_hash_key: _Optional[str] = ..., ending_hash_key: _Optional[str] = ..., starting_sequence_number: _Optional[str] = ..., ending_sequence_number: _Optional[str] = ..., parent_shard_id: _Optional[str] = ...) -> None: ...

class StreamDescription(_message.Message):
    __slots__ = ("stream", "arn", "status", "shards", "retention_hours")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    ARN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_HOURS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    arn: str
    status: str
    shards: _containers.RepeatedCompositeFieldContainer[Shard]
    retention_hours: int
    def __init__(self, stream: _Optional[str] = ..., arn: _Optional[str] = ..., status: _Optional[str] = ..., shards: _Optional[_Iterable[_Union[Shard, _Mapping]]] = ..., retention_hours: _Optional[int] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams",)
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, streams: _Optional[_Iterable[str]] = ...) -> None: ...

class PutRecord(_message.Message):
    __slots__ = ("data", "partition_key", "explicit_hash_key")
    DATA_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_HASH_KEY_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    partition_key: str
    explicit_hash_key: str
    def __init__(self, data: _Optional[bytes] = ..., partition_key: _Optional[str] = ..., explicit_hash_key: _Optional[str] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("stream", "records")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    records: _containers.RepeatedCompositeFieldContainer[PutRecord]
    def __init__(self, stream: _Optional[str] = ..., records: _Optional[_Iterable[_Union[PutRecord, _Mapping]]] = ...) -> None: ...

class PutResult(_message.Message):
    __slots__ = ("shard_id", "sequence_number", "error")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    sequence_number: str
    error: _errors_pb2.ErrorDetail
    def __init__(self, shard_id: _Optional[str] = ..., sequence_number: _Optional[str] = ..., error: _Optional[_Union[_errors_pb2.ErrorDetail, _Mapping]] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PutResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PutResult, _Mapping]]] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("type", "sequence_number", "timestamp_ms")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TRIM_HORIZON: _ClassVar[Position.Type]
        LATEST: _ClassVar[Position.Type]
        AT_SEQUENCE_NUMBER: _ClassVar[Position.Type]
        AFTER_SEQUENCE_NUMBER: _ClassVar[Position.Type]
        AT_TIMESTAMP: _ClassVar[Position.Type]
    TRIM_HORIZON: Position.Type
    LATEST: Position.Type
    AT_SEQUENCE_NUMBER: Position.Type
    AFTER_SEQUENCE_NUMBER: Position.Type
    AT_TIMESTAMP: Position.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    type: Position.Type
    sequence_number: str
    timestamp_ms: int
    def __init__(self, type: _Optional[_Union[Position.Type, str]] = ..., sequence_number: _Optional[str] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("stream", "shard_id", "position", "next", "limit")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    shard_id: str
    position: Position
    next: str
    limit: int
    def __init__(self, stream: _Optional[str] = ..., shard_id: _Optional[str] = ..., position: _Optional[_Union[Position, _Mapping]] = ..., next: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("data", "partition_key", "sequence_number", "arrival_timestamp_ms")
    DATA_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    partition_key: str
    sequence_number: str
    arrival_timestamp_ms: int
    def __init__(self, data: _Optional[bytes] = ..., partition_key: _Optional[str] = ..., sequence_number: _Optional[str] = ..., arrival_timestamp_ms: _Optional[int] = ...) -> None: ...

class ReadResponse(_message.Message):
    __slots__ = ("records", "next", "millis_behind_latest")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    MILLIS_BEHIND_LATEST_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    next: str
    millis_behind_latest: int
    def __init__(self, records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., next: _Optional[str] = ..., millis_behind_latest: _Optional[int] = ...) -> None: ...
