"""Fairness under huge prompts: how much a few callers sending multi-megabyte prompts slow down
everybody else's small calls.

The real server runs in a child process (its event loop and GIL its own, as in production),
its models on the `sim` provider with context windows large enough that the huge prompts are
routed, not refused. Small `Route` calls are made back to back by one caller in this process,
on its own connection, in three phases:

- idle: the small calls alone;
- huge: while `--heavy` callers send `--prompt-mb` prompts to `Route` as fast as they are
  answered, each on its own connection;
- control: the same number of callers sending 1 KB prompts as fast, so the table separates
  what a prompt's size costs the others from what any busy caller does.

The heavy callers run in a second child process at the lowest CPU priority (`nice 19`): on a
small machine they would otherwise compete with the server for the CPU, where in production
they run on other machines. Their requests are serialized once, up front. The phases alternate
over `--rounds` rounds (idle, huge, control, idle, ...), so that whatever else the machine does
falls on all of them alike; each phase of a round makes `--calls` small calls. The table gives
the p50 and p99 of each phase's small calls and their ratios to idle.

    python bench/fairness.py                       # 4 callers, 3 MB prompts, 3 rounds
    python bench/fairness.py --heavy 8 --prompt-mb 3 --calls 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from fareway.config.loader import parse_config
from fareway.core.clock import SystemClock
from fareway.server.app import start_server
from fareway.server.runtime import build_runtime
from fareway.v1 import router_pb2

KEY = "bench-key"
ENV = {"BENCH_KEY": KEY}
ROUTE = "/fareway.v1.RouterService/Route"
CONTROL_BYTES = 1024

# Context windows of 4M tokens admit a 3 MB prompt (about 1M tokens at 3 bytes a token). The
# rules are the default configuration's, plus one on code, so every feature is computed.
CONFIG = """
server: {grace_s: 1}
ledger: {type: memory}
providers:
  sim: {type: sim}
models:
  - {id: fast-1, provider: sim, provider_model_id: sim-fast, tier: fast,
     input_usd_per_mtok: 1, output_usd_per_mtok: 5, context_window: 4000000,
     max_output_tokens: 8000, quality: 0.7}
  - {id: balanced-1, provider: sim, provider_model_id: sim-balanced, tier: balanced,
     input_usd_per_mtok: 3, output_usd_per_mtok: 15, context_window: 4000000,
     max_output_tokens: 8000, quality: 0.85}
  - {id: powerful-1, provider: sim, provider_model_id: sim-powerful, tier: powerful,
     input_usd_per_mtok: 5, output_usd_per_mtok: 25, context_window: 4000000,
     max_output_tokens: 16000, quality: 0.95}
strategies:
  rules:
    type: rules
    default_tier: balanced
    rules:
      - name: simple-classification
        when:
          max_words: 9
          any_keywords: [classify, label, "is this", "yes or no", "true or false", categorize,
                         sentiment, extract, "list all", "mentioned"]
        tier: fast
      - name: complex-reasoning
        when:
          any_keywords: [analyze, analyse, synthesize, "compare and contrast",
                         "provide a comprehensive", "step by step", design, "explain why",
                         "what are the implications", "strategic implications"]
        tier: powerful
      - {name: code, when: {has_code: true}, tier: balanced}
      - {name: long-prompt, when: {min_words: 101}, tier: powerful}
default_strategy: rules
tenants:
  bench:
    api_keys: [{env: BENCH_KEY}]
