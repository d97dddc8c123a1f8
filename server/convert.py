"""Translation between fareway.v1 protobuf messages and the plain data the rest of fareway uses.

Decoding validates: every problem in a request becomes a field violation, all reported at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from fareway.budgets.ledger import BudgetState, Limit, OnExceed
from fareway.budgets.windows import Window
from fareway.core.content import ToolCall
from fareway.core.errors import FieldViolation, InvalidRequest
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import AttemptUsage, Candidate, Decision
from fareway.routing.request import Hints, RouteRequest
from fareway.server.conversation import decode_tool_choice, decode_tools, decode_turns
from fareway.v1 import budget_pb2, router_pb2

MAX_REQUEST_ID_LENGTH = 128

_WINDOWS = {
    budget_pb2.WINDOW_DAY: Window.DAY,
    budget_pb2.WINDOW_MONTH: Window.MONTH,
    budget_pb2.WINDOW_TOTAL: Window.TOTAL,
}
_ON_EXCEED = {
    budget_pb2.ON_EXCEED_UNSPECIFIED: OnExceed.REJECT,
    budget_pb2.ON_EXCEED_REJECT: OnExceed.REJECT,
    budget_pb2.ON_EXCEED_CHEAPEST_ONLY: OnExceed.CHEAPEST_ONLY,
}


# Checks of the decoded hints and max_tokens that need more than the message (the router's
# catalog and strategies); see Router.violations.
HintCheck = Callable[[Hints, int], list[FieldViolation]]


def decode_request(
    message: router_pb2.GenerateRequest, tenant: str, check: HintCheck | None = None
) -> RouteRequest:
    """A validated RouteRequest, or InvalidRequest listing every bad field: the message's own
    problems and, with `check`, those of its hints against the configuration, all at once."""
    violations: list[FieldViolation] = []
    if not message.messages:
        violations.append(FieldViolation("messages", "must not be empty"))
    turns = decode_turns(message.messages, violations)
    tools = decode_tools(message.tools, violations)
    tool_choice = decode_tool_choice(message, tools, violations)
    if message.max_tokens == 0:
        violations.append(FieldViolation("max_tokens", "must be greater than 0"))
    if len(message.request_id) > MAX_REQUEST_ID_LENGTH:
        violations.append(
            FieldViolation("request_id", f"must be at most {MAX_REQUEST_ID_LENGTH} characters")
        )
    hints = _decode_hints(message.hints)
    if hints.max_cost_micros is not None and hints.max_cost_micros <= 0:
        violations.append(FieldViolation("hints.max_cost_micros", "must be greater than 0"))
    if check is not None:
        violations += check(hints, message.max_tokens)
    if violations:
        raise InvalidRequest(violations)
    return RouteRequest(
        messages=turns,
        max_tokens=message.max_tokens,
        tenant=tenant,
        request_id=message.request_id or uuid.uuid4().hex,
        system=message.system,
        hints=hints,
        tools=tools,
        tool_choice=tool_choice,
    )


def _decode_hints(hints: router_pb2.RoutingHints) -> Hints:
    return Hints(
        strategy=hints.strategy,
        step_type=hints.step_type,
        model=hints.model,
        tier=hints.tier,
        max_cost_micros=hints.max_cost_micros if hints.HasField("max_cost_micros") else None,
        latency_target_ms=hints.latency_target_ms if hints.HasField("latency_target_ms") else None,
        required_capabilities=tuple(hints.required_capabilities),
        labels=dict(hints.labels),
        cascade_mode=hints.cascade_mode,
    )


def encode_decision(
    decision: Decision, budget_remaining_micros: int | None, trace_id: str = ""
) -> router_pb2.RouteDecision:
    """The RouteDecision message: chosen model, reason, and every candidate considered."""
    model = decision.model
    message = router_pb2.RouteDecision(
        model=model.id,
        provider=model.provider,
        tier=model.tier,
        strategy=decision.strategy,
        reason=decision.reason,
        candidates=[_candidate(c) for c in (*decision.ranked, *decision.excluded)],
        estimated_cost_micros=decision.estimated_cost_micros(model),
        request_id=decision.request.request_id,
        trace_id=trace_id,
        signals=dict(decision.signals),
    )
    if budget_remaining_micros is not None:
        message.budget_remaining_micros = budget_remaining_micros
    return message


def _candidate(candidate: Candidate) -> router_pb2.Candidate:
    return router_pb2.Candidate(
        model=candidate.model.id,
        tier=candidate.model.tier,
        score=candidate.score,
        excluded_reason=candidate.excluded_reason,
    )


def encode_usage(usage: AttemptUsage) -> router_pb2.Usage:
    """One attempt's (or the total) usage."""
    return router_pb2.Usage(
        model=usage.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_micros=usage.cost_micros,
    )


