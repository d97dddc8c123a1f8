"""What a streamed answer costs through fareway, beside the SDK alone and a bare gRPC relay.

One command, one machine, one run (issue 13's comparison). Every process is a child of this
one, on the same cores:

- the upstream: bench/fake_upstream.py, speaking the Anthropic Messages and the OpenAI
  chat-completions streams; each answer waits `--ttft-ms` (50) before its first token, then
  sends `--tokens` (50) text deltas `--gap-ms` (2) apart;
- `direct`: no server; the load process calls the anthropic SDK's `messages.stream()` straight
  at the upstream. This is the floor every other configuration's time to first token is
  compared with ("added");
- `relay`: a bare `grpc.aio` server that answers fareway's own `Generate` with one
  `GenerateEvent` delta per SDK text delta (`messages.stream()` to the upstream), nothing else:
  no routing, no ledger, no telemetry, no interceptor;
- `fareway`: `fareway serve` on the embedded default configuration with its `anthropic`
  provider pointed at the upstream (`base_url`), the default strategy, the SQLite ledger in a
  temporary folder (the demo tenant's caps raised so that no run reaches them), and traces and
  metrics exported over OTLP/gRPC to a loopback receiver in this process;
- `litellm` (not with `--smoke`, and `--litellm skip` drops it): LiteLLM's proxy from its own
  virtual environment (`--litellm-venv`, created and `pip install 'litellm[proxy]'` into it
  when missing, within `--litellm-install-s`), its one model an `anthropic/` model whose
  `api_base` is the upstream, driven with the openai SDK's streamed chat completions. When it
  cannot be installed or started the run goes on without it and says why.

- `fareway-2w`: the same with `fareway serve --workers 2` (two processes on one port);
- `fareway@NAME`, one per `--tree NAME=PATH`: `fareway` run from another checkout's
  `build/typecheck` folder (`python tools/typecheck_tree.py` there), for before/after figures
  of a change in one run.

Each configuration and concurrency is one step: a fresh load process warms up, then keeps
`concurrency` streams open (closed loop: each caller starts its next stream when the last one
ends) for `--seconds`, and lets the last ones finish. Time to first token is from the call to
the first text delta, as the caller sees it. A call refused with RESOURCE_EXHAUSTED (a server
at its bound on concurrent streams) is counted as refused, with how long the refusal took, and
its caller waits the refusal's RetryInfo delay before its next call, as a well-behaved client
does; a call past its deadline (`STREAM_TIMEOUT_S`) counts as past deadline. CPU per stream is
read from /proc before and after the step for the server (its process tree) and by the load
process for itself; peak RSS is VmHWM (the server's since it started, so it only grows across
steps). Steps alternate between configurations at each concurrency, so whatever else the
machine does falls on all of them; `--rounds R` goes through every step R times, and the table
gives the rounds' medians of streams/s and CPU and pools their times to first token.

    python bench/overhead.py                                   # 1, 50, 200 concurrent, 5 s each
    python bench/overhead.py --concurrency 1,50,200,500,1000 --rounds 3 --out /tmp/overhead
    python bench/overhead.py --smoke                           # seconds; what the test runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from bare_grpc import serve_bare  # this folder, as processes: see their docstrings
from fake_upstream import serve_upstream
from google.rpc import error_details_pb2, status_pb2
from overhead_report import CONFIGURATIONS, Step, machine, plot, table
from processes import cpu_seconds, free_port, peak_rss_mb, stop

from fareway.v1 import router_pb2

ROOT = Path(__file__).resolve().parents[1]
KEY = "fareway-demo-key"  # the embedded default's demo tenant
GENERATE = "/fareway.v1.RouterService/Generate"
PROMPT = "Say hello to the new team members in one friendly sentence."  # no rule: balanced tier
MAX_TOKENS = 256
STREAM_TIMEOUT_S = 30.0  # each stream's deadline; one past it counts as late
LITELLM_KEY = "FAREWAY_BENCH_LITELLM_KEY"  # the proxy's master key, for the load processes


# --- the bare relay ---------------------------------------------------------------------------


async def serve_relay(port: int, upstream: str) -> None:
    """Generate relayed from the SDK's `messages.stream()`: one delta event per text delta."""
    import anthropic

    client = anthropic.AsyncAnthropic(api_key="bench", base_url=upstream, max_retries=0)

    async def generate(request: router_pb2.GenerateRequest, context: Any) -> Any:
        messages = [{"role": "user", "content": m.content} for m in request.messages]
        async with client.messages.stream(
            model="claude-bench", max_tokens=request.max_tokens, messages=messages
        ) as stream:
            async for text in stream.text_stream:
                yield router_pb2.GenerateEvent(delta=router_pb2.TextDelta(text=text))

    handler = grpc.unary_stream_rpc_method_handler(
        generate,
        request_deserializer=router_pb2.GenerateRequest.FromString,
        response_serializer=router_pb2.GenerateEvent.SerializeToString,
    )
    await serve_bare(port, "Generate", handler)