"""

SMALL_PROMPT = "classify this: spam or not?"
# Prose without code or routing keywords, so that every rule looks through all it reads.
WORDS = [
    *["the", "quarterly", "report", "covers", "revenue", "costs", "headcount", "hiring"],
    *["plans", "office", "space", "travel", "vendor", "contracts", "renewals", "customer"],
    *["feedback", "survey", "results", "and", "targets"],
]


@dataclass(frozen=True)
class Options:
    """What to run: sizes, counts and limits of one invocation."""

    heavy: int = 4
    prompt_bytes: int = 3 * 1024 * 1024
    calls: int = 300  # small calls per phase and round
    rounds: int = 3
    warmup: int = 50
    key: str = KEY


@dataclass
class Phase:
    """The small calls' latencies in one phase, and what the heavy callers got done meanwhile."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    heavy_answers: int = 0
    heavy_errors: int = 0
    loaded_seconds: float = 0.0  # how long the heavy callers ran

    def percentile(self, p: float) -> float:
        """The p-th percentile (0-100) of the small calls' latency, in milliseconds."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


@dataclass
class Counts:
    """What heavy callers got back: answers and errors."""

    answers: int = 0
    errors: int = 0


class Load(Protocol):
    """Heavy callers that can be started and stopped again, round after round."""

    async def start(self) -> None:
        """Start the callers; return once each has had an answer."""
        ...

    async def stop(self) -> Counts:
        """Stop the callers; what they got since `start`."""
        ...


def huge_prompt(size: int, seed: int = 7) -> str:
    """About `size` bytes of plain prose in lines of about 80 characters."""
    rng = random.Random(seed)
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(12))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:size]


def request_bytes(prompt: str) -> bytes:
    """A serialized Route request for one user turn."""
    message = router_pb2.Message(role=router_pb2.ROLE_USER, content=prompt)
    return router_pb2.GenerateRequest(messages=[message], max_tokens=256).SerializeToString()


def channel(target: str) -> grpc.aio.Channel:
    """A channel on its own connection (callers do not share one HTTP/2 connection)."""
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_send_message_length", -1)]
    return grpc.aio.insecure_channel(target, options=options)


async def small_calls(target: str, key: str, calls: int, into: list[float] | None = None) -> None:
    """`calls` small Route calls back to back; their latencies (ms) go `into` the list."""
    async with channel(target) as ch:
        route = ch.unary_unary(ROUTE, request_serializer=None, response_deserializer=None)
        body = request_bytes(SMALL_PROMPT)
        metadata = (("authorization", f"Bearer {key}"),)
        for _ in range(calls):
            started = time.perf_counter()
            await route(body, metadata=metadata, timeout=60)
            if into is not None:
                into.append((time.perf_counter() - started) * 1000)


class InProcessLoad:
    """Heavy callers as tasks of this process. The smoke test uses it; the benchmark runs it
    in its load process (see SubprocessLoad)."""

    def __init__(self, target: str, prompt_bytes: int, callers: int, key: str = KEY) -> None:
        self._target = target
        self._body = request_bytes(huge_prompt(prompt_bytes))
        self._callers = callers
        self._key = key
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._counts = Counts()

    async def start(self) -> None:
        self._stop.clear()
        self._counts = Counts()
        answered = [asyncio.Event() for _ in range(self._callers)]
        self._tasks = [asyncio.create_task(self._call(first)) for first in answered]
        await asyncio.gather(*(first.wait() for first in answered))

    async def stop(self) -> Counts:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        return self._counts

    async def _call(self, first: asyncio.Event) -> None:
        async with channel(self._target) as ch:
            route = ch.unary_unary(ROUTE, request_serializer=None, response_deserializer=None)
            metadata = (("authorization", f"Bearer {self._key}"),)
            while not self._stop.is_set():
                try:
                    await route(self._body, metadata=metadata, timeout=60)
                    self._counts.answers += 1
                except grpc.aio.AioRpcError:
                    self._counts.errors += 1
                first.set()


class SubprocessLoad:
    """Heavy callers in a child process at the lowest CPU priority, driven over its stdin and
    stdout: `go` starts them (it answers `ready`), `stop` stops them (it answers the counts)."""

    def __init__(self, target: str, prompt_bytes: int, callers: int) -> None:
        self._args = (
            "--load",
            target,
            "--heavy",
            str(callers),
            "--prompt-bytes",
            str(prompt_bytes),
        )
        self._child: asyncio.subprocess.Process | None = None

    async def open(self) -> None:
        """Start the child process (it builds its request once)."""
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            *self._args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    async def start(self) -> None:
        await self._command("go")

    async def stop(self) -> Counts:
        answers, errors = (await self._command("stop")).split()
        return Counts(int(answers), int(errors))

    async def close(self) -> None:
        """End the child process."""
        if self._child is not None and self._child.stdin is not None:
            self._child.stdin.close()
            await self._child.wait()

    async def _command(self, word: str) -> str:
        child = self._child
        if child is None or child.stdin is None or child.stdout is None:
            raise RuntimeError("the load process is not running")
        child.stdin.write(f"{word}\n".encode())
        await child.stdin.drain()
        return (await child.stdout.readline()).decode().strip()


async def run_load_process(target: str, options: Options) -> None:
    """The load process: obey `go` and `stop` on stdin until it closes."""
    os.nice(19)  # stands for callers on other machines: their CPU is not the server's
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "")

    threading.Thread(target=read, daemon=True).start()
    load = InProcessLoad(target, options.prompt_bytes, options.heavy)
    while command := await commands.get():
        if command == "go":
            await load.start()
            print("ready", flush=True)
        elif command == "stop":
            counts = await load.stop()
            print(counts.answers, counts.errors, flush=True)


async def measure(target: str, options: Options, loads: dict[str, Load]) -> list[Phase]:
    """Idle, then each load, for `options.rounds` rounds against the server at `target`."""
    await small_calls(target, options.key, options.warmup)
    phases = {"idle": Phase("idle"), **{name: Phase(name) for name in loads}}
    for _ in range(options.rounds):
        await small_calls(target, options.key, options.calls, phases["idle"].latencies_ms)
        for name, load in loads.items():
            phase = phases[name]
            await load.start()
            started = time.perf_counter()
            try:
                await small_calls(target, options.key, options.calls, phase.latencies_ms)
            finally:
                counts = await load.stop()
            phase.loaded_seconds += time.perf_counter() - started
            phase.heavy_answers += counts.answers
            phase.heavy_errors += counts.errors
    return list(phases.values())


def table(phases: Sequence[Phase]) -> str:
    """The Markdown table of every phase."""
    idle = phases[0]
    rows = [
        "| phase | small calls | p50 ms | p99 ms | p50 vs idle | p99 vs idle | heavy answers/s "
        "(errors) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in phases:
        p50, p99 = phase.percentile(50), phase.percentile(99)
        rate = phase.heavy_answers / max(phase.loaded_seconds, 1e-9)
        heavy = "-" if phase is idle else f"{rate:,.0f} ({phase.heavy_errors})"
        rows.append(
            f"| {phase.name} | {len(phase.latencies_ms):,} | {p50:.2f} | {p99:.2f} | "
            f"{p50 / idle.percentile(50):.2f} | {p99 / idle.percentile(99):.2f} | {heavy} |"
        )
    return "\n".join(rows)


def machine() -> str:
    """One line describing where the figures come from."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, load average {load}"
    )


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def serve_forever(port: int) -> None:
    """The server process: the bench configuration on 127.0.0.1:port until terminated."""
    runtime = await build_runtime(parse_config(CONFIG, "<bench>"), SystemClock(), ENV)
    running = await start_server(runtime, "127.0.0.1", port)
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop(grace_s=0)


