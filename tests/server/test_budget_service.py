"""BudgetService through a real server: reading and setting caps, and what spend does to them."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.core.clock import ManualClock
from fareway.v1 import budget_pb2
from tests.server.harness import ADMIN_KEY, TENANT_KEY, Harness, metadata, user_request
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
ADMIN = metadata(ADMIN_KEY)
NOW = datetime(2026, 3, 14, 15, 9, tzinfo=UTC)


async def test_tenant_reads_its_own_budget(harness: Harness) -> None:
    budget = await harness.budgets.GetBudget(budget_pb2.GetBudgetRequest(), metadata=AUTH)

    assert budget.tenant == "acme"
    assert budget.latency_target_ms == 5000
    (day,) = budget.limits
    assert (day.window, day.cap_micros, day.spent_micros, day.reserved_micros) == (
        budget_pb2.WINDOW_DAY,
        100_000_000,
        0,
        0,
    )
    assert day.on_exceed == budget_pb2.ON_EXCEED_REJECT


async def test_resets_at_is_the_end_of_the_utc_day(serve: object) -> None:
    harness = await serve(clock=ManualClock(NOW))  # type: ignore[operator]
    budget = await harness.budgets.GetBudget(budget_pb2.GetBudgetRequest(), metadata=AUTH)
    assert budget.limits[0].resets_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 15, tzinfo=UTC)


async def test_spend_shows_in_the_budget(harness: Harness) -> None:
    reply = await harness.router.Complete(user_request("analyze the plan"), metadata=AUTH)
    budget = await harness.budgets.GetBudget(budget_pb2.GetBudgetRequest(), metadata=AUTH)

    assert budget.limits[0].spent_micros == reply.total.cost_micros > 0
    assert budget.limits[0].reserved_micros == 0
    assert budget.latency_attainment == 1.0  # sim under a manual clock answers at once


async def test_admin_sets_and_reads_any_budget(harness: Harness) -> None:
    new_limits = [
        budget_pb2.BudgetLimit(
            window=budget_pb2.WINDOW_MONTH,
            cap_micros=5_000_000,
            soft_fraction=0.5,
            on_exceed=budget_pb2.ON_EXCEED_CHEAPEST_ONLY,
        ),
        budget_pb2.BudgetLimit(window=budget_pb2.WINDOW_TOTAL, cap_micros=9_000_000),
    ]
    reply = await harness.budgets.SetBudget(
        budget_pb2.SetBudgetRequest(tenant="other", limits=new_limits, latency_target_ms=800),
        metadata=ADMIN,
    )
    read = await harness.budgets.GetBudget(
        budget_pb2.GetBudgetRequest(tenant="other"), metadata=ADMIN
    )

    assert reply == read
    assert read.latency_target_ms == 800
    assert [(lim.window, lim.cap_micros) for lim in read.limits] == [
        (budget_pb2.WINDOW_MONTH, 5_000_000),
        (budget_pb2.WINDOW_TOTAL, 9_000_000),
    ]
    assert read.limits[0].on_exceed == budget_pb2.ON_EXCEED_CHEAPEST_ONLY
    assert read.limits[1].on_exceed == budget_pb2.ON_EXCEED_REJECT  # unspecified means reject
    assert not read.limits[1].HasField("resets_at")  # the total window never resets


async def test_a_new_cap_applies_to_the_next_request(harness: Harness) -> None:
    await harness.budgets.SetBudget(
        budget_pb2.SetBudgetRequest(
            tenant="acme",
            limits=[budget_pb2.BudgetLimit(window=budget_pb2.WINDOW_DAY, cap_micros=10)],
        ),
        metadata=ADMIN,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Complete(user_request("hello"), metadata=AUTH)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_bad_limits_are_invalid_argument(harness: Harness) -> None:
    bad = budget_pb2.SetBudgetRequest(
        tenant="acme",
        limits=[budget_pb2.BudgetLimit(cap_micros=-1, soft_fraction=1.5)],
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.budgets.SetBudget(bad, metadata=ADMIN)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request = detail(caught.value, error_details_pb2.BadRequest)
    assert request is not None
    assert {v.field for v in request.field_violations} == {
        "limits[0].window",
        "limits[0].cap_micros",
        "limits[0].soft_fraction",
    }


@pytest.mark.parametrize(("tenant", "words"), [("", "required"), ("nobody", "unknown tenant")])
async def test_admin_must_name_a_known_tenant(harness: Harness, tenant: str, words: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.budgets.GetBudget(budget_pb2.GetBudgetRequest(tenant=tenant), metadata=ADMIN)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (caught.value.details() or "")
