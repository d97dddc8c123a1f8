"""CPU per stream of the SDK-backed providers alone: `AnthropicProvider.stream()` and
`OpenAIProvider.stream()` reading a fake upstream, nothing else of fareway around them.

Issue 13 profiled fareway's server and found about a quarter of its CPU in the anthropic SDK's
`messages.stream()` helper and a fifth in the HTTP client. This isolates that part, so a change
to how a provider reads its stream is measured on its own:

- the upstream, a child process: bench/fake_upstream.py (the one bench/overhead.py uses), each
  answer `--tokens` (50) text deltas `--gap-ms` (1) apart, the first at once;
- the load, one child process per measurement: builds the provider at the upstream, runs
  `--warmup` streams that are not counted, then `--streams` (300) streams, `--concurrency` (20)
  at a time, each read to its `Finish`, and reports `time.process_time()` spent over them
  divided by the streams: its own CPU, which is the provider's, the SDK's and the HTTP client's.

`--tree NAME=PATH` runs the load from another checkout (PATH is its `build/typecheck` folder,
made by `python tools/typecheck_tree.py` there, put first on the path), as bench/route.py does.
Providers, trees and rounds alternate, so whatever else the machine does falls on all of them;
the table gives each one's median over `--rounds` (3) and every run's figure.

    git worktree add /tmp/prov-before <commit>          # the code to compare with
    (cd /tmp/prov-before && /work/main/.venv/bin/python tools/typecheck_tree.py)
    python tools/typecheck_tree.py
    python bench/provider_stream.py --tree before=/tmp/prov-before/build/typecheck \\
        --tree after=build/typecheck
    python bench/provider_stream.py --kinds openai --streams 100 --rounds 1   # this tree only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from fake_upstream import serve_upstream  # this folder, as bench/overhead.py does
from processes import free_port, stop

KINDS = ("anthropic", "openai")


# --- the upstream -----------------------------------------------------------------------------


# --- the load ---------------------------------------------------------------------------------


async def load(kind: str, upstream: str, streams: int, concurrency: int, warmup: int) -> None:
    """Print one JSON line: CPU seconds per stream of this process over `streams` streams."""
    from fareway.budgets.pricing import Price
    from fareway.core.content import Message
    from fareway.providers.anthropic import AnthropicProvider
    from fareway.providers.base import Finish, Provider, ProviderCall, TextChunk
    from fareway.providers.openai import OpenAIProvider
    from fareway.routing.catalog import ModelSpec

    provider: Provider
    if kind == "anthropic":
        provider = AnthropicProvider("sk-bench", base_url=upstream)
    else:
        provider = OpenAIProvider("sk-bench", base_url=f"{upstream}/v1")
    model = ModelSpec(
        id="bench",
        provider=kind,
        provider_model_id="bench-model",
        tier="small",
        price=Price(1_000_000, 5_000_000),
        context_window=32_768,
        max_output_tokens=4_096,
        capabilities=frozenset(),
        quality=0.5,
    )
    call = ProviderCall(model, "Be brief.", (Message.user("Say hello."),), 256)

    async def one() -> None:
        texts, finished = 0, False
        async for event in provider.stream(call):
            texts += isinstance(event, TextChunk)
            finished = isinstance(event, Finish)
        if texts == 0 or not finished:
            raise SystemExit(f"{kind}: a stream ended without text or Finish")

    async def run(count: int) -> None:
        left = count

        async def caller() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        await asyncio.gather(*(caller() for _ in range(concurrency)))

    await run(warmup)
    cpu, wall = time.process_time(), time.perf_counter()
    await run(streams)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await provider.aclose()
    print(json.dumps({"cpu_ms": 1000 * cpu / streams, "streams_per_s": streams / wall}))


# --- the comparison ---------------------------------------------------------------------------


def environment(tree: str) -> dict[str, str]:
    """The environment of a child that imports fareway from `tree` ("" for the installed one)."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = str(Path(tree).resolve())
    return env


def measure(kind: str, tree: str, upstream: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "load", "--kind", kind, "--upstream", upstream]
    command += ["--streams", str(args.streams), "--concurrency", str(args.concurrency)]
    command += ["--warmup", str(args.warmup)]
    out = subprocess.run(command, env=environment(tree), check=True, capture_output=True)
    result: dict[str, float] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def compare(args: argparse.Namespace) -> None:
    trees: list[tuple[str, str]] = [tuple(t.split("=", 1)) for t in args.tree] or [("", "")]
    port = free_port()
    command = [sys.executable, __file__, "upstream", "--port", str(port)]
    command += ["--tokens", str(args.tokens), "--gap-ms", str(args.gap_ms)]
    upstream = subprocess.Popen(command)
    try:
        time.sleep(1.0)  # the upstream imports nothing heavy: it listens well within this
        runs: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.rounds):
            for kind in args.kinds.split(","):
                for name, tree in trees:
                    cpu = measure(kind, tree, f"http://127.0.0.1:{port}", args)["cpu_ms"]
                    runs.setdefault((kind, name), []).append(cpu)
                    print(f"round {round_ + 1} {kind} {name or 'installed'}: {cpu:.3f} ms")
    finally:
        stop(upstream)
    print(
        f"\n{args.streams} streams of {args.tokens} deltas, {args.concurrency} concurrent, "
        f"{args.gap_ms} ms apart; load process CPU per stream, median of {args.rounds}\n"
    )
    print("| provider | tree | CPU ms per stream (median) | runs |")
    print("|---|---|---|---|")
    for (kind, name), values in runs.items():
        each = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {kind} | {name or 'installed'} | {statistics.median(values):.3f} | {each} |")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "role", nargs="?", default="compare", choices=("compare", "upstream", "load")
    )
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--kind", choices=KINDS, default="anthropic")  # load: which provider
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--gap-ms", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=0)  # upstream: where to listen
    parser.add_argument("--upstream", default="")  # load: the upstream's base URL
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    if args.role == "upstream":
        asyncio.run(serve_upstream(args.port, 0.0, args.tokens, args.gap_ms / 1000))
    elif args.role == "load":
        asyncio.run(load(args.kind, args.upstream, args.streams, args.concurrency, args.warmup))
    else:
        compare(args)


if __name__ == "__main__":
    main(sys.argv[1:])