# --- the load process -------------------------------------------------------------------------


async def load(kind: str, target: str, concurrency: int, seconds: float, warmup: int) -> None:
    """Warm up, say `ready`, wait for `go` on stdin, keep `concurrency` streams going for
    `seconds`; print the times to first token and the counts as one line of JSON."""
    ttfts: list[float] = []
    errors: list[str] = []
    refusals: list[float] = []  # ms from the call to RESOURCE_EXHAUSTED
    late: list[float] = []  # ms from the call to DEADLINE_EXCEEDED
    closers: list[Any] = []
    if kind == "direct":
        import anthropic

        client = anthropic.AsyncAnthropic(api_key="bench", base_url=target, max_retries=0)
        closers.append(client.close)

        async def one() -> float:
            started = time.perf_counter()
            first = 0.0
            async with client.messages.stream(
                model="claude-bench",
                max_tokens=MAX_TOKENS,
                messages=[{"role": "user", "content": PROMPT}],
                timeout=STREAM_TIMEOUT_S,
            ) as stream:
                async for _ in stream.text_stream:
                    if not first:
                        first = time.perf_counter() - started
            return first

    elif kind == "litellm":
        import openai

        oclient = openai.AsyncOpenAI(
            api_key=os.environ[LITELLM_KEY], base_url=target, max_retries=0
        )
        closers.append(oclient.close)

        async def one() -> float:
            started = time.perf_counter()
            first = 0.0
            stream = await oclient.chat.completions.create(
                model="claude-bench",
                max_tokens=MAX_TOKENS,
                messages=[{"role": "user", "content": PROMPT}],
                stream=True,
                timeout=STREAM_TIMEOUT_S,
            )
            async for chunk in stream:
                if not first and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - started
            return first

    else:  # relay and fareway: fareway's Generate
        body = router_pb2.GenerateRequest(
            messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=PROMPT)],
            max_tokens=MAX_TOKENS,
        ).SerializeToString()
        metadata = (("authorization", f"Bearer {KEY}"),)
        options = [("grpc.use_local_subchannel_pool", 1)]
        channels = [
            grpc.aio.insecure_channel(target, options=options)
            for _ in range(max(1, min(16, math.ceil(concurrency / 50))))
        ]
        closers.extend(ch.close for ch in channels)
        calls = [
            ch.unary_stream(
                GENERATE,
                request_serializer=None,
                response_deserializer=router_pb2.GenerateEvent.FromString,
            )
            for ch in channels
        ]
        turn = 0

        async def one() -> float:
            nonlocal turn
            turn += 1
            started = time.perf_counter()
            first = 0.0
            async for event in calls[turn % len(calls)](
                body, metadata=metadata, timeout=STREAM_TIMEOUT_S
            ):
                if not first and event.WhichOneof("event") == "delta":
                    first = time.perf_counter() - started
            return first

    async def caller(until: float, into: list[float] | None) -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            try:
                first = await one()
                if not first:
                    raise RuntimeError("the stream ended without a text delta")
                if into is not None:
                    into.append(first * 1000)
            except grpc.aio.AioRpcError as error:
                if into is None:
                    raise
                if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                    late.append((time.perf_counter() - started) * 1000)
                elif error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    # A busy server: told at once, and when to come back, which we do.
                    refusals.append((time.perf_counter() - started) * 1000)
                    await asyncio.sleep(retry_delay_s(error))
                    continue
                else:
                    errors.append(f"{error.code().name}: {error.details()}"[:300])
            except Exception as error:
                if into is None:
                    raise
                errors.append(f"{type(error).__name__}: {error}"[:300])
            if into is None:
                return

    await asyncio.gather(*(caller(math.inf, None) for _ in range(warmup)))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    cpu = time.process_time()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(caller(until, ttfts) for _ in range(concurrency)))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "ttfts": ttfts,
        "errors": errors,
        "refusals": refusals,
        "late": late,
        "wall": wall,
        "cpu": cpu,
        "peak_kb": peak_kb,
    }
    print(json.dumps(result), flush=True)
    for close in closers:
        await close()


