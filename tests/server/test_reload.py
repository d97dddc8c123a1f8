"""Configuration reload in-process: new calls get the new configuration, a stream in flight
finishes on the one it started with, and a bad file changes nothing and logs one line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest

from fareway.budgets.windows import Window
from fareway.config.loader import parse_config
from fareway.core.errors import Unauthenticated
from fareway.server.auth import Principal
from fareway.server.reload import Reloader
from fareway.v1 import budget_pb2, router_pb2
from tests.server.harness import GatedClock, Harness, HarnessFactory, metadata, user_request

ACME_KEY, STEADY_KEY, NEWCO_KEY, ADMIN_KEY = "acme-key", "steady-key", "newco-key", "admin-key"
ENV = {
    "ACME_KEY": ACME_KEY,
    "STEADY_KEY": STEADY_KEY,
    "NEWCO_KEY": NEWCO_KEY,
    "ADMIN_KEY": ADMIN_KEY,
}


def config_text(
    model: str = "alpha",
    acme_cap_usd: int = 10,
    acme_target_ms: int = 1000,
    newco: bool = False,
    steady: bool = True,
    extra_server: str = "",
    ledger: str = "{type: memory}",
) -> str:
    """One paced sim model (so a stream can be held mid-answer) and tenants acme and steady,
    optionally newco."""
    tenants = f"""
  acme:
    api_keys: [{{env: ACME_KEY}}]
    budget: [{{window: day, cap_usd: {acme_cap_usd}}}]
    latency_target_ms: {acme_target_ms}"""
    if steady:
        tenants += """
  steady:
    api_keys: [{env: STEADY_KEY}]
    budget: [{window: day, cap_usd: 3}]"""
    if newco:
        tenants += """
  newco:
    api_keys: [{env: NEWCO_KEY}]
    budget: [{window: month, cap_usd: 5}]"""
    return f"""
server: {{grace_s: 1{extra_server}}}
ledger: {ledger}
tiers: [fast]
providers: {{sim: {{type: sim}}}}
models:
  - {{id: {model}, provider: sim, tier: fast, input_usd_per_mtok: 1, output_usd_per_mtok: 5,
      context_window: 100000, max_output_tokens: 4000,
      sim: {{tokens_per_second: 50, answer_tokens: 20}}}}
strategies:
  rules: {{type: rules, default_tier: fast, rules: []}}