def encode_model(model: ModelSpec, simulated: bool, healthy: bool) -> router_pb2.ModelInfo:
    """A catalog entry as ListModels returns it."""
    return router_pb2.ModelInfo(
        id=model.id,
        provider=model.provider,
        tier=model.tier,
        input_price_micros_per_mtok=model.price.input_micros_per_mtok,
        output_price_micros_per_mtok=model.price.output_micros_per_mtok,
        context_window=model.context_window,
        capabilities=sorted(model.capabilities),
        simulated=simulated,
        healthy=healthy,
        provider_model_id=model.provider_model_id,
        quality=model.quality,
        max_output_tokens=model.max_output_tokens,
    )


def decode_limits(limits: Iterable[budget_pb2.BudgetLimit]) -> list[Limit]:
    """Limits from SetBudget, or InvalidRequest listing every bad one."""
    violations: list[FieldViolation] = []
    decoded: list[Limit] = []
    for i, limit in enumerate(limits):
        window = _WINDOWS.get(limit.window)
        if window is None:
            violations.append(FieldViolation(f"limits[{i}].window", "must be set"))
        if limit.cap_micros < 0:
            violations.append(FieldViolation(f"limits[{i}].cap_micros", "must not be negative"))
        if not 0 <= limit.soft_fraction <= 1:
            violations.append(
                FieldViolation(f"limits[{i}].soft_fraction", "must be between 0 and 1")
            )
        on_exceed = _ON_EXCEED.get(limit.on_exceed)
        if on_exceed is None:
            violations.append(FieldViolation(f"limits[{i}].on_exceed", "unknown value"))
        if window is not None and on_exceed is not None:
            decoded.append(Limit(window, limit.cap_micros, limit.soft_fraction, on_exceed))
    if violations:
        raise InvalidRequest(violations)
    return decoded


def encode_budget(state: BudgetState) -> budget_pb2.Budget:
    """A tenant's budget with the current windows' figures."""
    windows = {v: k for k, v in _WINDOWS.items()}
    on_exceed = {
        OnExceed.REJECT: budget_pb2.ON_EXCEED_REJECT,
        OnExceed.CHEAPEST_ONLY: budget_pb2.ON_EXCEED_CHEAPEST_ONLY,
    }
    limits = []
    for s in state.limits:
        message = budget_pb2.BudgetLimit(
            window=windows[s.limit.window],
            cap_micros=s.limit.cap_micros,
            soft_fraction=s.limit.soft_fraction,
            on_exceed=on_exceed[s.limit.on_exceed],
            spent_micros=s.spent_micros,
            reserved_micros=s.reserved_micros,
        )
        if s.resets_at is not None:
            stamp = Timestamp()
            stamp.FromDatetime(s.resets_at)
            message.resets_at.CopyFrom(stamp)
        limits.append(message)
    return budget_pb2.Budget(
        tenant=state.tenant,
        limits=limits,
        latency_target_ms=state.latency_target_ms,
        latency_attainment=state.latency_attainment,
    )


def encode_tool_call(call: ToolCall) -> router_pb2.ToolCall:
    """A complete tool call on the wire."""
    return router_pb2.ToolCall(id=call.id, name=call.name, arguments_json=call.arguments_json)
