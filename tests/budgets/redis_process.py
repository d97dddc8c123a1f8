"""A redis-server of the test's own, on a free port, that the test may stop, restart empty
and start again: what the ledger fault tests need and a shared Redis must never be put
through. Nothing is kept on disk (`--save "" --appendonly no`), so a restart is a Redis that
lost everything.

Tests get one through `redis_process()`: it skips with the reason when /usr/bin/redis-server
is missing, unless FAREWAY_REQUIRE_REDIS=1, which makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0


class RedisProcess:
    """One redis-server on 127.0.0.1:`port`, started and stopped by the test."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start the server (empty) and return once it answers PING."""
        self._process = await asyncio.create_subprocess_exec(
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        client = Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            while True:
                if self._process.returncode is not None:
                    pytest.fail(f"redis-server on port {self.port} exited at start")
                with suppress(OSError, RedisError):  # not listening yet
                    if await client.ping():
                        return
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {self.port} not up in {START_TIMEOUT_S} s")
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """SIGKILL the server, as a crash would; idempotent."""
        if self._process is not None and self._process.returncode is None:
            with suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()

    async def restart(self) -> None:
        """Kill it and start a new, empty one on the same port."""
        await self.stop()
        await self.start()


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str:
    """The redis-server to run, or skip (fail under FAREWAY_REQUIRE_REDIS=1) saying why."""
    binary = REDIS_SERVER if os.access(REDIS_SERVER, os.X_OK) else shutil.which("redis-server")
    if binary is None:
        message = f"ledger fault tests start their own Redis: no {REDIS_SERVER} here"
        if os.environ.get("FAREWAY_REQUIRE_REDIS") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return binary


@asynccontextmanager
async def redis_process() -> AsyncIterator[RedisProcess]:
    """A started RedisProcess, killed when the context ends."""
    server = RedisProcess(redis_binary(), free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
