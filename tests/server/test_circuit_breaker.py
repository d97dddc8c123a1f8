"""Circuit breaking and the first-token timeout (F10) through the real server and the real
anthropic SDK against the loopback Anthropic fake: failures open a model's circuit, ListModels
reports it unhealthy, routing skips it with the reason, and after the cool-down (a manual clock,
advanced) one probe goes to it again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fareway.config.schema import CircuitBreakerSettings, FarewayConfig
from fareway.core.clock import ManualClock
from fareway.server.reload import Reloader
from fareway.telemetry import names
from fareway.telemetry.setup import Telemetry
from fareway.v1 import router_pb2
from tests.fakes.anthropic_server import Answer, FakeAnthropic, Hang, HttpError
from tests.server.harness import (
    CONFIG_TEMPLATE,
    ENV,
    TENANT_KEY,
    Harness,
    kinds,
    make_config,
    metadata,
    user_request,
)
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
SIMPLE = "classify this: spam?"  # the rules send it to fast-1, with balanced-1 next
# Two failures in a minute open a circuit for 30 s.
BREAKER = CircuitBreakerSettings(failures=2, window_s=60, failure_rate=0.5, cool_down_s=30)


def upstream_config(base_url: str, first_token_timeout_s: float | None = None) -> FarewayConfig:
    """The test catalog behind the loopback Anthropic server, with BREAKER."""
    config = make_config(provider="upstream", base_url=base_url)
    upstream = config.providers["upstream"].model_copy(
        update={"first_token_timeout_s": first_token_timeout_s}
    )
    providers = {**config.providers, "upstream": upstream}
    return config.model_copy(update={"providers": providers, "circuit_breaker": BREAKER})


@dataclass
class Served:
    harness: Harness
    fake: FakeAnthropic
    clock: ManualClock
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    async def complete(self, text: str = SIMPLE) -> router_pb2.CompleteResponse:
        reply: router_pb2.CompleteResponse = await self.harness.router.Complete(
            user_request(text), metadata=AUTH
        )
        return reply

    async def health(self) -> dict[str, bool]:
        listed = await self.harness.router.ListModels(router_pb2.ListModelsRequest(), metadata=AUTH)
        return {m.id: m.healthy for m in listed.models}

    def sent_models(self) -> list[str]:
        return [r.body["model"] for r in self.fake.requests]

    def circuit_events(self) -> list[dict[str, Any]]:
        """Every circuit transition recorded on a route span, in order."""
        found = []
        for span in self._route_spans():
            for event in span.events:
                if event.name == names.EVENT_CIRCUIT:
                    found.append(dict(event.attributes or {}))
        return found

    def _route_spans(self) -> list[ReadableSpan]:
        spans = [s for s in self.spans.get_finished_spans() if s.name == names.ROUTE_SPAN]
        return sorted(spans, key=lambda s: s.start_time or 0)


async def start(serve: Any, fake: FakeAnthropic, **options: Any) -> Served:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry.from_providers(tracer_provider, MeterProvider([reader]), False)
    clock = ManualClock()  # 2026-01-15T12:00:00Z
    harness = await serve(upstream_config(fake.base_url, **options), clock, telemetry=telemetry)
    return Served(harness, fake, clock, spans, reader)


@pytest.fixture
async def served(serve: Any) -> AsyncIterator[Served]:
    async with FakeAnthropic() as fake:
        yield await start(serve, fake)


def candidates(reply: router_pb2.CompleteResponse) -> dict[str, str]:
    return {c.model: c.excluded_reason for c in reply.decision.candidates}


async def test_repeated_5xx_open_the_circuit_until_a_probe_after_the_cool_down(
    served: Served,
) -> None:
    served.fake.script(HttpError(500, "api_error"), Answer(), HttpError(500, "api_error"), Answer())
    first = await served.complete()
    assert [(f.from_model, f.to_model) for f in first.fallbacks] == [("fast-1", "balanced-1")]
    assert (await served.health())["fast-1"], "one failure does not open it"

    second = await served.complete()  # fast-1's second failure opens its circuit
    assert second.decision.model == "fast-1"
    assert second.usage[-1].model == "balanced-1"
    assert await served.health() == {"fast-1": False, "balanced-1": True, "powerful-1": True}

    skipped = await served.complete()
    assert skipped.decision.model == "balanced-1"
    assert candidates(skipped)["fast-1"] == "circuit open until 2026-01-15T12:00:30Z"
    assert list(skipped.fallbacks) == []
    assert served.sent_models() == ["up-fast", "up-balanced"] * 2 + ["up-balanced"]

    served.clock.advance(30)
    probed = await served.complete()  # the probe: it answers, so the circuit closes
    assert probed.decision.model == "fast-1"
    assert candidates(probed)["fast-1"] == ""
    assert list(probed.fallbacks) == []
    assert served.sent_models()[-1] == "up-fast"
    assert all((await served.health()).values())

    assert [(e[names.CIRCUIT_FROM], e[names.CIRCUIT_TO]) for e in served.circuit_events()] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


async def test_the_request_whose_failure_opened_the_circuit_records_it(served: Served) -> None:
    served.fake.script(HttpError(500, "api_error"), Answer(), HttpError(500, "api_error"), Answer())
    await served.complete()
    await served.complete()

    [opened] = served.circuit_events()
    assert opened[names.MODEL] == "fast-1"
    assert opened[names.CIRCUIT_OPEN_UNTIL] == "2026-01-15T12:00:30Z"
    assert str(opened[names.ERROR]).startswith("overloaded:")
    # On the second request's route span, beside its fallback.
    route = served._route_spans()[1]
    assert [e.name for e in route.events].count(names.EVENT_CIRCUIT) == 1
    assert names.EVENT_FALLBACK in [e.name for e in route.events]


async def test_a_retry_after_longer_than_the_cool_down_keeps_the_model_skipped(
    served: Served,
) -> None:
    limited = HttpError(429, "rate_limit_error", "slow down", retry_after="90")
    served.fake.script(limited, Answer(), limited, Answer())
    await served.complete()
    await served.complete()

    served.clock.advance(30)  # the cool-down is over, the provider's Retry-After is not
    skipped = await served.complete()
    assert candidates(skipped)["fast-1"] == "circuit open until 2026-01-15T12:01:30Z"
    assert not (await served.health())["fast-1"]

    served.clock.advance(60)
    probed = await served.complete()
    assert probed.decision.model == "fast-1"
    assert served.sent_models()[-1] == "up-fast"


async def test_a_probe_that_fails_reopens_the_circuit_and_falls_back(served: Served) -> None:
    served.fake.script(HttpError(500, "api_error"), Answer(), HttpError(500, "api_error"), Answer())
    await served.complete()
    await served.complete()
    served.clock.advance(30)

    served.fake.script(HttpError(503, "overloaded_error"), Answer())
    probed = await served.complete()

    assert [(f.from_model, f.to_model) for f in probed.fallbacks] == [("fast-1", "balanced-1")]
    assert (
        candidates(await served.complete())["fast-1"] == "circuit open until 2026-01-15T12:01:00Z"
    )
    assert [e[names.CIRCUIT_TO] for e in served.circuit_events()] == [
        "open",
        "half_open",
        "open",
    ]


async def test_a_rejected_request_does_not_count_against_the_model(served: Served) -> None:
    served.fake.script(*[HttpError(400, "invalid_request_error"), Answer()] * 3)
    for _ in range(3):
        await served.complete()

    assert all((await served.health()).values())
    assert served.circuit_events() == []


async def test_a_stall_past_the_first_token_timeout_falls_back_and_bills_nothing_for_it(
    serve: Any,
) -> None:
    async with FakeAnthropic() as fake:
        served = await start(serve, fake, first_token_timeout_s=0.2)
        fake.script(Answer(first_byte_delay_s=30), Answer(input_tokens=20, output_tokens=7))

        events = [
            e async for e in served.harness.router.Generate(user_request(SIMPLE), metadata=AUTH)
        ]

        assert kinds(events) == ["decision", "fallback", "delta", "usage", "done"]
        fallback = events[1].fallback
        assert (fallback.from_model, fallback.to_model) == ("fast-1", "balanced-1")
        assert fallback.error == "timeout: no first token within 0.2 s"
        assert events[-2].usage.model == "balanced-1", "the stalled attempt used nothing"
        assert await fake.requests[0].wait_disconnected(timeout_s=5), "the stall was hung up on"
        state = await served.harness.ledger.state("acme")
        assert (state.limits[0].spent_micros, state.limits[0].reserved_micros) == (
            events[-1].done.total.cost_micros,
            0,
        )
        # 20 input tokens at $3/Mtok and 7 output at $15/Mtok: balanced-1's answer only.
        assert events[-1].done.total.cost_micros == 20 * 3 + 7 * 15


async def test_while_the_probe_is_out_other_requests_skip_the_model(served: Served) -> None:
    served.fake.script(HttpError(500, "api_error"), Answer(), HttpError(500, "api_error"), Answer())
    await served.complete()
    await served.complete()
    served.clock.advance(30)
    served.fake.script(Answer(first_byte_delay_s=1.0))  # the probe takes a moment to answer

    probing = asyncio.create_task(served.complete())
    try:
        await until(lambda: served.sent_models()[-1:] == ["up-fast"])
        meanwhile = await served.complete()
    finally:
        probe = await probing

    assert candidates(meanwhile)["fast-1"] == "circuit half-open: a probe attempt is in flight"
    assert meanwhile.decision.model == "balanced-1"
    assert (probe.decision.model, list(probe.fallbacks)) == ("fast-1", [])
    assert all((await served.health()).values())


async def test_a_candidate_whose_circuit_opened_after_the_decision_is_skipped(
    serve: Any,
) -> None:
    async with FakeAnthropic() as fake:
        served = await start(serve, fake, first_token_timeout_s=0.5)
        # fast-1 stalls past its first-token timeout; meanwhile two calls pinned to
        # balanced-1 fail and open its circuit, so the stalled call's fallback skips it.
        fake.script(
            Answer(first_byte_delay_s=30), HttpError(500, "api_error"), HttpError(500, "api_error")
        )
        stalled = asyncio.create_task(served.complete())
        try:
            await until(lambda: len(fake.requests) == 1)
            for _ in range(2):
                with pytest.raises(grpc.aio.AioRpcError):
                    await served.harness.router.Complete(
                        user_request("hi", model="balanced-1"), metadata=AUTH
                    )
            assert not (await served.health())["balanced-1"]
        finally:
            reply = await stalled

        assert [(f.from_model, f.to_model) for f in reply.fallbacks] == [
            ("fast-1", "balanced-1"),
            ("balanced-1", "powerful-1"),
        ]
        assert reply.fallbacks[1].error == "circuit_open: circuit open until 2026-01-15T12:00:30Z"
        assert [u.model for u in reply.usage] == ["powerful-1"]
        assert served.sent_models() == ["up-fast", "up-balanced", "up-balanced", "up-powerful"]


async def until(condition: Callable[[], bool]) -> None:
    """Wait (boundedly) for something another task does."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("it never happened")


