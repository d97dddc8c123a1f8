"""Real `fareway serve` processes for the end-to-end tests, and what the tests need around them.

The servers are separate processes started from a written YAML file, as an operator would run
them, because what these tests check (replicas sharing a ledger, surviving `kill -9`) only
exists across processes. `Fleet` starts them on free ports, waits for their health check, and
kills every one it started when the test ends, whatever happened.

Costs are made deterministic: one sim model whose answers are always longer than the request's
`max_tokens` (answer_tokens far above it, so every answer stops at max_tokens), priced so that
each token costs whole micro-USD. The sim provider counts input tokens with the router's own
estimator, so a request's settled cost always equals its reservation: `request_cost_micros`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fareway.budgets.pricing import Price
from fareway.client import AsyncClient, Budget, BudgetLimit, Decision, Done, Window
from fareway.routing.tokens import estimate_prompt_tokens

T = TypeVar("T")

FAREWAY = (sys.executable, "-m", "fareway.cli.main")
TENANT = "e2e"
TENANT_KEY = "e2e-tenant-key"
MODEL = "sim-1"
# One micro-USD per input token and fifty per output token: no rounding anywhere.
INPUT_USD_PER_MTOK = 1
OUTPUT_USD_PER_MTOK = 50
PRICE = Price.from_usd_per_mtok(str(INPUT_USD_PER_MTOK), str(OUTPUT_USD_PER_MTOK))
# Far above any max_tokens the tests use: sim answers run 75 % to 125 % of this.
ANSWER_TOKENS = 4_000
# Variables of the test run that must not reach the servers: the key would make the sim models
# real, the URL would replace the configuration's own ledger url.
INHERITED_BUT_NOT_PASSED = frozenset({"ANTHROPIC_API_KEY", "FAREWAY_REDIS_URL"})
STARTUP_TIMEOUT_S = 60  # three interpreters importing grpc on two busy cores
CALL_TIMEOUT_S = 60


@dataclass(frozen=True)
class Sim:
    """How fast the sim model answers: `tokens_per_second` 0 means all at once."""

    ttft_ms: int = 0
    tokens_per_second: float = 0


INSTANT = Sim()


def request_cost_micros(prompt: str, max_tokens: int) -> int:
    """What one request of `prompt` costs, reserved and settled alike (see the module doc)."""
    return PRICE.cost_micros(estimate_prompt_tokens("", [prompt]), max_tokens)


def usd(micros: int) -> str:
    """Micro-USD as the configuration's `cap_usd` takes them, exactly."""
    return str(Decimal(micros).scaleb(-6))


