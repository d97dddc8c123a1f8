"""Between the client's dataclasses and the fareway.v1 protobuf messages, both ways.

Both clients call these, so each translation is written once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC
from types import MappingProxyType
from typing import Any, Unpack

from fareway.client.types import (
    Budget,
    BudgetLimit,
    Candidate,
    Completion,
    Decision,
    Done,
    Escalation,
    Fallback,
    Hedge,
    ModelInfo,
    OnExceed,
    Prompt,
    RequestOptions,
    Role,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    Turn,
    Usage,
    Window,
)
from fareway.v1 import budget_pb2, router_pb2

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_MAX_TOKENS = 1024

_ROLES = {
    Role.USER: router_pb2.ROLE_USER,
    Role.ASSISTANT: router_pb2.ROLE_ASSISTANT,
    Role.TOOL: router_pb2.ROLE_TOOL,
}
# The `tool_choice` values that are modes; any other non-empty value names the tool to call.
TOOL_CHOICE_MODES = {
    "auto": router_pb2.ToolChoice.MODE_AUTO,
    "any": router_pb2.ToolChoice.MODE_ANY,
    "none": router_pb2.ToolChoice.MODE_NONE,
}
_WINDOWS = {
    Window.DAY: budget_pb2.WINDOW_DAY,
    Window.MONTH: budget_pb2.WINDOW_MONTH,
    Window.TOTAL: budget_pb2.WINDOW_TOTAL,
}
_ON_EXCEED = {
    OnExceed.REJECT: budget_pb2.ON_EXCEED_REJECT,
    OnExceed.CHEAPEST_ONLY: budget_pb2.ON_EXCEED_CHEAPEST_ONLY,
}
_WINDOW_OF = {number: window for window, number in _WINDOWS.items()}
_ON_EXCEED_OF = {number: on_exceed for on_exceed, number in _ON_EXCEED.items()}


def call_metadata(
    api_key: str, extra: Sequence[tuple[str, str]] = ()
) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries: the API key as a bearer token, then `extra`."""
    bearer = (("authorization", f"Bearer {api_key}"),) if api_key else ()
    return (*bearer, *((key.lower(), value) for key, value in extra))


def generate_request(
    prompt: Prompt, **options: Unpack[RequestOptions]
) -> router_pb2.GenerateRequest:
    """The GenerateRequest for `prompt` with these options (see RequestOptions).

    Raises TypeError for an unknown option, ValueError for an unknown role or a tool definition
    that `Tool.from_mapping` refuses; everything else (a result without its call, a choice
    naming no tool) the server checks, and reports as InvalidArgument."""
    unknown = sorted(options.keys() - RequestOptions.__annotations__.keys())
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    hints = router_pb2.RoutingHints(
        strategy=options.get("strategy", ""),
        step_type=options.get("step_type", ""),
        model=options.get("model", ""),
        tier=options.get("tier", ""),
        required_capabilities=list(options.get("required_capabilities", ())),
        labels=dict(options.get("labels", {})),
        cascade_mode=str(options.get("cascade_mode", "")),
    )
    max_cost = options.get("max_cost_micros")
    if max_cost is not None:
        hints.max_cost_micros = max_cost
    latency_target = options.get("latency_target_ms")
    if latency_target is not None:
        hints.latency_target_ms = latency_target
    request = router_pb2.GenerateRequest(
        messages=_messages(prompt),
        system=options.get("system", ""),
        max_tokens=options.get("max_tokens", DEFAULT_MAX_TOKENS),
        hints=hints,
        request_id=options.get("request_id", ""),
        tools=[_tool(t) for t in options.get("tools", ())],
    )
    choice = options.get("tool_choice", "")
    if choice:  # unset, not MODE_AUTO: the server refuses a choice on a request without tools
        request.tool_choice.CopyFrom(_tool_choice(choice))
    return request


def _messages(prompt: Prompt) -> list[router_pb2.Message]:
    if isinstance(prompt, str):
        return [router_pb2.Message(role=router_pb2.ROLE_USER, content=prompt)]
    return [_message(turn if isinstance(turn, Turn) else Turn(*turn)) for turn in prompt]


def _message(turn: Turn) -> router_pb2.Message:
    try:
        role = _ROLES[Role(turn.role)]
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {turn.role!r}; known: {known}") from None
    return router_pb2.Message(
        role=role,
        content=turn.content,
        tool_calls=[
            router_pb2.ToolCall(id=c.id, name=c.name, arguments_json=c.arguments_json)
            for c in turn.tool_calls
        ],
        tool_call_id=turn.tool_call_id,
        images=[router_pb2.Image(media_type=i.media_type, data=i.data) for i in turn.images],
    )


def _tool(tool: Tool | Mapping[str, Any]) -> router_pb2.Tool:
    if not isinstance(tool, Tool):
        tool = Tool.from_mapping(tool)
    return router_pb2.Tool(
        name=tool.name,
        description=tool.description,
        input_schema_json=json.dumps(dict(tool.input_schema)),
    )


def _tool_choice(choice: str) -> router_pb2.ToolChoice:
    """The choice on the wire: a mode of TOOL_CHOICE_MODES, else the tool named `choice`."""
    mode = TOOL_CHOICE_MODES.get(choice)
    if mode is None:
        return router_pb2.ToolChoice(mode=router_pb2.ToolChoice.MODE_TOOL, name=choice)
    return router_pb2.ToolChoice(mode=mode)


def get_budget_request(tenant: str) -> budget_pb2.GetBudgetRequest:
    """Asks for `tenant`'s budget (empty: the caller's own)."""
    return budget_pb2.GetBudgetRequest(tenant=tenant)