async def test_each_transition_is_one_log_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fareway.server.engine.observe")
    served.fake.script(HttpError(500, "api_error"), Answer(), HttpError(500, "api_error"), Answer())
    await served.complete()
    await served.complete()
    served.clock.advance(30)
    await served.complete()

    lines = [
        (r.levelname, r.getMessage()) for r in caplog.records if "circuit of" in r.getMessage()
    ]
    opened = "circuit of model fast-1: closed -> open until 2026-01-15T12:00:30Z after overloaded:"
    assert [level for level, _ in lines] == ["WARNING", "INFO", "INFO"]
    assert lines[0][1].startswith(opened)
    assert [text for _, text in lines[1:]] == [
        "circuit of model fast-1: open -> half_open",
        "circuit of model fast-1: half_open -> closed",
    ]


async def test_a_pinned_model_with_an_open_circuit_fails_fast_as_unavailable(
    served: Served,
) -> None:
    served.fake.script(HttpError(500, "api_error"), Answer(), HttpError(500, "api_error"), Answer())
    await served.complete()
    await served.complete()
    served.clock.advance(10)
    sent = len(served.fake.requests)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.harness.router.Complete(user_request("hi", model="fast-1"), metadata=AUTH)

    error = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == (
        "no model can serve this request now; fast-1: circuit open until 2026-01-15T12:00:30Z"
    )
    info = detail(error, error_details_pb2.ErrorInfo)
    assert info is not None
    assert (info.reason, info.metadata["model"]) == ("CIRCUIT_OPEN", "fast-1")
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry is not None
    assert retry.retry_delay.seconds == 20
    assert len(served.fake.requests) == sent, "nothing was sent upstream"
    state = await served.harness.ledger.state("acme")
    assert state.limits[0].reserved_micros == 0


