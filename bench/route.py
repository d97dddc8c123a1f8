"""Decisions per second of `Route` through the served default, and what starting costs.

The server is `fareway serve` itself, on the embedded default configuration (models on `sim`
without keys, the SQLite ledger in a temporary folder, the demo tenant and key), in a child
process. The callers run in a second child process, each on its own connection, each sending
`Route` as soon as its previous answer arrives, until `--calls` decisions were made between
them, after `--warmup` calls (400) that are not counted. For each number of callers
(`--callers`, 1 and 16 by default) the table gives decisions per second, the p50 and p99
latency over every run's calls, and the CPU time per decision of the server process and of
the load process (read from /proc before and after): on a 2-core machine the callers' own CPU
is taken from the server.

`--strategy` sets `hints.strategy` (empty: the tenant's default). `--empty` adds an empty
servicer for comparison: a bare `grpc.aio` server in a child process that answers `Route` with
an empty RouteDecision, no interceptor, no routing: the ceiling of grpcio's Python server and
client on this machine. `--tree NAME=PATH` runs the server from another checkout (PATH is its
`build/typecheck` folder, made by `python tools/typecheck_tree.py` there, put first on the
path); trees and runs alternate, so whatever else the machine does falls on all of them.

`--workers N` adds `fareway serve --workers N` (the installed tree) beside them.

`--startup` measures instead, for each tree: the import time of `fareway.config.loader` in a
fresh interpreter (and of loading the embedded default with it), and the time from starting
`fareway serve` until its health check answers SERVING; medians of `--startup-runs`.

    python bench/route.py                                  # rules, 1 and 16 callers, 3 runs
    python bench/route.py --strategy semantic --empty
    python bench/route.py --tree before=/tmp/before/build/typecheck --tree after=build/typecheck
    python bench/route.py --startup --tree before=/tmp/before-lazy/build/typecheck \\
        --tree after=build/typecheck
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from bare_grpc import serve_bare  # this folder, as processes: see their docstrings
from grpc_health.v1 import health_pb2, health_pb2_grpc
from processes import cpu_seconds, free_port, stop

from fareway.v1 import router_pb2

KEY = "fareway-demo-key"  # the embedded default's demo tenant
ROUTE = "/fareway.v1.RouterService/Route"
# What a router sees: requests of each kind the default routes, short and with payloads.
PROMPTS = (
    "Classify the sentiment of this review as positive or negative: 'The battery died after "
    "two days and support never answered my emails, so I returned it.'",
    "Extract every date mentioned in this email: 'We met on 3 March, shipped on the 9th and "
    "will invoice on April 1.'",
    "Write a Python function that merges two sorted lists into one sorted list.",
    "Analyze the strategic implications of moving our data warehouse to a managed cloud "
    "service, weighing cost, lock-in and the team's skills.",
    "What is the capital of Australia?",
    "Fix the bug in this code:\n```js\nfunction add(a, b) { return a - b }\n```",
    "Summarize the plot of Hamlet in three sentences.",
    "Is this message spam? 'You won a free cruise, click here to claim.'",
)


@dataclass
class Cell:
    """One tree's figures at one number of callers, pooled over runs."""

    latencies_ms: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)  # decisions per second, one per run
    server_cpu_us: list[float] = field(default_factory=list)  # per decision, one per run
    load_cpu_us: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def request_bodies(strategy: str) -> list[bytes]:
    """The serialized requests, one per prompt."""
    hints = router_pb2.RoutingHints(strategy=strategy)
    return [
        router_pb2.GenerateRequest(
            messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=p)],
            max_tokens=256,
            hints=hints,
        ).SerializeToString()
        for p in PROMPTS
    ]