def retry_delay_s(error: grpc.aio.AioRpcError) -> float:
    """The RetryInfo delay of a refusal (1 s when it carries none)."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    return info.retry_delay.ToTimedelta().total_seconds()
    return 1.0


# --- the harness ------------------------------------------------------------------------------


def wait_port(port: int, process: subprocess.Popen[bytes], what: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {limit_s:.0f} s")


def wait_generate(target: str, process: subprocess.Popen[bytes], what: str) -> None:
    """Until one Generate streams to its end (fareway's health says SERVING before that)."""
    body = router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=PROMPT)],
        max_tokens=MAX_TOKENS,
    )
    deadline = time.monotonic() + 60
    last: Exception | None = None
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_stream(
            GENERATE,
            request_serializer=router_pb2.GenerateRequest.SerializeToString,
            response_deserializer=router_pb2.GenerateEvent.FromString,
        )
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with status {process.returncode}")
            try:
                for _ in call(body, metadata=(("authorization", f"Bearer {KEY}"),), timeout=10):
                    pass
                return
            except grpc.RpcError as error:
                last = error
                time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer Generate: {last}")


class Receiver:
    """An OTLP/gRPC endpoint for traces and metrics on threads of this process; counts exports."""

    def __init__(self) -> None:
        self.exports = {"traces": 0, "metrics": 0}
        services = []
        for signal, service in (
            ("traces", "opentelemetry.proto.collector.trace.v1.TraceService"),
            ("metrics", "opentelemetry.proto.collector.metrics.v1.MetricsService"),
        ):

            def export(payload: bytes, context: Any, signal: str = signal) -> bytes:
                self.exports[signal] += 1
                return b""  # an empty Export*ServiceResponse

            handler = grpc.unary_unary_rpc_method_handler(export)  # bytes in, bytes out
            services.append(grpc.method_handlers_generic_handler(service, {"Export": handler}))
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers(services)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)


def fareway_config(upstream: str, folder: Path) -> Path:
    """The embedded default, its anthropic provider at the upstream, the ledger in `folder`."""
    config = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    provider = config["providers"]["anthropic"]
    provider |= {"base_url": upstream, "simulate_without_key": False}
    provider["api_key_env"] = "FAREWAY_BENCH_UPSTREAM_KEY"
    config["ledger"]["path"] = str(folder / "fareway-ledger.db")
    for cap in config["tenants"]["demo"]["budget"]:
        cap["cap_usd"] = 1_000_000  # no run may reach a cap or its soft fraction
    path = folder / "fareway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FAREWAY_"))}


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes] | None  # None: direct, no server
    target: str
    kind: str = ""  # how the load process calls it: direct, relay (fareway's API), litellm

    def __post_init__(self) -> None:
        self.kind = self.kind or self.name


def start_fareway(
    upstream: str, folder: Path, receiver: Receiver, name: str, tree: str = "", workers: int = 1
) -> Server:
    """`fareway serve` from `tree` ("" for the installed one) with `workers` processes."""
    port = free_port()
    home = folder / name
    home.mkdir()
    config = fareway_config(upstream, home)
    env = child_env() | {
        "FAREWAY_BENCH_UPSTREAM_KEY": "bench",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_SERVICE_NAME": "fareway-bench",
    }
    if tree:
        env["PYTHONPATH"] = str(Path(tree).resolve())
    serve = "import sys; from fareway.cli.main import main; sys.exit(main())"
    command = [sys.executable, "-c", serve, "serve", "--config", str(config), "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    with (home / "fareway.log").open("ab") as log:
        process = subprocess.Popen(
            command, cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=log
        )
    target = f"127.0.0.1:{port}"
    try:
        wait_generate(target, process, "fareway serve")
    except RuntimeError as error:
        stop(process)
        tail = (home / "fareway.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{error}\n{tail}") from error
    return Server(name, process, target, kind="relay")


def start_relay(upstream: str) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-relay", str(port), "--upstream", upstream]
    )
    target = f"127.0.0.1:{port}"
    wait_generate(target, process, "the relay")
    return Server("relay", process, target)