default_strategy: rules
tenants:{tenants}
admin_keys: [{{env: ADMIN_KEY}}]
"""


# Two problems: the loader reports both, on two lines.
BAD_CONFIG = (
    config_text(model="gamma")
    .replace("tier: fast,", "tier: turbo,")
    .replace("default_strategy: rules", "default_strategy: nope")
)


async def start(serve: HarnessFactory, tmp_path: Path) -> tuple[Harness, GatedClock, Path]:
    path = tmp_path / "fareway.yaml"
    path.write_text(config_text())
    clock = GatedClock()
    harness: Harness = await serve(parse_config(config_text()), clock=clock, env=ENV)
    return harness, clock, path


def reloader(harness: Harness, path: Path, host: str = "127.0.0.1") -> Reloader:
    return Reloader(harness.running.serving, str(path), ENV, host)


async def read_to_end(stream: Any) -> list[router_pb2.GenerateEvent]:
    events = []
    while (event := await stream.read()) is not grpc.aio.EOF:
        events.append(event)
    return events


async def set_day_cap(harness: Harness, tenant: str, cap_micros: int) -> None:
    """What an operator does with SetBudget between two reloads."""
    override = budget_pb2.SetBudgetRequest(
        tenant=tenant,
        limits=[budget_pb2.BudgetLimit(window=budget_pb2.WINDOW_DAY, cap_micros=cap_micros)],
    )
    await harness.budgets.SetBudget(override, metadata=metadata(ADMIN_KEY))


async def route(harness: Harness, key: str) -> str:
    decision = await harness.router.Route(user_request("hello"), metadata=metadata(key))
    model: str = decision.model
    return model


async def test_a_reload_serves_new_calls_while_a_stream_finishes_on_its_own_model(
    serve: HarnessFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness, clock, path = await start(serve, tmp_path)
    stream = harness.router.Generate(user_request("hello"), metadata=metadata(ACME_KEY))
    first = await stream.read()
    assert first.decision.model == "alpha"
    assert (await stream.read()).WhichOneof("event") == "delta"  # now held at the gate

    path.write_text(BAD_CONFIG)
    with caplog.at_level(logging.INFO, logger="fareway.server.reload"):
        assert not await reloader(harness, path).reload()
    assert await route(harness, ACME_KEY) == "alpha", "the bad file changed nothing"

    path.write_text(config_text(model="beta"))
    assert await reloader(harness, path).reload()
    assert await route(harness, ACME_KEY) == "beta", "new calls get the new configuration"

    clock.gate.set()
    rest = await read_to_end(stream)
    assert rest[-1].WhichOneof("event") == "done", "the stream in flight finished"
    assert [e.usage.model for e in rest if e.WhichOneof("event") == "usage"] == ["alpha"]
    assert await stream.code() == grpc.StatusCode.OK


async def test_a_bad_file_is_refused_with_one_log_line_and_changes_nothing(
    serve: HarnessFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness, _, path = await start(serve, tmp_path)
    before = harness.running.runtime
    path.write_text(BAD_CONFIG)

    with caplog.at_level(logging.INFO, logger="fareway.server.reload"):
        assert not await reloader(harness, path).reload()

    [record] = [r for r in caplog.records if r.name == "fareway.server.reload"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is None, "no traceback"
    message = record.getMessage()
    assert "\n" not in message
    assert "refused" in message
    assert "turbo" in message
    assert "nope" in message, "every problem is on the one line"
    assert harness.running.runtime is before
    assert await route(harness, ACME_KEY) == "alpha"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await route(harness, NEWCO_KEY)
    assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_unreadable_file_is_refused(serve: HarnessFactory, tmp_path: Path) -> None:
    harness, _, _ = await start(serve, tmp_path)

    assert not await reloader(harness, tmp_path / "gone.yaml").reload()
    assert await route(harness, ACME_KEY) == "alpha"


async def test_a_reload_changes_keys_and_budgets_the_operator_edited(
    serve: HarnessFactory, tmp_path: Path
) -> None:
    harness, _, path = await start(serve, tmp_path)
    await set_day_cap(harness, "steady", 77_000_000)

    embedders = harness.running.serving.current.embedders
    path.write_text(config_text(acme_cap_usd=20, acme_target_ms=1500, newco=True))
    assert await reloader(harness, path).reload()

    assert harness.running.serving.current.embedders is embedders, "loaded models carry over"
    assert await route(harness, NEWCO_KEY) == "alpha", "a new tenant's key works"
    newco = await harness.ledger.state("newco")
    assert [(lim.limit.window, lim.limit.cap_micros) for lim in newco.limits] == [
        (Window.MONTH, 5_000_000)
    ], "a new tenant gets its configured budget"
    acme = await harness.ledger.state("acme")
    assert [lim.limit.cap_micros for lim in acme.limits] == [20_000_000]
    assert acme.latency_target_ms == 1500, "an edited budget and target apply"
    steady = await harness.ledger.state("steady")
    assert [lim.limit.cap_micros for lim in steady.limits] == [77_000_000], (
        "an unedited tenant keeps its SetBudget override"
    )


async def test_a_changed_latency_target_alone_keeps_the_caps_set_by_setbudget(
    serve: HarnessFactory, tmp_path: Path
) -> None:
    harness, _, path = await start(serve, tmp_path)
    await set_day_cap(harness, "acme", 42_000_000)

    path.write_text(config_text(acme_target_ms=2500))
    assert await reloader(harness, path).reload()

    acme = await harness.ledger.state("acme")
    assert acme.latency_target_ms == 2500
    assert [lim.limit.cap_micros for lim in acme.limits] == [42_000_000]


async def test_a_removed_tenant_can_no_longer_call(serve: HarnessFactory, tmp_path: Path) -> None:
    harness, _, path = await start(serve, tmp_path)
    assert await route(harness, STEADY_KEY) == "alpha"

    path.write_text(config_text(steady=False))
    assert await reloader(harness, path).reload()

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await route(harness, STEADY_KEY)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await route(harness, ACME_KEY) == "alpha"


async def test_what_needs_a_restart_keeps_its_running_value_and_is_logged(
    serve: HarnessFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness, _, path = await start(serve, tmp_path)
    ledger = harness.running.runtime.ledger
    path.write_text(
        config_text(
            model="beta",
            extra_server=", port: 6000, max_attempts: 1",
            ledger=f"{{type: sqlite, path: {tmp_path / 'other.db'}}}",
        )
    )

    with caplog.at_level(logging.INFO, logger="fareway.server.reload"):
        assert await reloader(harness, path).reload()

    runtime = harness.running.runtime
    assert runtime.ledger is ledger
    assert runtime.config.ledger.type == "memory"
    assert runtime.config.server.port == 50051
    assert runtime.config.server.max_attempts == 1, "what can change did"
    assert await route(harness, ACME_KEY) == "beta"
    restart = [r.getMessage() for r in caplog.records if "needs a restart" in r.getMessage()]
    assert any("server.port" in m for m in restart)
    assert any("ledger" in m for m in restart)
    assert not (tmp_path / "other.db").exists(), "the new ledger was not opened"


async def test_a_reload_does_not_bring_the_demo_keys_onto_a_network(
    serve: HarnessFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness, _, _ = await start(serve, tmp_path)
    embedded_default = Reloader(harness.running.serving, None, {}, "0.0.0.0")

    with caplog.at_level(logging.ERROR, logger="fareway.server.reload"):
        assert not await embedded_default.reload()

    assert "fareway-admin-key" in caplog.text
    assert await route(harness, ACME_KEY) == "alpha"


async def test_old_runtimes_are_released_once_their_calls_end(
    serve: HarnessFactory, tmp_path: Path
) -> None:
    harness, clock, path = await start(serve, tmp_path)
    stream = harness.router.Generate(user_request("hello"), metadata=metadata(ACME_KEY))
    await stream.read()
    path.write_text(config_text(model="beta"))
    assert await reloader(harness, path).reload()
    assert harness.running.serving.retired == 1, "the stream still uses the old runtime"

    clock.gate.set()
    await read_to_end(stream)
    assert await stream.code() == grpc.StatusCode.OK
    assert harness.running.serving.retired == 0


def test_config_text_is_valid() -> None:
    for text in (config_text(), config_text(newco=True, steady=False, model="beta")):
        parse_config(text)


async def test_stop_after_a_reload_drains_the_old_runtime_s_stream_and_settles_it(
    serve: HarnessFactory, tmp_path: Path
) -> None:
    harness, clock, path = await start(serve, tmp_path)
    stream = harness.router.Generate(user_request("hello"), metadata=metadata(ACME_KEY))
    await stream.read()
    path.write_text(config_text(model="beta"))
    assert await reloader(harness, path).reload()

    stopping = asyncio.create_task(harness.running.stop(grace_s=30))
    clock.gate.set()
    events = await read_to_end(stream)
    await stopping

    assert events[-1].WhichOneof("event") == "done"
    state = await harness.ledger.state("acme")
    assert state.limits[0].reserved_micros == 0
    assert state.limits[0].spent_micros == events[-1].done.total.cost_micros
    assert harness.running.serving.retired == 0


async def test_a_caller_whose_tenant_a_reload_removed_is_unauthenticated(harness: Harness) -> None:
    # A call authenticated just before the reload can reach the new runtime without its tenant.
    runtime = harness.running.runtime
    with pytest.raises(Unauthenticated, match="no longer configured"):
        runtime.policy_for(Principal("removed-by-reload"))
    with pytest.raises(Unauthenticated):
        runtime.visible_models(Principal("removed-by-reload"))
