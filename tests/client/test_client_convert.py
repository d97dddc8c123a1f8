"""Requests built from prompts and options, and replies decoded into the client's dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2

from fareway.client import (
    BudgetLimit,
    CascadeMode,
    Decision,
    Done,
    Escalation,
    Fallback,
    Hedge,
    OnExceed,
    Role,
    TextDelta,
    ToolCall,
    Usage,
    Window,
    convert,
)
from fareway.v1 import budget_pb2, router_pb2


def test_a_string_prompt_is_one_user_turn_with_default_max_tokens() -> None:
    request = convert.generate_request("hello")

    assert [(m.role, m.content) for m in request.messages] == [(router_pb2.ROLE_USER, "hello")]
    assert request.max_tokens == 1024
    assert not request.hints.HasField("max_cost_micros")
    assert not request.hints.HasField("latency_target_ms")


def test_messages_and_every_option_reach_the_wire() -> None:
    request = convert.generate_request(
        [("user", "hi"), (Role.ASSISTANT, "hello"), ("user", "and now?")],
        system="Be brief.",
        max_tokens=77,
        strategy="rules",
        model="fast-1",
        tier="fast",
        step_type="planning",
        max_cost_micros=0,
        latency_target_ms=250,
        required_capabilities=["tools", "vision"],
        labels={"team": "search"},
        request_id="req-1",
        cascade_mode="speculative",
    )

    assert [(m.role, m.content) for m in request.messages] == [
        (router_pb2.ROLE_USER, "hi"),
        (router_pb2.ROLE_ASSISTANT, "hello"),
        (router_pb2.ROLE_USER, "and now?"),
    ]
    assert (request.system, request.max_tokens, request.request_id) == ("Be brief.", 77, "req-1")
    hints = request.hints
    assert (hints.strategy, hints.model, hints.tier, hints.step_type) == (
        "rules",
        "fast-1",
        "fast",
        "planning",
    )
    assert hints.HasField("max_cost_micros"), "a zero ceiling is sent, not dropped"
    assert (hints.max_cost_micros, hints.latency_target_ms) == (0, 250)
    assert list(hints.required_capabilities) == ["tools", "vision"]
    assert dict(hints.labels) == {"team": "search"}
    assert hints.cascade_mode == "speculative"


def test_the_cascade_mode_goes_as_its_name_and_is_empty_unless_given() -> None:
    assert convert.generate_request("hi").hints.cascade_mode == ""
    chosen = convert.generate_request("hi", cascade_mode=CascadeMode.BUFFERED)
    assert chosen.hints.cascade_mode == "buffered"
    # The server checks the value, naming the known ones (INVALID_ARGUMENT).
    assert convert.generate_request("hi", cascade_mode="eager").hints.cascade_mode == "eager"


def test_an_unknown_option_or_role_is_refused_before_sending() -> None:
    with pytest.raises(TypeError, match="max_token"):
        convert.generate_request("hi", max_token=5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown role 'system'; known: user, assistant"):
        convert.generate_request([("system", "be nice"), ("user", "hi")])


def test_every_event_kind_decodes_to_its_dataclass() -> None:
    events = [
        router_pb2.GenerateEvent(
            decision=router_pb2.RouteDecision(
                model="fast-1",
                candidates=[
                    router_pb2.Candidate(model="fast-1", tier="fast", score=0.9),
                    router_pb2.Candidate(model="big", tier="powerful", excluded_reason="cost"),
                ],
                signals={"cascade.confidence": 0.5},
            )
        ),
        router_pb2.GenerateEvent(delta=router_pb2.TextDelta(text="Hi")),
        router_pb2.GenerateEvent(
            tool_call=router_pb2.ToolCall(id="c1", name="add", arguments_json='{"a": 1}')
        ),
        router_pb2.GenerateEvent(
            escalation=router_pb2.Escalation(
                from_model="a", to_model="b", reason="low", confidence=0.2, discard_previous=True
            )
        ),
        router_pb2.GenerateEvent(
            fallback=router_pb2.Fallback(from_model="a", to_model="b", error="overloaded: 529")
        ),
        router_pb2.GenerateEvent(
            hedge=router_pb2.Hedge(from_model="a", to_model="b", after_ms=750, winner="b")
        ),
        router_pb2.GenerateEvent(usage=router_pb2.Usage(model="b", input_tokens=3, cost_micros=9)),
        router_pb2.GenerateEvent(
            done=router_pb2.Done(
                stop_reason="end_turn",
                total=router_pb2.Usage(output_tokens=4),
                ttft_ms=12,
                signals={"cascade.confidence": 0.875},
            )
        ),
    ]
    kinds = router_pb2.GenerateEvent.DESCRIPTOR.oneofs_by_name["event"].fields
    assert {e.WhichOneof("event") for e in events} == {f.name for f in kinds}, "one of each"

    decision, delta, call, escalation, fallback, hedge, usage, done = (
        convert.event(e) for e in events
    )

    assert call == ToolCall("c1", "add", '{"a": 1}')
    assert isinstance(call, ToolCall)
    assert call.arguments() == {"a": 1}
    assert isinstance(decision, Decision)
    assert decision.budget_remaining_micros is None, "unset on the wire means uncapped"
    assert [c.eligible for c in decision.candidates] == [True, False]
    assert decision.signals == {"cascade.confidence": 0.5}
    assert delta == TextDelta("Hi")
    assert escalation == Escalation("a", "b", "low", 0.2, True)
    assert fallback == Fallback("a", "b", "overloaded: 529")
    assert hedge == Hedge("a", "b", 750, "b")
    assert usage == Usage("b", 3, 0, 9)
    assert done == Done("end_turn", Usage("", 0, 4, 0), 12, {"cascade.confidence": 0.875})
    assert convert.event(router_pb2.GenerateEvent()) is None, "unknown kinds are skipped"


def test_a_done_without_signals_has_an_empty_immutable_mapping() -> None:
    done = convert.done(router_pb2.Done(stop_reason="end_turn", total=router_pb2.Usage()))

    assert done == Done("end_turn", Usage("", 0, 0, 0), 0)
    assert done.signals == {}
    with pytest.raises(TypeError):
        done.signals["x"] = 1.0  # type: ignore[index]
    assert done in {done}, "hashable, signals aside"


def test_a_completion_carries_hedges_escalations_fallbacks_and_the_merged_signals() -> None:
    reply = router_pb2.CompleteResponse(
        decision=router_pb2.RouteDecision(
            model="b", signals={"learned.strong_score": 0.7, "cascade.confidence": 0.9}
        ),
        text="final",
        stop_reason="end_turn",
        usage=[router_pb2.Usage(model="a", cost_micros=1), router_pb2.Usage(model="b")],
        total=router_pb2.Usage(cost_micros=1),
        ttft_ms=40,
        escalations=[
            router_pb2.Escalation(from_model="a", to_model="b", discard_previous=True),
        ],
        fallbacks=[router_pb2.Fallback(from_model="x", to_model="a", error="timeout")],
        hedges=[
            router_pb2.Hedge(from_model="b", to_model="c", after_ms=800, winner="b"),
            router_pb2.Hedge(from_model="c", to_model="d", after_ms=900, winner="d"),
        ],
    )

    completion = convert.completion(reply)

    assert completion.hedges == (Hedge("b", "c", 800, "b"), Hedge("c", "d", 900, "d"))
    assert completion.escalations == (Escalation("a", "b", "", 0.0, True),)
    assert completion.fallbacks == (Fallback("x", "a", "timeout"),)
    assert completion.decision.signals == {"learned.strong_score": 0.7, "cascade.confidence": 0.9}
    assert (completion.text, completion.ttft_ms) == ("final", 40)
    assert convert.completion(router_pb2.CompleteResponse()).hedges == ()


def test_a_zero_budget_remaining_is_not_none() -> None:
    decoded = convert.decision(router_pb2.RouteDecision(budget_remaining_micros=0))
    assert decoded.budget_remaining_micros == 0


def test_decoded_results_are_immutable() -> None:
    decoded = convert.decision(router_pb2.RouteDecision(signals={"x": 1.0}))
    with pytest.raises(TypeError):
        decoded.signals["x"] = 2.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        decoded.model = "other"  # type: ignore[misc]
    assert decoded in {decoded}, "hashable, signals aside"


def test_budget_limits_round_trip() -> None:
    limits = [
        BudgetLimit(Window.MONTH, 5_000_000, 0.5, OnExceed.CHEAPEST_ONLY, spent_micros=99),
        BudgetLimit(Window("total"), 9_000_000),
    ]
    request = convert.set_budget_request("acme", limits, latency_target_ms=None)

    assert not request.HasField("latency_target_ms")
    assert [(m.window, m.on_exceed, m.spent_micros) for m in request.limits] == [
        (budget_pb2.WINDOW_MONTH, budget_pb2.ON_EXCEED_CHEAPEST_ONLY, 0),
        (budget_pb2.WINDOW_TOTAL, budget_pb2.ON_EXCEED_REJECT, 0),
    ], "output-only figures are not sent"
    assert convert.set_budget_request("acme", [], 0).HasField("latency_target_ms")

    resets = timestamp_pb2.Timestamp()
    resets.FromDatetime(datetime(2026, 2, 1, tzinfo=UTC))
    reply = budget_pb2.Budget(
        tenant="acme",
        limits=[
            budget_pb2.BudgetLimit(
                window=budget_pb2.WINDOW_MONTH,
                cap_micros=100,
                spent_micros=30,
                reserved_micros=20,
                resets_at=resets,
            ),
            budget_pb2.BudgetLimit(window=budget_pb2.WINDOW_TOTAL, cap_micros=5),
        ],
        latency_target_ms=800,
        latency_attainment=0.75,
    )
    budget = convert.budget(reply)

    month, total = budget.limits
    assert month == BudgetLimit(
        Window.MONTH, 100, 0.0, OnExceed.REJECT, 30, 20, datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert month.remaining_micros == 50
    assert total.resets_at is None
    assert (budget.tenant, budget.latency_target_ms, budget.latency_attainment) == (
        "acme",
        800,
        0.75,
    )


def test_metadata_carries_the_key_as_a_bearer_token_then_the_extra_pairs() -> None:
    assert convert.call_metadata("k", [("X-Team", "search")]) == (
        ("authorization", "Bearer k"),
        ("x-team", "search"),
    )
    assert convert.call_metadata("") == ()