def environment(tree: str) -> dict[str, str]:
    """The environment of a child that imports fareway from `tree` ("" for the installed one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FAREWAY_"))}
    if tree:
        env["PYTHONPATH"] = str(Path(tree).resolve())
    else:
        env.pop("PYTHONPATH", None)
    return env


LOG = "serve.log"  # the server's log, in its working folder
SERVE = "import sys; from fareway.cli.main import main; sys.exit(main())"


def start_serve(tree: str, port: int, folder: str, workers: int = 1) -> subprocess.Popen[bytes]:
    """`fareway serve` on the embedded default, from `tree`, its ledger file in `folder`, with
    `workers` processes (sharing that SQLite file)."""
    command = [sys.executable, "-c", SERVE, "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    with (Path(folder) / LOG).open("ab") as log:  # the child keeps its own copy open
        return subprocess.Popen(
            command,
            cwd=folder,
            env=environment(tree),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def wait_serving(
    port: int, process: subprocess.Popen[bytes], folder: str, limit_s: float = 60
) -> float:
    """Poll the health check until it answers SERVING; the time that took. A server that
    exits first is an error that quotes the end of its log (in `folder`)."""
    started = time.perf_counter()
    # gRPC backs off for a second or more after a refused connection: that would be measured.
    options = [
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.initial_reconnect_backoff_ms", 5),
        ("grpc.min_reconnect_backoff_ms", 5),
        ("grpc.max_reconnect_backoff_ms", 10),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.perf_counter() - started < limit_s:
            if process.poll() is not None:
                log = Path(folder) / LOG
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"the server exited with status {process.returncode}\n{tail}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter() - started
            except grpc.RpcError:
                pass
            time.sleep(0.005)
    raise RuntimeError("the server did not answer SERVING in time")


async def serve_empty(port: int) -> None:
    """The empty servicer: Route answers an empty RouteDecision, nothing else runs."""
    empty = router_pb2.RouteDecision()

    async def route(request: router_pb2.GenerateRequest, context: object) -> object:
        return empty

    handler = grpc.unary_unary_rpc_method_handler(
        route,
        request_deserializer=router_pb2.GenerateRequest.FromString,
        response_serializer=router_pb2.RouteDecision.SerializeToString,
    )
    await serve_bare(port, "Route", handler)


async def load(target: str, callers: int, calls: int, warmup: int, strategy: str) -> None:
    """The load process: warm up, say `ready`, wait for `go` on stdin, then `calls` Route calls
    shared by `callers` callers; print the latencies and times as one line of JSON."""
    bodies = request_bodies(strategy)
    metadata = (("authorization", f"Bearer {KEY}"),)
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(callers)]
    routes = [
        ch.unary_unary(ROUTE, request_serializer=None, response_deserializer=None)
        for ch in channels
    ]
    latencies: list[float] = []
    remaining = calls

    async def caller(i: int, count: int, into: list[float] | None) -> None:
        nonlocal remaining
        route = routes[i]
        n = i
        while (remaining > 0) if into is not None else (count > 0):
            if into is not None:
                remaining -= 1
            count -= 1
            body = bodies[n % len(bodies)]
            n += 1
            started = time.perf_counter()
            await route(body, metadata=metadata, timeout=30)
            if into is not None:
                into.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(caller(i, max(1, warmup // callers), None) for i in range(callers)))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(caller(i, 0, latencies) for i in range(callers)))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    print(json.dumps({"latencies": latencies, "wall": wall, "cpu": cpu}), flush=True)
    for ch in channels:
        await ch.close()


def measure(
    server: subprocess.Popen[bytes], target: str, callers: int, args: argparse.Namespace
) -> tuple[list[float], float, float, float]:
    """One run: (latencies ms, decisions/s, server CPU µs and load CPU µs per decision)."""
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--load",
            target,
            "--callers",
            str(callers),
            "--calls",
            str(args.calls),
            "--warmup",
            str(args.warmup),
            "--strategy",
            args.strategy,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    if child.stdout.readline().strip() != b"ready":
        raise RuntimeError("the load process did not start")
    before = cpu_seconds(server.pid)
    child.stdin.write(b"go\n")
    child.stdin.flush()
    result = json.loads(child.stdout.readline())
    server_cpu = cpu_seconds(server.pid) - before
    child.wait()
    n = len(result["latencies"])
    return (
        result["latencies"],
        n / result["wall"],
        server_cpu / n * 1e6,
        result["cpu"] / n * 1e6,
    )


def benchmark(args: argparse.Namespace) -> dict[str, dict[int, Cell]]:
    trees: list[tuple[str, str]] = [tuple(t.split("=", 1)) for t in args.tree] or [("", "")]
    servers: dict[str, subprocess.Popen[bytes]] = {}
    targets: dict[str, str] = {}
    cells: dict[str, dict[int, Cell]] = {}
    with tempfile.TemporaryDirectory() as folder:
        try:
            for name, tree in trees:
                port = free_port()
                label = name or "fareway serve"
                sub = Path(folder) / (name or "default")
                sub.mkdir()
                servers[label] = start_serve(tree, port, str(sub))
                wait_serving(port, servers[label], str(sub))
                targets[label] = f"127.0.0.1:{port}"
            if args.workers > 1:
                port = free_port()
                label = f"fareway serve --workers {args.workers}"
                sub = Path(folder) / "workers"
                sub.mkdir()
                servers[label] = start_serve("", port, str(sub), args.workers)
                wait_serving(port, servers[label], str(sub))
                targets[label] = f"127.0.0.1:{port}"
            if args.empty:
                port = free_port()
                servers["empty servicer"] = subprocess.Popen(
                    [sys.executable, __file__, "--serve-empty", str(port)]
                )
                wait_channel(f"127.0.0.1:{port}")
                targets["empty servicer"] = f"127.0.0.1:{port}"
            for label in servers:
                cells[label] = {n: Cell() for n in args.callers}
            for _ in range(args.runs):
                for callers in args.callers:
                    for label, server in servers.items():
                        latencies, rate, server_us, load_us = measure(
                            server, targets[label], callers, args
                        )
                        cell = cells[label][callers]
                        cell.latencies_ms += latencies
                        cell.rates.append(rate)
                        cell.server_cpu_us.append(server_us)
                        cell.load_cpu_us.append(load_us)
        finally:
            for server in servers.values():
                stop(server)
    return cells


def wait_channel(target: str) -> None:
    with grpc.insecure_channel(target) as ch:
        grpc.channel_ready_future(ch).result(timeout=30)


def table(cells: dict[str, dict[int, Cell]]) -> str:
    first = next(iter(cells))
    rows = [
        "| server | callers | decisions/s | vs first | p50 ms | p99 ms | server CPU µs/decision "
        "| vs first | load CPU µs/decision |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, by_callers in cells.items():
        for callers, cell in by_callers.items():
            base = cells[first][callers]
            rate = statistics.median(cell.rates)
            cpu = statistics.median(cell.server_cpu_us)
            rows.append(
                f"| {label} | {callers} | {rate:,.0f} | {rate / statistics.median(base.rates):.2f} "
                f"| {cell.percentile(50):.2f} | {cell.percentile(99):.2f} | {cpu:,.0f} | "
                f"{cpu / statistics.median(base.server_cpu_us):.2f} | "
                f"{statistics.median(cell.load_cpu_us):,.0f} |"
            )
    return "\n".join(rows)


IMPORT = (
    "import time; t = time.perf_counter(); import fareway.config.loader as l; "
    "i = time.perf_counter(); l.load_config(None); e = time.perf_counter(); "
    "print(i - t, e - t)"
)


def startup(args: argparse.Namespace) -> str:
    """Import and start times of each tree, alternated run by run."""
    trees: list[tuple[str, str]] = [tuple(t.split("=", 1)) for t in args.tree] or [("", "")]
    imports: dict[str, list[float]] = {name: [] for name, _ in trees}
    loads: dict[str, list[float]] = {name: [] for name, _ in trees}
    starts: dict[str, list[float]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.startup_runs):
            for name, tree in trees:
                out = subprocess.run(
                    [sys.executable, "-c", IMPORT],
                    env=environment(tree),
                    capture_output=True,
                    check=True,
                    cwd=folder,
                ).stdout.split()
                imports[name].append(float(out[0]) * 1000)
                loads[name].append(float(out[1]) * 1000)
                port = free_port()
                started = time.perf_counter()
                server = start_serve(tree, port, folder)
                try:
                    wait_serving(port, server, folder)
                    starts[name].append((time.perf_counter() - started) * 1000)
                finally:
                    stop(server)
    rows = [
        "| tree | import fareway.config.loader ms | import + load the default ms "
        "| fareway serve until SERVING ms |",
        "|---|---:|---:|---:|",
    ]
    for name, _ in trees:
        rows.append(
            f"| {name or 'installed'} | {statistics.median(imports[name]):,.0f} | "
            f"{statistics.median(loads[name]):,.0f} | {statistics.median(starts[name]):,.0f} |"
        )
    return "\n".join(rows)


def machine() -> str:
    average = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, "
        f"load average {average}"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--strategy", default="rules", help="hints.strategy ('' for none)")
    parser.add_argument("--calls", type=int, default=4000, help="decisions per run")
    parser.add_argument("--callers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    parser.add_argument("--runs", type=int, default=3, help="runs per cell, alternated")
    parser.add_argument("--warmup", type=int, default=400, help="calls before each run")
    parser.add_argument("--empty", action="store_true", help="also measure an empty servicer")
    parser.add_argument(
        "--workers", type=int, default=1, help="also measure `fareway serve --workers N`"
    )
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--startup", action="store_true", help="import and start times")
    parser.add_argument("--startup-runs", type=int, default=7)
    # The child processes: the load, and the empty servicer.
    parser.add_argument("--load", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--serve-empty", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    if args.load is not None:
        asyncio.run(load(args.load, args.callers[0], args.calls, args.warmup, args.strategy))
    elif args.serve_empty is not None:
        asyncio.run(serve_empty(args.serve_empty))
    elif args.startup:
        print(f"Machine: {machine()}\n")
        print(startup(args))
    else:
        cells = benchmark(args)
        print(f"Machine: {machine()}\n")
        print(
            f"Route, hints.strategy={args.strategy!r}, {args.calls:,} decisions a run, "
            f"{args.runs} runs\n"
        )
        print(table(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
