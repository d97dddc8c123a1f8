"""Servers for the client tests.

Async tests use the harness of tests/server (`serve`, `harness`, re-exported here). The blocking
`Client` would block that harness's event loop, so sync tests get the same server running in a
background thread with its own loop (`threaded`, `server`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from fareway.config.schema import FarewayConfig, SimSettings
from fareway.core.clock import Clock, ManualClock
from fareway.server.app import RunningServer, start_server
from fareway.server.runtime import build_runtime
from tests.fakes.anthropic_server import FakeAnthropic
from tests.server.harness import ENV, harness, make_config, serve

__all__ = ["ServerThread", "harness", "paced_config", "serve"]

T = TypeVar("T")


def paced_config(
    ttft_ms: int = 0, tokens_per_second: float = 50, answer_tokens: int = 2000
) -> FarewayConfig:
    """The harness configuration with every sim model paced: with the default, an answer takes
    about 40 seconds on the system clock, so a test can stop it half way."""
    config = make_config()
    sim = SimSettings(
        ttft_ms=ttft_ms, tokens_per_second=tokens_per_second, answer_tokens=answer_tokens
    )
    models = tuple(model.model_copy(update={"sim": sim}) for model in config.models)
    return config.model_copy(update={"models": models})


class ServerThread:
    """A fareway server on a free port, served by an event loop in a daemon thread."""

    def __init__(self, config: FarewayConfig, clock: Clock) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.running: RunningServer = self.run(self._start(config, clock))

    async def _start(self, config: FarewayConfig, clock: Clock) -> RunningServer:
        runtime = await build_runtime(config, clock, ENV)
        return await start_server(runtime, "127.0.0.1", 0)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def ledger(self, tenant: str = "acme") -> tuple[int, int]:
        """(spent, reserved) in micro-USD, summed over the tenant's limits."""
        state = self.run(self.running.runtime.ledger.state(tenant))
        return (
            sum(s.spent_micros for s in state.limits),
            sum(s.reserved_micros for s in state.limits),
        )

    def wait_until_released(self, tenant: str = "acme", within_s: float = 5) -> None:
        """Wait until nothing is reserved, or fail the test."""
        deadline = time.monotonic() + within_s
        while self.ledger(tenant)[1] != 0:
            if time.monotonic() > deadline:
                pytest.fail(f"{tenant}'s reservation was not released within {within_s} s")
            time.sleep(0.01)

    def stop(self) -> None:
        self.run(self.running.stop(grace_s=0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


ThreadedFactory = Callable[..., ServerThread]


@pytest.fixture
def threaded() -> Iterator[ThreadedFactory]:
    """Start threaded servers on demand: `threaded(config, clock)`; all stop at the end."""
    started: list[ServerThread] = []

    def start(config: FarewayConfig | None = None, clock: Clock | None = None) -> ServerThread:
        server = ServerThread(config or make_config(), clock or ManualClock())
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(threaded: ThreadedFactory) -> ServerThread:
    """One threaded server with the harness configuration and a manual clock."""
    return threaded()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    """A loopback Anthropic server, for provider failures."""
    async with FakeAnthropic() as running:
        yield running
