"""The error table of the README ("what went wrong | status"): each case's status code, message
and rich details, through the real server."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.v1 import budget_pb2, router_pb2
from tests.server.harness import (
    ADMIN_KEY,
    OTHER_KEY,
    TENANT_KEY,
    Harness,
    make_config,
    metadata,
    user_request,
)
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)


async def generate_error(harness: Harness, request: Any, md: Any = AUTH) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in harness.router.Generate(request, metadata=md):
            pass
    return caught.value


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    bad = detail(error, error_details_pb2.BadRequest)
    assert bad is not None, "INVALID_ARGUMENT carries BadRequest details"
    return {v.field: v.description for v in bad.field_violations}


def message(role: int, content: str) -> router_pb2.Message:
    return router_pb2.Message(role=role, content=content)


USER, ASSISTANT = router_pb2.ROLE_USER, router_pb2.ROLE_ASSISTANT


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        (router_pb2.GenerateRequest(max_tokens=10), "messages", "must not be empty"),
        (
            router_pb2.GenerateRequest(messages=[message(0, "hi")], max_tokens=10),
            "messages[0].role",
            "ROLE_USER",
        ),
        (
            router_pb2.GenerateRequest(
                messages=[message(USER, "hi"), message(ASSISTANT, "hello")], max_tokens=10
            ),
            "messages",
            "end with a ROLE_USER or ROLE_TOOL turn",
        ),
        (
            router_pb2.GenerateRequest(messages=[message(USER, "  ")], max_tokens=10),
            "messages[0].content",
            "must not be empty",
        ),
        (user_request("hi", max_tokens=0), "max_tokens", "greater than 0"),
        (user_request("hi", max_tokens=10**6), "max_tokens", "at most 16000"),
        (user_request("hi", strategy="magic"), "hints.strategy", "known: cost, rules, steps"),
        (user_request("hi", model="gpt-9"), "hints.model", "known: fast-1, balanced-1"),
        (user_request("hi", tier="ludicrous"), "hints.tier", "known: fast, balanced, powerful"),
    ],
)
async def test_malformed_requests_are_invalid_argument(
    harness: Harness, request_: router_pb2.GenerateRequest, field: str, words: str
) -> None:
    for call in (harness.router.Route, harness.router.Complete):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request_, metadata=AUTH)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert words in (caught.value.details() or "")
        assert words in violations(caught.value)[field]

    error = await generate_error(harness, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    state = await harness.ledger.state("acme")
    assert state.limits[0].reserved_micros == 0


async def test_every_violation_is_reported_at_once(harness: Harness) -> None:
    request = router_pb2.GenerateRequest(messages=[message(0, "")], max_tokens=0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Route(request, metadata=AUTH)
    assert {"messages[0].role", "messages", "max_tokens"} <= set(violations(caught.value))


@pytest.mark.parametrize(
    ("md", "words"),
    [
        ((), "missing 'authorization: Bearer <api-key>'"),
        (metadata("not-a-key"), "unknown API key"),
        ((("authorization", TENANT_KEY),), "must be 'Bearer <api-key>'"),
    ],
)
async def test_missing_or_unknown_key_is_unauthenticated(
    harness: Harness, md: Any, words: str
) -> None:
    calls = [
        harness.router.Route(user_request("hi"), metadata=md),
        harness.router.ListModels(router_pb2.ListModelsRequest(), metadata=md),
        harness.budgets.GetBudget(budget_pb2.GetBudgetRequest(), metadata=md),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert words in (caught.value.details() or "")
    error = await generate_error(harness, user_request("hi"), md)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_tenant_key_on_admin_method_is_permission_denied(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.budgets.SetBudget(budget_pb2.SetBudgetRequest(tenant="acme"), metadata=AUTH)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "admin key" in (caught.value.details() or "")


async def test_another_tenants_budget_is_permission_denied(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.budgets.GetBudget(
            budget_pb2.GetBudgetRequest(tenant="acme"), metadata=metadata(OTHER_KEY)
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only its own budget" in (caught.value.details() or "")


async def test_admin_key_cannot_generate(harness: Harness) -> None:
    error = await generate_error(harness, user_request("hi"), metadata(ADMIN_KEY))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "tenant key" in (error.details() or "")


async def test_hard_cap_is_resource_exhausted_with_quota_and_retry_info(serve: Any) -> None:
    harness = await serve(make_config(day_cap_usd=0.0001))  # 100 micro-USD a day
    error = await generate_error(harness, user_request("analyze this", max_tokens=1000))

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "day cap" in (error.details() or "")
    quota = detail(error, error_details_pb2.QuotaFailure)
    assert quota is not None
    assert quota.violations[0].subject == "tenant:acme"
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry is not None
    assert 0 < retry.retry_delay.ToSeconds() <= 24 * 3600
    state = await harness.ledger.state("acme")
    assert (state.limits[0].spent_micros, state.limits[0].reserved_micros) == (0, 0)
