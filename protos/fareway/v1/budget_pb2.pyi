import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Window(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WINDOW_UNSPECIFIED: _ClassVar[Window]
    WINDOW_DAY: _ClassVar[Window]
    WINDOW_MONTH: _ClassVar[Window]
    WINDOW_TOTAL: _ClassVar[Window]

class OnExceed(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ON_EXCEED_UNSPECIFIED: _ClassVar[OnExceed]
    ON_EXCEED_REJECT: _ClassVar[OnExceed]
    ON_EXCEED_CHEAPEST_ONLY: _ClassVar[OnExceed]
WINDOW_UNSPECIFIED: Window
WINDOW_DAY: Window
WINDOW_MONTH: Window
WINDOW_TOTAL: Window
ON_EXCEED_UNSPECIFIED: OnExceed
ON_EXCEED_REJECT: OnExceed
ON_EXCEED_CHEAPEST_ONLY: OnExceed

class BudgetLimit(_message.Message):
    __slots__ = ("window", "cap_micros", "soft_fraction", "on_exceed", "spent_micros", "reserved_micros", "resets_at")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CAP_MICROS_FIELD_NUMBER: _ClassVar[int]
    SOFT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    ON_EXCEED_FIELD_NUMBER: _ClassVar[int]
    SPENT_MICROS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MICROS_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    window: Window
    cap_micros: int
    soft_fraction: float
    on_exceed: OnExceed
    spent_micros: int
    reserved_micros: int
    resets_at: _timestamp_pb2.Timestamp
    def __init__(self, window: _Optional[_Union[Window, str]] = ..., cap_micros: _Optional[int] = ..., soft_fraction: _Optional[float] = ..., on_exceed: _Optional[_Union[OnExceed, str]] = ..., spent_micros: _Optional[int] = ..., reserved_micros: _Optional[int] = ..., resets_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("tenant", "limits", "latency_target_ms", "latency_attainment")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_ATTAINMENT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    limits: _containers.RepeatedCompositeFieldContainer[BudgetLimit]
    latency_target_ms: int
    latency_attainment: float
    def __init__(self, tenant: _Optional[str] = ..., limits: _Optional[_Iterable[_Union[BudgetLimit, _Mapping]]] = ..., latency_target_ms: _Optional[int] = ..., latency_attainment: _Optional[float] = ...) -> None: ...

class GetBudgetRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class SetBudgetRequest(_message.Message):
    __slots__ = ("tenant", "limits", "latency_target_ms")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    limits: _containers.RepeatedCompositeFieldContainer[BudgetLimit]
    latency_target_ms: int
    def __init__(self, tenant: _Optional[str] = ..., limits: _Optional[_Iterable[_Union[BudgetLimit, _Mapping]]] = ..., latency_target_ms: _Optional[int] = ...) -> None: ...
