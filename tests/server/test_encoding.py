"""The engine's events on the wire: every kind encodes to its own GenerateEvent member, and
Complete collects a stream into the reply a streaming caller would have assembled.

Nothing in the engine emits escalations, hedges or Done signals yet, so the end-to-end tests
swap the runtime's generation for `ScriptedGeneration`, which plays a fixed list of events
after the real decision.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, get_args

import pytest

from fareway.config.loader import load_config
from fareway.core.content import Message, ToolCall
from fareway.routing.decision import AttemptUsage, Candidate, Decision
from fareway.routing.request import RouteRequest
from fareway.server.engine.events import (
    Billed,
    Delta,
    Escalated,
    FallbackTaken,
    Finished,
    GenerationEvent,
    Hedged,
    Routed,
    ToolCalled,
)
from fareway.server.router_service import collect_reply, encode_event
from fareway.v1 import router_pb2
from tests.server.harness import TENANT_KEY, Harness, metadata, user_request

ONEOF = {f.name for f in router_pb2.GenerateEvent.DESCRIPTOR.oneofs_by_name["event"].fields}


class ScriptedGeneration:
    """Stands in for the engine: yields Routed with the real decision, then `events`."""

    def __init__(self, events: Sequence[GenerationEvent]) -> None:
        self._events = events

    async def run(self, decision: Decision, *args: Any) -> AsyncGenerator[GenerationEvent, None]:
        """Engine.run's shape; the budget, clock and span arguments are not needed."""
        yield Routed(decision, None)
        for event in self._events:
            yield event


def a_decision(signals: dict[str, float] | None = None) -> Decision:
    """A decision for the default catalog's first model."""
    model = load_config().models[0].spec()
    request = RouteRequest((Message.user("hi"),), 100, "demo", "req-1")
    return Decision(request, "rules", "because", (Candidate(model, 0.9),), (), 3, signals or {})


def one_of_each() -> dict[type[Any], tuple[GenerationEvent, str]]:
    """One event of every engine kind, with the GenerateEvent member it must become."""
    usage = AttemptUsage("fast-1", 10, 20, 30)
    events: list[tuple[GenerationEvent, str]] = [
        (Routed(a_decision({"learned.strong_score": 0.25}), 500), "decision"),
        (Delta("Hi"), "delta"),
        (ToolCalled(ToolCall("call_1", "add", '{"a": 1}')), "tool_call"),
        (Escalated("fast-1", "big-1", "low confidence", 0.4, True), "escalation"),
        (FallbackTaken("fast-1", "big-1", "overloaded: 529"), "fallback"),
        (Hedged("fast-1", "big-1", 750, "big-1"), "hedge"),
        (Billed(usage), "usage"),
        (Finished("end_turn", usage, 120, {"cascade.confidence": 0.875}), "done"),
    ]
    return {type(event): (event, kind) for event, kind in events}


def test_every_engine_event_encodes_to_its_own_member_and_every_member_is_used() -> None:
    samples = one_of_each()
    assert set(samples) == set(get_args(GenerationEvent)), "add a sample for the new event kind"

    kinds = {encode_event(event, "t").WhichOneof("event"): kind for event, kind in samples.values()}

    assert all(got == want for got, want in kinds.items()), kinds
    assert set(kinds) == ONEOF, "every GenerateEvent member has an engine event that sends it"


def test_every_field_of_the_new_events_reaches_the_wire() -> None:
    samples = one_of_each()

    escalation = encode_event(samples[Escalated][0], "").escalation
    tool_call = encode_event(samples[ToolCalled][0], "").tool_call
    hedge = encode_event(samples[Hedged][0], "").hedge
    done = encode_event(samples[Finished][0], "").done
    decision = encode_event(samples[Routed][0], "abc").decision

    assert escalation == router_pb2.Escalation(
        from_model="fast-1",
        to_model="big-1",
        reason="low confidence",
        confidence=0.4,
        discard_previous=True,
    )
    assert tool_call == router_pb2.ToolCall(id="call_1", name="add", arguments_json='{"a": 1}')
    assert hedge == router_pb2.Hedge(
        from_model="fast-1", to_model="big-1", after_ms=750, winner="big-1"
    )
    assert dict(done.signals) == {"cascade.confidence": 0.875}
    assert (done.stop_reason, done.ttft_ms, done.total.output_tokens) == ("end_turn", 120, 20)
    assert (decision.trace_id, decision.budget_remaining_micros) == ("abc", 500)
    assert dict(decision.signals) == {"learned.strong_score": 0.25}


def test_finished_without_signals_sends_an_empty_map() -> None:
    done = encode_event(Finished("end_turn", AttemptUsage("", 1, 1, 1), 5), "").done
    assert dict(done.signals) == {}


def test_an_unknown_event_is_refused_instead_of_going_out_as_done() -> None:
    with pytest.raises(AssertionError):
        encode_event(object(), "")  # type: ignore[arg-type]