def write_config(
    path: Path, ledger: Mapping[str, Any], caps_micros: Mapping[Window, int], sim: Sim
) -> Path:
    """A configuration with the one sim model, tenant TENANT with these caps (hard, rejecting,
    no soft fraction, so nothing is ever downgraded) and `ledger` as the ledger section."""
    config = {
        "server": {"host": "127.0.0.1", "grace_s": 0, "max_attempts": 1},
        "ledger": dict(ledger),
        "tiers": ["fast"],
        "providers": {"sim": {"type": "sim"}},
        "models": [
            {
                "id": MODEL,
                "provider": "sim",
                "tier": "fast",
                "input_usd_per_mtok": INPUT_USD_PER_MTOK,
                "output_usd_per_mtok": OUTPUT_USD_PER_MTOK,
                "context_window": 200_000,
                "max_output_tokens": 8_000,
                "sim": {
                    "ttft_ms": sim.ttft_ms,
                    "tokens_per_second": sim.tokens_per_second,
                    "answer_tokens": ANSWER_TOKENS,
                },
            }
        ],
        "strategies": {"rules": {"type": "rules", "default_tier": "fast", "rules": []}},
        "default_strategy": "rules",
        "tenants": {
            TENANT: {
                "api_keys": [{"env": "E2E_TENANT_KEY"}],
                "budget": [
                    {"window": window.value, "cap_usd": usd(cap)}
                    for window, cap in caps_micros.items()
                ],
            }
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Server:
    """One `fareway serve` process; its output goes to `log_path`."""

    name: str
    process: asyncio.subprocess.Process
    target: str
    log_path: Path

    def log(self) -> str:
        """The end of the server's output, for failure messages."""
        return self.log_path.read_text(errors="replace")[-4_000:]

    def client(self) -> AsyncClient:
        """A tenant client for this server."""
        return AsyncClient(self.target, api_key=TENANT_KEY, timeout_s=CALL_TIMEOUT_S)

    async def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would end it, and reap it. Idempotent."""
        if self.process.returncode is None:
            with suppress(ProcessLookupError):  # exited just now: wait() below reaps it
                self.process.kill()
        await self.process.wait()


@dataclass
class Fleet:
    """Starts servers for one test and kills them all in `kill_all` (the fixture's teardown)."""

    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)

    async def start(self, config: Path, count: int = 1) -> list[Server]:
        """`count` servers on `config`, started together; returns once all are SERVING."""
        started = [await self._spawn(config) for _ in range(count)]
        await asyncio.gather(*(wait_until_serving(server) for server in started))
        return started

    async def kill_all(self) -> None:
        for server in self.servers:
            await server.kill()

    async def _spawn(self, config: Path) -> Server:
        name = f"server-{len(self.servers) + 1}"
        port = free_port()
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            process = await asyncio.create_subprocess_exec(
                *FAREWAY,
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                cwd=self.workdir,
                env=self._environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        server = Server(name, process, f"127.0.0.1:{port}", log_path)
        self.servers.append(server)  # before anything can fail: kill_all must see it
        return server

    def _environment(self) -> dict[str, str]:
        # The written configuration names the ledger: FAREWAY_REDIS_URL (which CI sets for the
        # in-process tests) would otherwise replace its url and point at another Redis.
        env = {k: v for k, v in os.environ.items() if k not in INHERITED_BUT_NOT_PASSED}
        env.update({"E2E_TENANT_KEY": TENANT_KEY, **self.env})
        return env


def free_port() -> int:
    """A port nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until_serving(server: Server, within_s: float = STARTUP_TIMEOUT_S) -> None:
    """Poll the gRPC health check until SERVING; fail with the server's log if it exits or
    does not get there in time."""
    deadline = time.monotonic() + within_s
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if server.process.returncode is not None:
                pytest.fail(f"{server.name} exited ({server.process.returncode}):\n{server.log()}")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail(f"{server.name} was not serving after {within_s} s:\n{server.log()}")
            await asyncio.sleep(0.05)


async def eventually(
    read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within_s: float, what: str
) -> T:
    """Call `read` until `ok` accepts its value (returned), or fail after `within_s`: for
    effects that land shortly after the call that causes them (a settle after `Done`, a hold
    expiring)."""
    deadline = time.monotonic() + within_s
    while True:
        value = await read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {within_s} s; last seen: {value}")
        await asyncio.sleep(0.05)


def limit(budget: Budget, window: Window) -> BudgetLimit:
    """The budget's limit on `window`."""
    [found] = [lim for lim in budget.limits if lim.window is window]
    return found


async def generate_to_done(
    client: AsyncClient, prompt: str, max_tokens: int
) -> tuple[Decision, Done]:
    """Stream one answer and return its first event and its Done. Reads on past Done to the
    end of the call: the server settles the hold after sending Done, and the call ends (with
    OK) only once that settle is done, so the ledger is up to date when this returns;
    cancelling at Done instead would race with the settle."""
    decision: Decision | None = None
    done: Done | None = None
    async with aclosing(client.generate(prompt, max_tokens=max_tokens)) as events:
        async for event in events:
            if isinstance(event, Decision):
                decision = event
            elif isinstance(event, Done):
                done = event
    assert decision is not None, "a stream starts with a Decision"
    assert done is not None, "a stream that ends well ends with Done"
    return decision, done


def total_cost(done: Sequence[Done]) -> int:
    """What these finished requests were charged, as the server reported it."""
    return sum(d.total.cost_micros for d in done)
