"""Admission control: `server.max_streams` bounds the Generate and Complete calls one process
serves at once; beyond it a call is refused at once with RESOURCE_EXHAUSTED, a QuotaFailure on
"server:max_streams" and a RetryInfo, and a slot comes back however its call ends.

The unit tests drive `Admission` with a manual clock; the server tests hold a stream open with
a clock whose sleeps (the sim model's pacing) wait for a gate the test opens, so nothing here
depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from fareway.client import AsyncClient, ResourceExhausted, ServerBusy
from fareway.config.loader import parse_config
from fareway.core.clock import ManualClock
from fareway.core.errors import ServerBusy as ServerBusyError
from fareway.server.admission import (
    INITIAL_RETRY_S,
    MAX_RETRY_S,
    MIN_RETRY_S,
    SMOOTHING,
    Admission,
)
from fareway.server.reload import Reloader
from fareway.server.status import to_grpc_status
from fareway.v1 import budget_pb2, router_pb2
from tests.server.harness import GatedClock, Harness, HarnessFactory, metadata, user_request
from tests.server.status_details import detail

KEY, ADMIN = "admission-key", "admission-admin"
ENV = {"ACME_KEY": KEY, "ADMIN_KEY": ADMIN}
AUTH = metadata(KEY)


def config_text(max_streams: int) -> str:
    """One paced sim model, so that a stream stops after its first token while the clock's
    gate is shut."""
    return f"""
server: {{grace_s: 0, max_streams: {max_streams}}}
ledger: {{type: memory}}
tiers: [fast]
providers: {{sim: {{type: sim}}}}
models:
  - {{id: alpha, provider: sim, tier: fast, input_usd_per_mtok: 1, output_usd_per_mtok: 5,
      context_window: 100000, max_output_tokens: 4000,
      sim: {{tokens_per_second: 50, answer_tokens: 20}}}}
strategies:
  rules: {{type: rules, default_tier: fast, rules: []}}
default_strategy: rules
tenants:
  acme:
    api_keys: [{{env: ACME_KEY}}]
    budget: [{{window: day, cap_usd: 10}}]
admin_keys: [{{env: ADMIN_KEY}}]
"""


async def start(serve: HarnessFactory, max_streams: int = 1) -> tuple[Harness, GatedClock]:
    clock = GatedClock()
    harness: Harness = await serve(parse_config(config_text(max_streams)), clock=clock, env=ENV)
    return harness, clock


async def hold_a_stream(harness: Harness) -> grpc.aio.UnaryStreamCall:
    """A Generate call that has sent its decision and first token and now waits at the gate."""
    stream = harness.router.Generate(user_request("hello"), metadata=AUTH)
    assert (await stream.read()).WhichOneof("event") == "decision"
    assert (await stream.read()).WhichOneof("event") == "delta"
    return stream


async def read_to_end(stream: grpc.aio.UnaryStreamCall) -> list[router_pb2.GenerateEvent]:
    events = []
    while (event := await stream.read()) is not grpc.aio.EOF:
        events.append(event)
    return events


async def refused(harness: Harness) -> grpc.aio.AioRpcError:
    """A Generate call that the server refuses before its first event."""
    stream = harness.router.Generate(user_request("hello"), metadata=AUTH)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stream.read()
    return failure.value


async def budget(harness: Harness) -> budget_pb2.Budget:
    reply: budget_pb2.Budget = await harness.budgets.GetBudget(
        budget_pb2.GetBudgetRequest(), metadata=AUTH
    )
    return reply


def admission_of(harness: Harness) -> Admission:
    admission = harness.running.admission
    assert admission is not None
    return admission


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the event loop run until `condition` holds: for what the server does after the
    caller has gone away. The bound only stops a broken test from hanging."""
    for _ in range(2_000):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"{what} did not happen")


# The counter, the estimate and the status.


def test_a_full_admission_refuses_with_the_limit_and_a_retry_hint() -> None:
    admission = Admission(lambda: 2, ManualClock())
    first, second = admission.admit(), admission.admit()

    with pytest.raises(ServerBusyError) as busy:
        admission.admit()

    assert busy.value.limit == 2
    assert busy.value.retry_after_s == INITIAL_RETRY_S, "no stream has finished yet"
    assert "limit of 2 concurrent streams" in str(busy.value)
    assert admission.in_flight == 2
    first.release()
    second.release()
    assert admission.in_flight == 0


def test_the_retry_hint_is_a_smoothed_mean_of_durations_clamped() -> None:
    clock = ManualClock()
    admission = Admission(lambda: 10, clock)

    def stream_lasting(seconds: float) -> None:
        with admission.admit():
            clock.advance(seconds)

    stream_lasting(0.3)
    assert admission.retry_after_s() == pytest.approx(0.3), "the first duration is the mean"
    stream_lasting(0.8)
    assert admission.retry_after_s() == pytest.approx(0.3 + SMOOTHING * 0.5)
    for _ in range(100):
        stream_lasting(60)
    assert admission.retry_after_s() == MAX_RETRY_S
    for _ in range(100):
        stream_lasting(0.001)
    assert admission.retry_after_s() == MIN_RETRY_S


def test_a_slot_comes_back_when_its_call_fails_and_only_once() -> None:
    admission = Admission(lambda: 1, ManualClock())

    with pytest.raises(RuntimeError), admission.admit():
        raise RuntimeError("the handler failed")
    slot = admission.admit()
    slot.release()
    slot.release()

    assert admission.in_flight == 0
    with admission.admit():
        assert admission.in_flight == 1


