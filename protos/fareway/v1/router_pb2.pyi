from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]
    ROLE_TOOL: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
ROLE_TOOL: Role

class Message(_message.Message):
    __slots__ = ("role", "content", "tool_calls", "tool_call_id", "images")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    tool_call_id: str
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ..., images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("media_type", "data")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    data: bytes
    def __init__(self, media_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "input_schema_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    input_schema_json: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., input_schema_json: _Optional[str] = ...) -> None: ...

class ToolChoice(_message.Message):
    __slots__ = ("mode", "name")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[ToolChoice.Mode]
        MODE_AUTO: _ClassVar[ToolChoice.Mode]
        MODE_ANY: _ClassVar[ToolChoice.Mode]
        MODE_NONE: _ClassVar[ToolChoice.Mode]
        MODE_TOOL: _ClassVar[ToolChoice.Mode]
    MODE_UNSPECIFIED: ToolChoice.Mode
    MODE_AUTO: ToolChoice.Mode
    MODE_ANY: ToolChoice.Mode
    MODE_NONE: ToolChoice.Mode
    MODE_TOOL: ToolChoice.Mode
    MODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    mode: ToolChoice.Mode
    name: str
    def __init__(self, mode: _Optional[_Union[ToolChoice.Mode, str]] = ..., name: _Optional[str] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("id", "name", "arguments_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments_json: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments_json: _Optional[str] = ...) -> None: ...

class RoutingHints(_message.Message):
    __slots__ = ("strategy", "step_type", "model", "tier", "max_cost_micros", "latency_target_ms", "required_capabilities", "labels", "cascade_mode")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STEP_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CASCADE_MODE_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    step_type: str
    model: str
    tier: str
    max_cost_micros: int
    latency_target_ms: int
    required_capabilities: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    cascade_mode: str
    def __init__(self, strategy: _Optional[str] = ..., step_type: _Optional[str] = ..., model: _Optional[str] = ..., tier: _Optional[str] = ..., max_cost_micros: _Optional[int] = ..., latency_target_ms: _Optional[int] = ..., required_capabilities: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., cascade_mode: _Optional[str] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("messages", "system", "max_tokens", "hints", "request_id", "tools", "tool_choice")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    system: str
    max_tokens: int
    hints: RoutingHints
    request_id: str
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    tool_choice: ToolChoice
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., system: _Optional[str] = ..., max_tokens: _Optional[int] = ..., hints: _Optional[_Union[RoutingHints, _Mapping]] = ..., request_id: _Optional[str] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., tool_choice: _Optional[_Union[ToolChoice, _Mapping]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("model", "tier", "score", "excluded_reason")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_REASON_FIELD_NUMBER: _ClassVar[int]
    model: str
    tier: str
    score: float
    excluded_reason: str
    def __init__(self, model: _Optional[str] = ..., tier: _Optional[str] = ..., score: _Optional[float] = ..., excluded_reason: _Optional[str] = ...) -> None: ...

class RouteDecision(_message.Message):
    __slots__ = ("model", "provider", "tier", "strategy", "reason", "candidates", "estimated_cost_micros", "budget_remaining_micros", "request_id", "trace_id", "signals")
    class SignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_REMAINING_MICROS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    model: str
    provider: str
    tier: str
    strategy: str
    reason: str
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    estimated_cost_micros: int
    budget_remaining_micros: int
    request_id: str
    trace_id: str
    signals: _containers.ScalarMap[str, float]
    def __init__(self, model: _Optional[str] = ..., provider: _Optional[str] = ..., tier: _Optional[str] = ..., strategy: _Optional[str] = ..., reason: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., estimated_cost_micros: _Optional[int] = ..., budget_remaining_micros: _Optional[int] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., signals: _Optional[_Mapping[str, float]] = ...) -> None: ...

class TextDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class Escalation(_message.Message):
    __slots__ = ("from_model", "to_model", "reason", "confidence", "discard_previous")
    FROM_MODEL_FIELD_NUMBER: _ClassVar[int]
    TO_MODEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    DISCARD_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    from_model: str
    to_model: str
    reason: str
    confidence: float
    discard_previous: bool
    def __init__(self, from_model: _Optional[str] = ..., to_model: _Optional[str] = ..., reason: _Optional[str] = ..., confidence: _Optional[float] = ..., discard_previous: _Optional[bool] = ...) -> None: ...

class Fallback(_message.Message):
    __slots__ = ("from_model", "to_model", "error")
    FROM_MODEL_FIELD_NUMBER: _ClassVar[int]
    TO_MODEL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    from_model: str
    to_model: str
    error: str
    def __init__(self, from_model: _Optional[str] = ..., to_model: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class Hedge(_message.Message):
    __slots__ = ("from_model", "to_model", "after_ms", "winner")
    FROM_MODEL_FIELD_NUMBER: _ClassVar[int]
    TO_MODEL_FIELD_NUMBER: _ClassVar[int]
    AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    from_model: str
    to_model: str
    after_ms: int
    winner: str
    def __init__(self, from_model: _Optional[str] = ..., to_model: _Optional[str] = ..., after_ms: _Optional[int] = ..., winner: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("model", "input_tokens", "output_tokens", "cost_micros")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int
    def __init__(self, model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_micros: _Optional[int] = ...) -> None: ...

class Done(_message.Message):
    __slots__ = ("stop_reason", "total", "ttft_ms", "signals", "reason")
    class SignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stop_reason: str
    total: Usage
    ttft_ms: int
    signals: _containers.ScalarMap[str, float]
    reason: str
    def __init__(self, stop_reason: _Optional[str] = ..., total: _Optional[_Union[Usage, _Mapping]] = ..., ttft_ms: _Optional[int] = ..., signals: _Optional[_Mapping[str, float]] = ..., reason: _Optional[str] = ...) -> None: ...

class GenerateEvent(_message.Message):
    __slots__ = ("decision", "delta", "escalation", "fallback", "usage", "done", "hedge", "tool_call")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    HEDGE_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    decision: RouteDecision
    delta: TextDelta
    escalation: Escalation
    fallback: Fallback
    usage: Usage
    done: Done
    hedge: Hedge
    tool_call: ToolCall
    def __init__(self, decision: _Optional[_Union[RouteDecision, _Mapping]] = ..., delta: _Optional[_Union[TextDelta, _Mapping]] = ..., escalation: _Optional[_Union[Escalation, _Mapping]] = ..., fallback: _Optional[_Union[Fallback, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., done: _Optional[_Union[Done, _Mapping]] = ..., hedge: _Optional[_Union[Hedge, _Mapping]] = ..., tool_call: _Optional[_Union[ToolCall, _Mapping]] = ...) -> None: ...

class CompleteResponse(_message.Message):
    __slots__ = ("decision", "text", "stop_reason", "usage", "total", "ttft_ms", "escalations", "fallbacks", "hedges", "tool_calls")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    ESCALATIONS_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    HEDGES_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    decision: RouteDecision
    text: str
    stop_reason: str
    usage: _containers.RepeatedCompositeFieldContainer[Usage]
    total: Usage
    ttft_ms: int
    escalations: _containers.RepeatedCompositeFieldContainer[Escalation]
    fallbacks: _containers.RepeatedCompositeFieldContainer[Fallback]
    hedges: _containers.RepeatedCompositeFieldContainer[Hedge]
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    def __init__(self, decision: _Optional[_Union[RouteDecision, _Mapping]] = ..., text: _Optional[str] = ..., stop_reason: _Optional[str] = ..., usage: _Optional[_Iterable[_Union[Usage, _Mapping]]] = ..., total: _Optional[_Union[Usage, _Mapping]] = ..., ttft_ms: _Optional[int] = ..., escalations: _Optional[_Iterable[_Union[Escalation, _Mapping]]] = ..., fallbacks: _Optional[_Iterable[_Union[Fallback, _Mapping]]] = ..., hedges: _Optional[_Iterable[_Union[Hedge, _Mapping]]] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("id", "provider", "tier", "input_price_micros_per_mtok", "output_price_micros_per_mtok", "context_window", "capabilities", "simulated", "healthy", "provider_model_id", "quality", "max_output_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    INPUT_PRICE_MICROS_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PRICE_MICROS_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    provider: str
    tier: str
    input_price_micros_per_mtok: int
    output_price_micros_per_mtok: int
    context_window: int
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    simulated: bool
    healthy: bool
    provider_model_id: str
    quality: float
    max_output_tokens: int
    def __init__(self, id: _Optional[str] = ..., provider: _Optional[str] = ..., tier: _Optional[str] = ..., input_price_micros_per_mtok: _Optional[int] = ..., output_price_micros_per_mtok: _Optional[int] = ..., context_window: _Optional[int] = ..., capabilities: _Optional[_Iterable[str]] = ..., simulated: _Optional[bool] = ..., healthy: _Optional[bool] = ..., provider_model_id: _Optional[str] = ..., quality: _Optional[float] = ..., max_output_tokens: _Optional[int] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "tiers")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    tiers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., tiers: _Optional[_Iterable[str]] = ...) -> None: ...