def stream(*events: GenerationEvent, signals: dict[str, float] | None = None) -> list[Any]:
    """The GenerateEvents of a decision followed by `events`."""
    return [encode_event(e, "") for e in (Routed(a_decision(signals), None), *events)]


USAGE = AttemptUsage("fast-1", 10, 20, 30)
TOTAL = AttemptUsage("", 10, 20, 30)


def test_complete_collects_every_member_of_the_stream() -> None:
    reply = collect_reply(
        encode_event(event, "t") for event, _ in sorted(one_of_each().values(), key=order)
    )

    # Each member of the oneof leaves a trace in the reply, so none is dropped on the floor.
    assert reply.decision.model
    assert (len(reply.escalations), len(reply.fallbacks), len(reply.hedges)) == (1, 1, 1)
    assert [u.model for u in reply.usage] == ["fast-1"]
    assert (reply.stop_reason, reply.ttft_ms, reply.total.cost_micros) == ("end_turn", 120, 30)
    assert reply.text == "", "the only delta came before an escalation that discarded it"


def order(sample: tuple[GenerationEvent, str]) -> int:
    """Stream order: the decision first, done last, the rest as one_of_each lists them."""
    return {"decision": 0, "done": 2}.get(sample[1], 1)


def test_complete_drops_the_text_an_escalation_discards() -> None:
    reply = collect_reply(
        stream(
            Delta("Probably "),
            Delta("spam."),
            Escalated("fast-1", "big-1", "low confidence", 0.3, discard_previous=True),
            Delta("Not spam: "),
            Delta("a receipt."),
            Billed(USAGE),
            Finished("end_turn", TOTAL, 40),
        )
    )

    assert reply.text == "Not spam: a receipt."
    assert [e.to_model for e in reply.escalations] == ["big-1"]


def test_complete_keeps_the_text_an_escalation_does_not_discard() -> None:
    reply = collect_reply(
        stream(
            Delta("Part one. "),
            Escalated("fast-1", "big-1", "harder than it looked", 0.5, discard_previous=False),
            Delta("Part two."),
            Finished("end_turn", TOTAL, 40),
        )
    )

    assert reply.text == "Part one. Part two."


def test_complete_merges_done_signals_into_the_decision_the_later_value_winning() -> None:
    reply = collect_reply(
        stream(
            Delta("ok"),
            Finished("end_turn", TOTAL, 40, {"cascade.confidence": 0.9, "hedge.won": 1.0}),
            signals={"learned.strong_score": 0.7, "cascade.confidence": 0.2},
        )
    )

    assert dict(reply.decision.signals) == {
        "learned.strong_score": 0.7,
        "cascade.confidence": 0.9,
        "hedge.won": 1.0,
    }


def test_complete_keeps_hedges_in_order() -> None:
    reply = collect_reply(
        stream(
            Hedged("fast-1", "big-1", 500, "big-1"),
            Delta("answer"),
            Finished("end_turn", TOTAL, 40),
        )
    )

    assert list(reply.hedges) == [
        router_pb2.Hedge(from_model="fast-1", to_model="big-1", after_ms=500, winner="big-1")
    ]


def test_complete_refuses_an_event_it_cannot_collect() -> None:
    with pytest.raises(AssertionError, match="does not collect"):
        collect_reply([router_pb2.GenerateEvent()])


SCRIPT: list[GenerationEvent] = [
    Delta("draft"),
    Escalated("fast-1", "big-1", "low confidence", 0.3, discard_previous=True),
    Hedged("big-1", "big-2", 800, "big-2"),
    Delta("final"),
    Billed(USAGE),
    Finished("end_turn", TOTAL, 40, {"cascade.confidence": 0.95}),
]


async def test_generate_streams_the_new_events_over_grpc(harness: Harness) -> None:
    harness.running.runtime.generation = ScriptedGeneration(SCRIPT)  # type: ignore[assignment]

    call = harness.router.Generate(user_request("hello"), metadata=metadata(TENANT_KEY))
    events = [event async for event in call]

    assert [e.WhichOneof("event") for e in events] == [
        "decision",
        "delta",
        "escalation",
        "hedge",
        "delta",
        "usage",
        "done",
    ]
    assert events[3].hedge.winner == "big-2"
    assert dict(events[-1].done.signals) == {"cascade.confidence": 0.95}


async def test_complete_over_grpc_discards_keeps_hedges_and_merges_signals(
    harness: Harness,
) -> None:
    harness.running.runtime.generation = ScriptedGeneration(SCRIPT)  # type: ignore[assignment]

    reply = await harness.router.Complete(user_request("hello"), metadata=metadata(TENANT_KEY))

    assert reply.text == "final"
    assert [h.to_model for h in reply.hedges] == ["big-2"]
    assert [e.discard_previous for e in reply.escalations] == [True]
    assert reply.decision.signals["cascade.confidence"] == 0.95