def test_the_bound_is_read_at_each_admission() -> None:
    limit = [1]
    admission = Admission(lambda: limit[0], ManualClock())
    held = admission.admit()
    with pytest.raises(ServerBusyError):
        admission.admit()

    limit[0] = 2
    with admission.admit():
        assert admission.in_flight == 2
    limit[0] = 1  # lowered below what runs: nothing ends, new calls wait for room
    with pytest.raises(ServerBusyError):
        admission.admit()
    held.release()


def test_server_busy_is_resource_exhausted_with_quota_failure_and_retry_info() -> None:
    error = ServerBusyError("at its limit", limit=4, retry_after_s=0.25)

    status = to_grpc_status(error, ManualClock().now())

    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    [(_, raw)] = [(k, v) for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    message = status_pb2.Status.FromString(raw)
    assert message.code == code_pb2.RESOURCE_EXHAUSTED
    quota, retry = error_details_pb2.QuotaFailure(), error_details_pb2.RetryInfo()
    assert message.details[0].Unpack(quota)
    assert message.details[1].Unpack(retry)
    assert [v.subject for v in quota.violations] == ["server:max_streams"]
    assert retry.retry_delay.ToTimedelta() == timedelta(milliseconds=250)


# A real server.


async def test_a_stream_beyond_the_bound_is_refused_at_once_while_the_first_streams(
    serve: HarnessFactory,
) -> None:
    harness, clock = await start(serve, max_streams=1)
    held = await hold_a_stream(harness)
    before = await budget(harness)
    assert before.limits[0].reserved_micros > 0, "the held stream holds its estimate"

    error = await refused(harness)

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit of 1 concurrent streams" in (error.details() or "")
    quota = detail(error, error_details_pb2.QuotaFailure)
    retry = detail(error, error_details_pb2.RetryInfo)
    assert quota is not None
    assert [v.subject for v in quota.violations] == ["server:max_streams"]
    assert retry is not None
    assert retry.retry_delay.ToTimedelta() == timedelta(seconds=INITIAL_RETRY_S)
    assert held.done() is False, "refused while the first is still streaming"
    assert await budget(harness) == before, "the refused call held nothing in the ledger"
    # Cheap unary calls are never refused for load.
    decision = await harness.router.Route(user_request("hello"), metadata=AUTH)
    assert decision.model == "alpha"
    assert (await harness.router.ListModels(router_pb2.ListModelsRequest(), metadata=AUTH)).models

    clock.gate.set()
    events = await read_to_end(held)
    assert events[-1].WhichOneof("event") == "done"
    assert admission_of(harness).in_flight == 0
    again = await read_to_end(harness.router.Generate(user_request("hi"), metadata=AUTH))
    assert again[0].WhichOneof("event") == "decision", "a slot was free again"
    assert again[-1].WhichOneof("event") == "done"


async def test_complete_is_bounded_too_and_the_client_raises_server_busy(
    serve: HarnessFactory,
) -> None:
    harness, _ = await start(serve, max_streams=1)
    held = await hold_a_stream(harness)

    async with AsyncClient(f"127.0.0.1:{harness.running.port}", api_key=KEY) as client:
        with pytest.raises(ServerBusy) as busy:
            await client.complete("hello")
        with pytest.raises(ResourceExhausted):  # what callers that catch budgets see
            await client.complete("hello")

    assert busy.value.retry_after == timedelta(seconds=INITIAL_RETRY_S)
    assert "server:max_streams" in busy.value.quota_violations
    held.cancel()


async def test_a_caller_that_goes_away_gives_its_slot_back(serve: HarnessFactory) -> None:
    harness, _ = await start(serve, max_streams=1)
    admission = admission_of(harness)
    held = await hold_a_stream(harness)
    assert admission.in_flight == 1

    held.cancel()

    await until(lambda: admission.in_flight == 0, "the cancelled call's slot coming back")
    await until_no_reservation(harness)
    second = await hold_a_stream(harness)  # admitted: the gate is still shut, so it holds
    assert admission.in_flight == 1
    second.cancel()
    await until(lambda: admission.in_flight == 0, "the second call's slot coming back")


async def until_no_reservation(harness: Harness) -> None:
    for _ in range(2_000):
        if (await budget(harness)).limits[0].reserved_micros == 0:
            return
        await asyncio.sleep(0.005)
    pytest.fail("the cancelled call's hold was not settled")


async def test_calls_that_fail_give_their_slot_back(serve: HarnessFactory) -> None:
    harness, clock = await start(serve, max_streams=1)
    clock.gate.set()

    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await harness.router.Complete(user_request("hello", max_tokens=0), metadata=AUTH)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as garbled:
        await harness.channel.unary_unary("/fareway.v1.RouterService/Complete")(
            b"\xff\xff\xff", metadata=AUTH
        )
    assert garbled.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    assert admission_of(harness).in_flight == 0
    reply = await harness.router.Complete(user_request("hello"), metadata=AUTH)
    assert reply.stop_reason


async def test_a_reload_applies_a_new_bound_to_the_next_call(
    serve: HarnessFactory, tmp_path: Path
) -> None:
    harness, clock = await start(serve, max_streams=1)
    held = await hold_a_stream(harness)
    assert (await refused(harness)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    path = tmp_path / "fareway.yaml"
    path.write_text(config_text(max_streams=2))

    assert await Reloader(harness.running.serving, str(path), ENV, "127.0.0.1").reload()

    second = await hold_a_stream(harness)
    assert admission_of(harness).in_flight == 2, "the count survived the reload"
    assert (await refused(harness)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    clock.gate.set()
    for stream in (held, second):
        assert (await read_to_end(stream))[-1].WhichOneof("event") == "done"
    assert admission_of(harness).in_flight == 0
