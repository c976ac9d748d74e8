# mypy: ignore-errors
from proto.broker.v1 import streams_pb2 as _streams_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupsEmpty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GroupRef(_message.Message):
    __slots__ = ("stream", "group")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ...) -> None: ...

class MemberRef(_message.Message):
    __slots__ = ("stream", "group", "member")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    member: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., member: _Optional[str] = ...) -> None: ...

class JoinGroupRequest(_message.Message):
    __slots__ = ("stream", "group", "member", "session_timeout_ms", "start")
    class Start(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TRIM_HORIZON: _ClassVar[JoinGroupRequest.Start]
        LATEST: _ClassVar[JoinGroupRequest.Start]
    TRIM_HORIZON: JoinGroupRequest.Start
    LATEST: JoinGroupRequest.Start
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    SESSION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    member: str
    session_timeout_ms: int
    start: JoinGroupRequest.Start
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., member: _Optional[str] = ..., session_timeout_ms: _Optional[int] = ..., start: _Optional[_Union[JoinGroupRequest.Start, str]] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ("stream", "group", "member", "shard_id", "sequence_number")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    member: str
    shard_id: str
    sequence_number: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., member: _Optional[str] = ..., shard_id: _Optional[str] = ..., sequence_number: _Optional[str] = ...) -> None: ...

class AssignedShard(_message.Message):
    __slots__ = ("shard_id", "checkpoint", "start")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    checkpoint: str
    start: _streams_pb2.Position
    def __init__(self, shard_id: _Optional[str] = ..., checkpoint: _Optional[str] = ..., start: _Optional[_Union[_streams_pb2.Position, _Mapping]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("generation", "shards", "session_timeout_ms")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    SESSION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    generation: int
    shards: _containers.RepeatedCompositeFieldContainer[AssignedShard]
    session_timeout_ms: int
    def __init__(self, generation: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[AssignedShard, _Mapping]]] = ..., session_timeout_ms: _Optional[int] = ...) -> None: ...

class GroupMember(_message.Message):
    __slots__ = ("member", "session_expires_ms", "shard_ids")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    SESSION_EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    member: str
    session_expires_ms: int
    shard_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, member: _Optional[str] = ..., session_expires_ms: _Optional[int] = ..., shard_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ShardCheckpoint(_message.Message):
    __slots__ = ("shard_id", "sequence_number", "owner")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    sequence_number: str
    owner: str
    def __init__(self, shard_id: _Optional[str] = ..., sequence_number: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class GroupDescription(_message.Message):
    __slots__ = ("stream", "group", "generation", "session_timeout_ms", "start", "created_ms", "members", "shards")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    generation: int
    session_timeout_ms: int
    start: JoinGroupRequest.Start
    created_ms: int
    members: _containers.RepeatedCompositeFieldContainer[GroupMember]
    shards: _containers.RepeatedCompositeFieldContainer[ShardCheckpoint]
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., generation: _Optional[int] = ..., session_timeout_ms: _Optional[int] = ..., start: _Optional[_Union[JoinGroupRequest.Start, str]] = ..., created_ms: _Optional[int] = ..., members: _Optional[_Iterable[_Union[GroupMember, _Mapping]]] = ..., shards: _Optional[_Iterable[_Union[ShardCheckpoint, _Mapping]]] = ...) -> None: ...

class ListGroupsRequest(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class ListGroupsResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, groups: _Optional[_Iterable[str]] = ...) -> None: ...
