"""CPU per stream on the request engine's common path (one model, no fallback).

The engine and the servicer's encoding run in-process, without gRPC, on the real runtime
(`build_runtime`) with its models served by `sim` at zero latency: N requests, each decided
once by the router, then streamed with `Engine.run` and every event encoded as the
servicer encodes it (`encode_event`). What is left is the engine's own work per stream: the
hold, the attempt, the text's way to the writer, the usage and the settle. Tracing and metrics
go to SDK providers that export nothing, as in production without OTEL_* variables.

Run it on two checkouts to compare them (issue 9: the engine must not be slower than the
loop it replaced); a checkout that is not the installed one is put first on the path with
tools/typecheck_tree.py's symlink tree:

    python bench/engine.py                          # 2,000 streams of 200 tokens, 3 runs
    python tools/typecheck_tree.py  # in the other checkout, then from this one:
    PYTHONPATH=/path/to/other/build/typecheck python bench/engine.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from sim_config import sim_config  # this folder: see sim_config's docstring

import fareway.routing.request
import fareway.server
from fareway.budgets.ledger import RateLimit
from fareway.core.clock import SystemClock
from fareway.routing.request import RouteRequest
from fareway.routing.router import TenantPolicy
from fareway.server.router_service import encode_event
from fareway.server.runtime import Runtime, build_runtime
from fareway.telemetry.setup import Telemetry


def user_turn(text: str) -> Any:
    """A user turn of the checkout under test, whose request module is the one imported (a
    checkout from before the content model, issue 12's baseline, has its own message type)."""
    old = getattr(fareway.routing.request, "ChatMessage", None)
    if old is not None:
        return old(fareway.routing.request.Role.USER, text)  # type: ignore[attr-defined]
    from fareway.core.content import Message

    return Message.user(text)


async def one_stream(runtime: Runtime, index: int) -> int:
    """Decide and stream one request; the number of events it produced."""
    request = RouteRequest(
        (user_turn(f"Name a colour, please ({index})."),), 4000, "bench", str(index)
    )
    decision = await runtime.router.decide(request, TenantPolicy(strategy="rules"))
    tracing = runtime.telemetry.tracing
    count = 0
    with tracing.route_span("bench") as span:
        run = runtime.generation.run(decision, runtime.clock.monotonic(), RateLimit(), span, 60.0)
        async with aclosing(run) as events:
            async for event in events:
                encode_event(event, "")
                count += 1
    return count


async def measure(
    streams: int, tokens: int, concurrency: int, pace: float = 0
) -> tuple[float, int]:
    """(CPU microseconds per stream, events per stream) for one run on a fresh runtime, the
    sim answering `pace` tokens a second (0: at once)."""
    config = sim_config(tokens, pace)
    telemetry = Telemetry.from_providers(TracerProvider(), MeterProvider(), False)
    runtime = await build_runtime(config, SystemClock(), {"BENCH_KEY": "k"}, None, telemetry)
    counts: list[int] = []

    async def worker(offset: int) -> None:
        for i in range(offset, streams, concurrency):
            counts.append(await one_stream(runtime, i))

    await one_stream(runtime, -1)  # warm up imports and caches
    started = time.process_time()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    cpu_s = time.process_time() - started
    return cpu_s / streams * 1e6, max(counts)


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--tokens-per-second",
        type=float,
        default=0,
        help="pace the sim like a real upstream (default 0: every token at once)",
    )
    options = parser.parse_args(argv)
    server = Path(fareway.server.__path__[0])
    engine = "server/engine" if (server / "engine").is_dir() else "the generation loop"
    print(f"fareway.server from {server} ({engine})")
    pace = options.tokens_per_second
    paced = f"{pace:g} tokens/s" if pace else "unpaced"
    print(
        f"{options.streams} streams of {options.tokens} tokens ({paced}), "
        f"median of {options.runs} runs"
    )
    for concurrency in options.concurrency:
        runs = [
            await measure(options.streams, options.tokens, concurrency, options.tokens_per_second)
            for _ in range(options.runs)
        ]
        cpu_us = statistics.median(r[0] for r in runs)
        print(
            f"concurrency {concurrency:>3}: {cpu_us:8.0f} CPU µs per stream "
            f"({runs[0][1]} events each)"
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