def litellm_python(args: argparse.Namespace) -> tuple[Path | None, str]:
    """LiteLLM's venv, installed into if missing within the time limit; (None, why) if not."""
    venv = Path(args.litellm_venv)
    binary = venv / "bin" / "litellm"
    if binary.exists():
        return binary, ""
    try:
        if not (venv / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "litellm[proxy]"],
            check=True,
            timeout=args.litellm_install_s,
            capture_output=True,
        )
    except subprocess.TimeoutExpired:
        return None, f"pip install 'litellm[proxy]' took longer than {args.litellm_install_s} s"
    except subprocess.CalledProcessError as error:
        tail = (error.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        return None, f"pip install 'litellm[proxy]' failed: {' '.join(tail)}"
    return (binary, "") if binary.exists() else (None, "no litellm command after install")


def start_litellm(binary: Path, upstream: str, folder: Path) -> Server:
    port = free_port()
    # The proxy refuses to start without a master key; the load processes read it from here.
    key = os.environ.setdefault(LITELLM_KEY, f"sk-{secrets.token_hex(32)}")
    config = {
        "model_list": [
            {
                "model_name": "claude-bench",
                "litellm_params": {
                    "model": "anthropic/claude-sonnet-4-6",
                    "api_base": upstream,
                    "api_key": "bench",
                },
            }
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": key},
    }
    path = folder / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    env = child_env() | {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    with (folder / "litellm.log").open("ab") as log:
        process = subprocess.Popen(
            [str(binary), "--config", str(path), "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        wait_port(port, process, "the LiteLLM proxy", 180)
    except RuntimeError as error:
        stop(process)
        tail = (folder / "litellm.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{error}\n{tail}") from error
    return Server("litellm", process, f"http://127.0.0.1:{port}/v1")


def measure(server: Server, concurrency: int, args: argparse.Namespace) -> Step:
    warmup = max(1, min(concurrency, 20))
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--load",
            server.kind,
            server.target,
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(warmup),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    if child.stdout.readline().strip() != b"ready":
        child.wait()
        raise RuntimeError(f"the load process for {server.name} did not start")
    pid = server.process.pid if server.process is not None else None
    before = cpu_seconds(pid) if pid is not None else 0.0
    child.stdin.write(b"go\n")
    child.stdin.flush()
    result = json.loads(child.stdout.readline())
    server_cpu = cpu_seconds(pid) - before if pid is not None else None
    child.wait()
    done = max(1, len(result["ttfts"]))
    return Step(
        server.name,
        concurrency,
        result["ttfts"],
        result["errors"],
        result["refusals"],
        result["late"],
        len(result["ttfts"]) / result["wall"],
        server_cpu / done * 1000 if server_cpu is not None else None,
        result["cpu"] / done * 1000,
        peak_rss_mb(pid) if pid is not None else None,
        result["peak_kb"] / 1024,
    )


def benchmark(args: argparse.Namespace) -> tuple[list[Step], list[str]]:
    notes: list[str] = []
    steps: list[Step] = []
    names = [n for n in args.configurations if not (n == "litellm" and args.litellm == "skip")]
    with tempfile.TemporaryDirectory(prefix="fareway-overhead-") as name:
        folder = Path(name)
        port = free_port()
        upstream_process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-upstream",
                str(port),
                "--ttft-ms",
                str(args.ttft_ms),
                "--tokens",
                str(args.tokens),
                "--gap-ms",
                str(args.gap_ms),
            ]
        )
        upstream = f"http://127.0.0.1:{port}"
        receiver = Receiver()
        servers: list[Server] = []
        try:
            wait_port(port, upstream_process, "the upstream", 30)
            for config in names:
                if config == "direct":
                    servers.append(Server("direct", None, upstream))
                elif config == "relay":
                    servers.append(start_relay(upstream))
                elif config == "fareway":
                    servers.append(start_fareway(upstream, folder, receiver, "fareway"))
                elif config == "fareway-2w":
                    servers.append(
                        start_fareway(upstream, folder, receiver, "fareway-2w", workers=2)
                    )
                elif config == "litellm":
                    binary, why = litellm_python(args)
                    if binary is None:
                        notes.append(f"litellm skipped: {why}")
                        continue
                    try:
                        servers.append(start_litellm(binary, upstream, folder))
                    except RuntimeError as error:
                        notes.append(f"litellm skipped: {str(error).splitlines()[0]}")
            for tree_name, tree in args.tree:
                name = f"fareway@{tree_name}"
                servers.append(start_fareway(upstream, folder, receiver, name, tree))
            for round_ in range(args.rounds):
                for concurrency in args.concurrency:
                    for server in servers:
                        print(
                            f"# round {round_ + 1}: {server.name} at {concurrency} ...",
                            file=sys.stderr,
                            flush=True,
                        )
                        steps.append(measure(server, concurrency, args))
        finally:
            for server in servers:
                if server.process is not None:
                    stop(server.process)
            stop(upstream_process)
            receiver.stop()
        if any(s.name.startswith("fareway") for s in steps):
            exported = receiver.exports
            notes.append(
                f"fareway exported {exported['traces']} trace and {exported['metrics']} metric "
                "batches to the loopback OTLP receiver"
            )
        for s in steps:
            if s.errors:
                notes.append(f"{s.name} at {s.concurrency}: first error: {s.errors[0]}")
    return steps, notes


def integers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--concurrency", type=integers, default=[1, 50, 200])
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per step")
    parser.add_argument("--ttft-ms", type=float, default=50.0, help="upstream first token")
    parser.add_argument("--tokens", type=int, default=50, help="text deltas per answer")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="between text deltas")
    parser.add_argument(
        "--configurations",
        type=lambda s: s.split(","),
        default=list(CONFIGURATIONS),
        help="comma-separated subset of " + ",".join(CONFIGURATIONS),
    )
    parser.add_argument("--rounds", type=int, default=1, help="times through every step")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        metavar="NAME=PATH",
        help="also run fareway from another checkout's build/typecheck folder, as fareway@NAME",
    )
    parser.add_argument("--litellm", choices=("auto", "skip"), default="auto")
    parser.add_argument("--litellm-venv", default="/tmp/fareway-bench-litellm")
    parser.add_argument("--litellm-install-s", type=float, default=240.0)
    parser.add_argument("--out", help="folder for overhead.md and overhead.png")
    parser.add_argument(
        "--smoke", action="store_true", help="concurrency 1 and 2, 0.5 s each, no litellm"
    )
    # The child processes.
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-relay", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=2, metavar=("KIND", "TARGET"), help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.configurations) - set(CONFIGURATIONS)
    if unknown:
        parser.error(f"unknown configurations: {', '.join(sorted(unknown))}")
    if args.smoke:
        args.concurrency, args.seconds, args.litellm = [1, 2], 0.5, "skip"
        args.configurations = [c for c in args.configurations if c != "fareway-2w"]
    return args


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    if args.serve_upstream is not None:
        gap = args.gap_ms / 1000
        asyncio.run(serve_upstream(args.serve_upstream, args.ttft_ms / 1000, args.tokens, gap))
    elif args.serve_relay is not None:
        asyncio.run(serve_relay(args.serve_relay, args.upstream))
    elif args.load is not None:
        kind, target = args.load
        asyncio.run(load(kind, target, args.concurrency[0], args.seconds, args.warmup))
    else:
        steps, notes = benchmark(args)
        lines = [
            f"Machine: {machine()}",
            "",
            f"Upstream: {args.ttft_ms:g} ms to the first token, {args.tokens} tokens "
            f"{args.gap_ms:g} ms apart; {args.seconds:g} s of load per step; "
            f"command: python bench/overhead.py {' '.join(argv)}".rstrip(),
            "",
            table(steps),
        ]
        if notes:
            lines += ["", *(f"- {note}" for note in notes)]
        text = "\n".join(lines)
        print(text)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "overhead.md").write_text(text + "\n")
            if plot(steps, out / "overhead.png"):
                print(f"\nwrote {out / 'overhead.md'} and {out / 'overhead.png'}")
            else:
                print(f"\nwrote {out / 'overhead.md'} (no matplotlib: no plot)")


if __name__ == "__main__":
    main(sys.argv[1:])