def set_budget_request(
    tenant: str, limits: Sequence[BudgetLimit], latency_target_ms: int | None
) -> budget_pb2.SetBudgetRequest:
    """Replaces `tenant`'s limits; the latency target too unless None. Output-only fields of
    the limits are not sent."""
    request = budget_pb2.SetBudgetRequest(
        tenant=tenant,
        limits=[
            budget_pb2.BudgetLimit(
                window=_WINDOWS[Window(limit.window)],
                cap_micros=limit.cap_micros,
                soft_fraction=limit.soft_fraction,
                on_exceed=_ON_EXCEED[OnExceed(limit.on_exceed)],
            )
            for limit in limits
        ],
    )
    if latency_target_ms is not None:
        request.latency_target_ms = latency_target_ms
    return request


def decision(message: router_pb2.RouteDecision) -> Decision:
    """A RouteDecision."""
    return Decision(
        model=message.model,
        provider=message.provider,
        tier=message.tier,
        strategy=message.strategy,
        reason=message.reason,
        candidates=tuple(
            Candidate(c.model, c.tier, c.score, c.excluded_reason) for c in message.candidates
        ),
        estimated_cost_micros=message.estimated_cost_micros,
        budget_remaining_micros=(
            message.budget_remaining_micros if message.HasField("budget_remaining_micros") else None
        ),
        request_id=message.request_id,
        trace_id=message.trace_id,
        signals=MappingProxyType(dict(message.signals)),
    )


def usage(message: router_pb2.Usage) -> Usage:
    """A Usage (one attempt's, or the total)."""
    return Usage(message.model, message.input_tokens, message.output_tokens, message.cost_micros)


def escalation(message: router_pb2.Escalation) -> Escalation:
    """An Escalation."""
    return Escalation(
        message.from_model,
        message.to_model,
        message.reason,
        message.confidence,
        message.discard_previous,
    )


def fallback(message: router_pb2.Fallback) -> Fallback:
    """A Fallback."""
    return Fallback(message.from_model, message.to_model, message.error)


def hedge(message: router_pb2.Hedge) -> Hedge:
    """A Hedge."""
    return Hedge(message.from_model, message.to_model, message.after_ms, message.winner)


def done(message: router_pb2.Done) -> Done:
    """A Done."""
    return Done(
        message.stop_reason,
        usage(message.total),
        message.ttft_ms,
        MappingProxyType(dict(message.signals)),
    )


def event(message: router_pb2.GenerateEvent) -> StreamEvent | None:
    """One GenerateEvent; None for a kind this client does not know (a newer server's)."""
    kind = message.WhichOneof("event")
    if kind == "decision":
        return decision(message.decision)
    if kind == "delta":
        return TextDelta(message.delta.text)
    if kind == "tool_call":
        return tool_call(message.tool_call)
    if kind == "escalation":
        return escalation(message.escalation)
    if kind == "fallback":
        return fallback(message.fallback)
    if kind == "hedge":
        return hedge(message.hedge)
    if kind == "usage":
        return usage(message.usage)
    if kind == "done":
        return done(message.done)
    return None


def completion(message: router_pb2.CompleteResponse) -> Completion:
    """A CompleteResponse."""
    return Completion(
        decision=decision(message.decision),
        text=message.text,
        stop_reason=message.stop_reason,
        usage=tuple(usage(u) for u in message.usage),
        total=usage(message.total),
        ttft_ms=message.ttft_ms,
        escalations=tuple(escalation(e) for e in message.escalations),
        fallbacks=tuple(fallback(f) for f in message.fallbacks),
        hedges=tuple(hedge(h) for h in message.hedges),
        tool_calls=tuple(tool_call(c) for c in message.tool_calls),
    )


def tool_call(message: router_pb2.ToolCall) -> ToolCall:
    """A complete tool call."""
    return ToolCall(message.id, message.name, message.arguments_json)


def models(message: router_pb2.ListModelsResponse) -> list[ModelInfo]:
    """The catalog, in the server's order (cheapest tier first)."""
    return [
        ModelInfo(
            id=m.id,
            provider=m.provider,
            tier=m.tier,
            input_price_micros_per_mtok=m.input_price_micros_per_mtok,
            output_price_micros_per_mtok=m.output_price_micros_per_mtok,
            context_window=m.context_window,
            capabilities=tuple(m.capabilities),
            simulated=m.simulated,
            healthy=m.healthy,
            provider_model_id=m.provider_model_id,
            quality=m.quality,
            max_output_tokens=m.max_output_tokens,
        )
        for m in message.models
    ]


def budget(message: budget_pb2.Budget) -> Budget:
    """A Budget. An unspecified on_exceed reads as REJECT, as the server treats it."""
    return Budget(
        tenant=message.tenant,
        limits=tuple(_limit(limit) for limit in message.limits),
        latency_target_ms=message.latency_target_ms,
        latency_attainment=message.latency_attainment,
    )


def _limit(message: budget_pb2.BudgetLimit) -> BudgetLimit:
    window = _WINDOW_OF.get(message.window)
    if window is None:
        raise ValueError(f"the server sent budget window {message.window}, unknown to this client")
    return BudgetLimit(
        window=window,
        cap_micros=message.cap_micros,
        soft_fraction=message.soft_fraction,
        on_exceed=_ON_EXCEED_OF.get(message.on_exceed, OnExceed.REJECT),
        spent_micros=message.spent_micros,
        reserved_micros=message.reserved_micros,
        resets_at=(
            message.resets_at.ToDatetime(tzinfo=UTC) if message.HasField("resets_at") else None
        ),
    )
