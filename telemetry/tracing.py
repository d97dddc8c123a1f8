"""Span helpers: the one place that knows how a fareway request looks as a trace (F22).

    fareway.v1.RouterService/Generate   SERVER, continues the caller's traceparent
    └── route                           the decision: fareway.* attributes; events for
        │                               budget hold/settle, fallback, escalation, hedge, and
        │                               circuit breaker transitions the request caused
        ├── chat {model}                CLIENT, one per model attempt, GenAI attributes
        └── chat {model}                (after a fallback or an escalation)

Route and attempt spans are started with an explicit parent and never made "current", so no
context is attached across the yields of a stream.

With `record_content`, an attempt span carries its messages as the GenAI conventions shape
them: `gen_ai.input.messages` is each turn's role and parts (`text`; `tool_call` with the
call's id, name and arguments; `tool_call_response` with the id of the call it answers and
the tool's output), and `gen_ai.output.messages` the answer as one assistant message with its
text and tool calls, and its finish reason. Without it, none of that is recorded. The route
span carries an agent step's type (`fareway.step_type`), so a trace of an agent's loop shows
which step each request was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from fareway.core.content import Block, Image, Message, Text, ToolCall, ToolResult
from fareway.routing.breaker import Transition, utc_iso
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import Decision
from fareway.telemetry import names

AttributeValue = str | bool | int | float | Sequence[str]


class Tracing:
    """Starts fareway's spans and records its decisions on them."""

    def __init__(self, tracer: Tracer, record_content: bool = False) -> None:
        self._tracer = tracer
        self._propagator = TraceContextTextMapPropagator()
        # Prompt and answer text are personal data: recorded only when configured.
        self.record_content = record_content

    @contextmanager
    def server_span(self, method: str, metadata: Mapping[str, str]) -> Iterator[Span]:
        """The RPC's span, current while the handler runs; continues a W3C traceparent."""
        parent = self._propagator.extract(carrier=dict(metadata))
        service, _, rpc = method.strip("/").partition("/")
        attributes = {names.RPC_SYSTEM: "grpc", names.RPC_SERVICE: service, names.RPC_METHOD: rpc}
        with self._tracer.start_as_current_span(
            method.strip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    @contextmanager
    def route_span(self, tenant: str) -> Iterator[Span]:
        """The span that carries the decision, child of the current (server) span, and current
        itself while it lasts: a strategy's own model call (`server/engine/consult.py`) finds
        it there to trace the call under it."""
        span = self._tracer.start_span(names.ROUTE_SPAN, attributes={names.TENANT: tenant})
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield span
        except Exception as error:
            mark_failed(span, type(error).__name__, str(error))
            raise
        finally:
            span.end()

    def record_decision(
        self, span: Span, decision: Decision, budget_remaining_micros: int | None
    ) -> None:
        """The decision's facts as `fareway.*` attributes; never the prompt."""
        model = decision.model
        attributes: dict[str, AttributeValue] = {
            names.REQUEST_ID: decision.request.request_id,
            names.STRATEGY: decision.strategy,
            names.MODEL: model.id,
            names.TIER: model.tier,
            names.REASON: decision.reason,
            names.CANDIDATES: [
                _candidate(c.model, c.score, c.excluded_reason)
                for c in (*decision.ranked, *decision.excluded)
            ],
            names.ESTIMATED_COST: decision.estimated_cost_micros(model),
        }
        if budget_remaining_micros is not None:
            attributes[names.BUDGET_REMAINING] = budget_remaining_micros
        if decision.latency_target_ms:
            attributes[names.LATENCY_TARGET] = decision.latency_target_ms
        step_type = decision.request.hints.step_type
        if step_type:
            attributes[names.STEP_TYPE] = step_type
        for signal, value in decision.signals.items():
            attributes[names.SIGNAL_PREFIX + signal] = value
        span.set_attributes(attributes)

    @contextmanager
    def attempt_span(
        self,
        parent: Span,
        model: ModelSpec,
        max_tokens: int,
        messages: Sequence[Message],
        provider_name: str,
        server_address: str = "",
    ) -> Iterator[Span]:
        """One model attempt, named and attributed by the GenAI conventions. `provider_name` is
        the conventional provider name (`anthropic`, `openai`); the configured provider entry
        goes to `fareway.provider`. `server_address` is the provider's host ("" for the
        in-process simulator, which has none)."""
        attributes: dict[str, AttributeValue] = {
            names.GEN_AI_OPERATION_NAME: names.OPERATION_CHAT,
            names.GEN_AI_PROVIDER_NAME: provider_name,
            names.PROVIDER: model.provider,
            names.GEN_AI_REQUEST_MODEL: model.provider_model_id,
            names.GEN_AI_REQUEST_MAX_TOKENS: max_tokens,
            names.MODEL: model.id,
        }
        if server_address:
            attributes[names.SERVER_ADDRESS] = server_address
        if self.record_content:
            attributes[names.GEN_AI_INPUT_MESSAGES] = json.dumps(
                [{"role": m.role.value, "parts": [_part(b) for b in m.blocks]} for m in messages]
            )
        span = self._tracer.start_span(
            f"{names.OPERATION_CHAT} {model.provider_model_id}",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        try:
            yield span
        finally:
            span.end()

    def finish_attempt(
        self,
        span: Span,
        *,
        response_model: str,
        input_tokens: int,
        output_tokens: int,
        stop_reason: str,
        response_id: str = "",
        text: str = "",
        tool_calls: Sequence[ToolCall] = (),
    ) -> None:
        """What the provider reported for an attempt that answered (or was cut short); with
        `record_content`, its text and tool calls as the output message."""
        attributes: dict[str, AttributeValue] = {
            names.GEN_AI_RESPONSE_MODEL: response_model,
            names.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
            names.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
        }
        if stop_reason:
            attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = [stop_reason]
        if response_id:
            attributes[names.GEN_AI_RESPONSE_ID] = response_id
        if self.record_content and (text or tool_calls):
            blocks: list[Block] = [Text(text)] if text else []
            output: dict[str, object] = {
                "role": "assistant",
                "parts": [_part(b) for b in (*blocks, *tool_calls)],
            }
            if stop_reason:
                output["finish_reason"] = stop_reason
            attributes[names.GEN_AI_OUTPUT_MESSAGES] = json.dumps([output])
        span.set_attributes(attributes)


def record_event(span: Span, name: str, attributes: Mapping[str, AttributeValue]) -> None:
    """One decision event (fallback, escalation, hedge, budget hold or settle) on `span`, its
    attributes keyed by the constants of `telemetry.names`."""
    span.add_event(name, attributes)


def record_fallback(span: Span, from_model: str, to_model: str, error: str) -> None:
    """An attempt failed before its first token and `to_model` takes over."""
    record_event(
        span,
        names.EVENT_FALLBACK,
        {names.FROM_MODEL: from_model, names.TO_MODEL: to_model, names.ERROR: error},
    )


def record_escalation(
    span: Span, from_model: str, to_model: str, confidence: float, reason: str
) -> None:
    """A cascade judged `from_model`'s answer not confident enough and moved on to
    `to_model`; `confidence` is what was gated (0 when the answer gave none)."""
    record_event(
        span,
        names.EVENT_ESCALATION,
        {
            names.FROM_MODEL: from_model,
            names.TO_MODEL: to_model,
            names.CONFIDENCE: confidence,
            names.REASON: reason,
        },
    )


def record_hedge(span: Span, from_model: str, to_model: str, after_ms: int, winner: str) -> None:
    """The first token was late, so the request also ran on `to_model`, started `after_ms`
    after the first attempt; `winner` answered and the other was cancelled."""
    record_event(
        span,
        names.EVENT_HEDGE,
        {
            names.FROM_MODEL: from_model,
            names.TO_MODEL: to_model,
            names.AFTER_MS: after_ms,
            names.WINNER: winner,
        },
    )


def record_budget_hold(span: Span, amount_micros: int) -> None:
    """The request's hold was taken, or re-targeted for another attempt."""
    record_event(span, names.EVENT_BUDGET_HOLD, {names.AMOUNT: amount_micros})


def record_budget_settle(span: Span, cost_micros: int) -> None:
    """The request's hold was settled to what its attempts cost."""
    record_event(span, names.EVENT_BUDGET_SETTLE, {names.AMOUNT: cost_micros})


def record_circuit_transition(span: Span, transition: Transition) -> None:
    """A model's circuit changed state because of this request (its failure opened it, its
    attempt became the probe, the probe's outcome closed or reopened it): an event on the
    request's route span, with when it reopens and the failure that opened it."""
    attributes: dict[str, AttributeValue] = {
        names.MODEL: transition.model,
        names.CIRCUIT_FROM: transition.before.value,
        names.CIRCUIT_TO: transition.after.value,
    }
    if transition.open_until is not None:
        attributes[names.CIRCUIT_OPEN_UNTIL] = utc_iso(transition.open_until)
    if transition.cause:
        attributes[names.ERROR] = transition.cause
    record_event(span, names.EVENT_CIRCUIT, attributes)


def mark_failed(span: Span, error_type: str, message: str) -> None:
    """Status ERROR with the conventional `error.type`."""
    span.set_attribute(names.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, message))


def trace_id_hex(span: Span) -> str:
    """The span's W3C trace id as 32 hex digits, or "" when it is not recorded."""
    context = span.get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


def _part(block: Block) -> dict[str, object]:
    """One block as a GenAI message part."""
    if isinstance(block, Text):
        return {"type": "text", "content": block.text}
    if isinstance(block, ToolResult):
        return {"type": "tool_call_response", "id": block.call_id, "response": block.content}
    if isinstance(block, Image):
        # The conventions' blob part, without its bytes: an image may be megabytes, and a
        # span attribute is no place for it.
        return {"type": "blob", "modality": "image", "mime_type": block.media_type}
    return {
        "type": "tool_call",
        "id": block.id,
        "name": block.name,
        "arguments": _arguments(block),
    }


def _arguments(call: ToolCall) -> object:
    """The call's arguments as the conventions want them, an object; the text itself when it
    is not JSON (a broken call is recorded as it came)."""
    try:
        return call.arguments()
    except ValueError:
        return call.arguments_json


def _candidate(model: ModelSpec, score: float, excluded_reason: str) -> str:
    if excluded_reason:
        return f"{model.id} {model.tier} excluded: {excluded_reason}"
    return f"{model.id} {model.tier} {score:.3f}"