async def benchmark(options: Options) -> list[Phase]:
    """Start the server and load processes, measure, stop them."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    mb = options.prompt_bytes / 1024 / 1024
    loads = {
        f"{options.heavy} callers of {mb:g} MB": SubprocessLoad(
            target, options.prompt_bytes, options.heavy
        ),
        f"{options.heavy} callers of 1 KB": SubprocessLoad(target, CONTROL_BYTES, options.heavy),
    }
    with tempfile.TemporaryDirectory() as folder:
        server = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", str(port), cwd=folder
        )
        try:
            async with channel(target) as ch:
                await asyncio.wait_for(ch.channel_ready(), 30)
            for load in loads.values():
                await load.open()
            return await measure(target, options, dict(loads))
        finally:
            for load in loads.values():
                await load.close()
            server.terminate()
            await server.wait()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--heavy", type=int, default=4, help="callers sending huge prompts")
    parser.add_argument("--prompt-mb", type=float, default=3.0, help="size of a huge prompt")
    parser.add_argument("--calls", type=int, default=300, help="small calls per phase and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of idle and loaded phases")
    # The child processes: the server, and the heavy callers.
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--prompt-bytes", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    options = Options(
        heavy=args.heavy,
        prompt_bytes=args.prompt_bytes or int(args.prompt_mb * 1024 * 1024),
        calls=args.calls,
        rounds=args.rounds,
    )
    if args.serve is not None:
        await serve_forever(args.serve)
    elif args.load is not None:
        await run_load_process(args.load, options)
    else:
        phases = await benchmark(options)
        print(f"Machine: {machine()}\n")
        print(table(phases))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
