"""A strategy's own model call (`Engine.consult`, the LLM classifier's): billed on the
request's tenant under its own hold, settled to what it used whether it answers, fails or times
out; and a decision's `spent` reaches the stream as `usage` and counts in `done.total`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fareway.core.errors import BudgetExceeded, Overloaded, ProviderTimeout
from fareway.providers.base import UsageReport
from fareway.routing.decision import AttemptUsage, estimate_cost_micros
from fareway.server.engine.events import Billed, Finished, Routed
from tests.fakes.scripted import Stall, answer, broken
from tests.server.engine.rig import FAST, STRONG, billed, decide, rig

QUESTION = ("Answer with one route name.", "Which route: 'write a haiku'?", 5)


async def test_an_answer_is_returned_and_billed_to_the_tenant() -> None:
    r = await rig({"fast": [answer("code", input_tokens=12, output_tokens=1)]})
    request = decide(FAST).request

    completion = await r.engine.consult(request, FAST, *QUESTION, timeout_s=5.0)

    assert (completion.text, completion.error) == ("code", None)
    assert completion.usage == AttemptUsage("fast", 12, 1, FAST.price.cost_micros(12, 1))
    assert await r.figures() == (completion.usage.cost_micros, 0)
    [call] = r.provider.calls
    assert call.call.system == QUESTION[0]


async def test_a_failure_comes_back_with_what_it_used_billed() -> None:
    r = await rig({"fast": [[UsageReport(12, 0), *broken()]]})

    completion = await r.engine.consult(decide(FAST).request, FAST, *QUESTION, timeout_s=5.0)

    assert isinstance(completion.error, Overloaded)
    assert completion.usage == AttemptUsage("fast", 12, 0, FAST.price.cost_micros(12, 0))
    assert await r.figures() == (completion.usage.cost_micros, 0)


async def test_a_stall_times_out_stops_the_call_and_bills_what_it_used() -> None:
    r = await rig({"fast": [[UsageReport(12, 0), Stall()]]})

    completion = await r.engine.consult(decide(FAST).request, FAST, *QUESTION, timeout_s=0.05)

    assert isinstance(completion.error, ProviderTimeout)
    [call] = r.provider.calls
    assert call.stopped_early
    assert await r.figures() == (FAST.price.cost_micros(12, 0), 0)


async def test_a_tenant_that_cannot_afford_it_is_refused_before_any_call() -> None:
    request = decide(FAST).request
    estimate = estimate_cost_micros(FAST, 20, QUESTION[2])
    r = await rig({"fast": []}, cap_micros=estimate // 2)

    with pytest.raises(BudgetExceeded):
        await r.engine.consult(request, FAST, *QUESTION, timeout_s=5.0)

    assert r.provider.calls == []
    assert await r.figures() == (0, 0)


async def test_what_routing_spent_is_a_usage_event_and_part_of_the_total() -> None:
    spent = AttemptUsage("fast", 30, 1, 35)
    r = await rig({"strong": [answer("Hi")]})

    events, error = await r.play(replace(decide(STRONG), spent=(spent,)))

    assert error is None
    assert isinstance(events[0], Routed)
    assert events[1] == Billed(spent)
    last = events[-1]
    assert isinstance(last, Finished)
    assert last.total.cost_micros == billed(events)