async def test_the_callers_own_deadline_does_not_count_against_the_model(
    served: Served,
) -> None:
    for _ in range(3):
        served.fake.script(Hang())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.harness.router.Complete(
                user_request("hi", model="fast-1"), metadata=AUTH, timeout=0.3
            )
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    assert all((await served.health()).values())
    assert served.circuit_events() == []


async def test_a_reload_keeps_the_breaker_and_its_open_circuits(
    served: Served, tmp_path: Path
) -> None:
    served.fake.script(HttpError(500, "api_error"), Answer(), HttpError(500, "api_error"), Answer())
    await served.complete()
    await served.complete()
    before = served.harness.running.runtime
    text = CONFIG_TEMPLATE.format(
        provider="upstream",
        base_url=served.fake.base_url,
        day_cap_usd=100,
        fast_context_window=200_000,
        requests_per_minute=10_000,
    )
    path = tmp_path / "fareway.yaml"
    path.write_text(text + f"circuit_breaker: {BREAKER.model_dump()}\n")

    assert await Reloader(served.harness.running.serving, str(path), ENV, "127.0.0.1").reload()

    after = served.harness.running.runtime
    assert after is not before
    assert after.circuit_breaker is before.circuit_breaker
    assert after.router.breaker is before.circuit_breaker
    assert not (await served.health())["fast-1"]
    skipped = await served.complete()
    assert candidates(skipped)["fast-1"] == "circuit open until 2026-01-15T12:00:30Z"
