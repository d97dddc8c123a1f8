"""Hostile input through the real server: huge echoed values, bodies that do not decode or are
too large, and requests with many violations at once. Every one gets a definite, bounded
INVALID_ARGUMENT (or UNAUTHENTICATED before anything else), never UNKNOWN."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.config.schema import FarewayConfig
from fareway.v1 import budget_pb2, router_pb2
from tests.server.harness import (
    ADMIN_KEY,
    TENANT_KEY,
    Harness,
    HarnessFactory,
    make_config,
    metadata,
    user_request,
)
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
ADMIN = metadata(ADMIN_KEY)
ROUTE = "/fareway.v1.RouterService/Route"
# What a caller's status may weigh: gRPC's default metadata limit is 8 KB, and the message
# travels twice (grpc-message, and inside grpc-status-details-bin with the details).
STATUS_BUDGET_BYTES = 4096


def status_size(error: grpc.aio.AioRpcError) -> int:
    """The bytes the error's status took in the trailers."""
    size = len((error.details() or "").encode())
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            size += len(value)
    return size


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    bad = detail(error, error_details_pb2.BadRequest)
    assert bad is not None, "INVALID_ARGUMENT carries BadRequest details"
    return {v.field: v.description for v in bad.field_violations}


async def route_error(harness: Harness, request: Any, md: Any = AUTH) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Route(request, metadata=md, timeout=30)
    return caught.value


def raw_route(harness: Harness) -> Any:
    """Route with the body sent as raw bytes, so that it need not be a valid message."""
    return harness.channel.unary_unary(
        ROUTE, request_serializer=None, response_deserializer=router_pb2.RouteDecision.FromString
    )


def with_request_limit(limit: int) -> FarewayConfig:
    config = make_config()
    server = config.server.model_copy(update={"max_request_bytes": limit})
    return config.model_copy(update={"server": server})


# -- finding 5: echoed values are cut, and the whole status stays small ------------------------

HUGE = "x" * 6000


@pytest.mark.parametrize(
    ("hints", "field"),
    [
        ({"model": HUGE}, "hints.model"),
        ({"tier": HUGE}, "hints.tier"),
        ({"strategy": HUGE}, "hints.strategy"),
        ({"strategy": "steps", "step_type": HUGE}, "hints.step_type"),
    ],
)
async def test_a_huge_bad_hint_is_echoed_only_as_a_prefix(
    harness: Harness, hints: dict[str, str], field: str
) -> None:
    error = await route_error(harness, user_request("hi", **hints))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    description = violations(error)[field]
    assert "x" * 64 + "…" in description
    assert "x" * 65 not in description
    assert status_size(error) < STATUS_BUDGET_BYTES


async def test_a_huge_unknown_tenant_is_echoed_only_as_a_prefix(harness: Harness) -> None:
    for call in (
        harness.budgets.GetBudget(budget_pb2.GetBudgetRequest(tenant=HUGE), metadata=ADMIN),
        harness.budgets.SetBudget(budget_pb2.SetBudgetRequest(tenant=HUGE), metadata=ADMIN),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "x" * 65 not in violations(caught.value)["tenant"]
        assert status_size(caught.value) < STATUS_BUDGET_BYTES


async def test_thousands_of_violations_still_fit_in_one_small_status(harness: Harness) -> None:
    turns = [router_pb2.Message(role=7, content="é" * 50) for _ in range(5000)]
    error = await route_error(harness, router_pb2.GenerateRequest(messages=turns, max_tokens=1))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(error)
    assert "messages[0].role" in found
    assert any("more" in d for d in found.values()), "says that some were left out"
    assert status_size(error) < STATUS_BUDGET_BYTES


# -- finding 6: bodies that do not decode, or are too large --------------------------------------


async def test_an_undecodable_body_is_invalid_argument_logged_in_one_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw_route(harness)(b"\xff\xff\xff\xff", metadata=AUTH, timeout=30)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not decode as a fareway.v1.GenerateRequest" in violations(caught.value)["body"]
    assert "\n" not in (caught.value.details() or "")
    assert "Error" not in (caught.value.details() or ""), "no internal class names"
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"
    assert len([r for r in caplog.records if "decode" in r.getMessage()]) == 1


async def test_a_large_undecodable_body_is_refused_after_authentication(harness: Harness) -> None:
    # Above the size the deserializer parses itself: the handler parses it after the key check.
    junk = b"\x0a\xff\xff\xff\x7f" + b"\xfe" * (1024 * 1024)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await raw_route(harness)(junk, metadata=AUTH, timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as unknown_caller:
        await raw_route(harness)(junk, metadata=(), timeout=30)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not decode" in violations(refused.value)["body"]
    assert unknown_caller.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_large_valid_body_is_served(harness: Harness) -> None:
    decision = await harness.router.Route(user_request("analyze " * 40_000), metadata=AUTH)

    assert decision.model == "powerful-1"


@pytest.mark.parametrize("md", [(), metadata("not-a-key")])
async def test_an_undecodable_body_without_a_valid_key_is_unauthenticated(
    harness: Harness, md: Any
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw_route(harness)(b"\xff\xff\xff\xff", metadata=md, timeout=30)

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_body_over_the_limit_is_invalid_argument_naming_the_setting(
    serve: HarnessFactory,
) -> None:
    harness = await serve(with_request_limit(1000))
    small = user_request("hi")
    large = user_request("y" * 2000)

    assert (await harness.router.Route(small, metadata=AUTH)).model
    error = await route_error(harness, large)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "server.max_request_bytes" in violations(error)["body"]
    assert "1000" in violations(error)["body"]

    unauthenticated = await route_error(harness, large, md=())
    assert unauthenticated.code() == grpc.StatusCode.UNAUTHENTICATED


# -- finding 9: every violation at once, each on its own field -----------------------------------


async def test_hint_violations_are_reported_with_the_others(harness: Harness) -> None:
    request = router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content="hi")],
        max_tokens=10**6,
        hints=router_pb2.RoutingHints(
            strategy="magic",
            model="gpt-9",
            tier="ludicrous",
            required_capabilities=["tools", "", "teleport"],
        ),
        request_id="r" * 200,
    )
    error = await route_error(harness, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(error)
    assert set(found) == {
        "max_tokens",
        "request_id",
        "hints.strategy",
        "hints.model",
        "hints.tier",
        "hints.required_capabilities[1]",
        "hints.required_capabilities[2]",
    }
    assert "must not be empty" in found["hints.required_capabilities[1]"]
    assert "teleport" in found["hints.required_capabilities[2]"]
    assert "known: tools, vision" in found["hints.required_capabilities[2]"]


async def test_an_unknown_step_type_is_reported_with_the_others(harness: Harness) -> None:
    request = user_request("hi", max_tokens=0, strategy="steps", step_type="dancing")
    error = await route_error(harness, request)

    found = violations(error)
    assert set(found) == {"max_tokens", "hints.step_type"}
    assert "unknown step type 'dancing'" in found["hints.step_type"]
