"""bench/overhead.py's results: each step's figures, grouped into a row per configuration and
concurrency over the rounds (medians of rates and CPU, pooled times to first token), as the
Markdown table and the PNG plot, with the machine they were measured on."""

from __future__ import annotations

import math
import os
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path

import grpc

# The configurations, in the order the table and plot report them (another tree's `fareway@NAME`
# beside `fareway`).
CONFIGURATIONS = ("direct", "relay", "fareway", "fareway-2w", "litellm")


@dataclass
class Step:
    """One configuration at one concurrency in one round."""

    name: str
    concurrency: int
    ttfts: list[float]
    errors: list[str]
    refusals: list[float]
    late: list[float]
    rate: float
    server_cpu_ms: float | None  # per completed stream
    load_cpu_ms: float
    server_rss_mb: float | None
    load_rss_mb: float


@dataclass
class Row:
    """A configuration at one concurrency over all rounds: rates and CPU are the rounds'
    medians, times to first token and refusals are pooled."""

    name: str
    concurrency: int
    rounds: list[Step]

    def pooled(self, field: str) -> list[float]:
        return sorted(x for step in self.rounds for x in getattr(step, field))

    def percentile(self, p: float, field: str = "ttfts") -> float:
        ordered = self.pooled(field)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def median(self, field: str) -> float | None:
        values = [getattr(s, field) for s in self.rounds if getattr(s, field) is not None]
        return statistics.median(values) if values else None

    @property
    def errors(self) -> list[str]:
        return [e for step in self.rounds for e in step.errors]


def rows(steps: list[Step]) -> list[Row]:
    """Steps grouped by configuration and concurrency, in the order of CONFIGURATIONS."""
    grouped: dict[tuple[str, int], list[Step]] = {}
    for step in steps:
        grouped.setdefault((step.name, step.concurrency), []).append(step)
    order = {name: i for i, name in enumerate(CONFIGURATIONS)}
    keys = sorted(grouped, key=lambda k: (order.get(k[0].split("@")[0], 99), k[0], k[1]))
    return [Row(name, concurrency, grouped[(name, concurrency)]) for name, concurrency in keys]


def table(steps: list[Step]) -> str:
    """The Markdown table: one row per configuration and concurrency, medians over rounds."""
    grouped = rows(steps)
    floor = {r.concurrency: r for r in grouped if r.name == "direct"}
    relay = {r.concurrency: r for r in grouped if r.name == "relay"}
    lines = [
        "| configuration | concurrent | streams | streams/s | vs relay | errors | refused "
        "| refusal p99 ms | past deadline | TTFT p50 ms | TTFT p99 ms | added p50 ms "
        "| added p99 ms | server CPU ms/stream | vs relay | load CPU ms/stream "
        "| server peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def num(x: float | None, fmt: str = ",.1f") -> str:
        return "—" if x is None or math.isnan(x) else format(x, fmt)

    def ratio(a: float | None, b: float | None) -> str:
        return "—" if a is None or not b else f"{a / b:.2f}"

    for r in grouped:
        base, peer = floor.get(r.concurrency), relay.get(r.concurrency)
        p50, p99 = r.percentile(50), r.percentile(99)
        added50 = p50 - base.percentile(50) if base is not None else None
        added99 = p99 - base.percentile(99) if base is not None else None
        rate, cpu = r.median("rate"), r.median("server_cpu_ms")
        lines.append(
            f"| {r.name} | {r.concurrency:,} | {len(r.pooled('ttfts')):,} | {num(rate)} | "
            f"{ratio(rate, peer.median('rate') if peer else None)} | {len(r.errors):,} | "
            f"{len(r.pooled('refusals')):,} | {num(r.percentile(99, 'refusals'))} | "
            f"{len(r.pooled('late')):,} | {num(p50)} | {num(p99)} | "
            f"{num(added50, '+,.1f')} | {num(added99, '+,.1f')} | {num(cpu)} | "
            f"{ratio(cpu, peer.median('server_cpu_ms') if peer else None)} | "
            f"{num(r.median('load_cpu_ms'))} | {num(r.median('server_rss_mb'), ',.0f')} |"
        )
    return "\n".join(lines)


def plot(steps: list[Step], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    grouped = rows(steps)
    names = list(dict.fromkeys(r.name for r in grouped))
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = (
        ("completed streams/s", lambda r: r.median("rate")),
        ("server CPU ms per stream", lambda r: r.median("server_cpu_ms")),
        ("time to first token p50 ms", lambda r: r.percentile(50)),
    )
    for axis, (title, value) in zip(axes, panels, strict=True):
        for name in names:
            points = [(r.concurrency, value(r)) for r in grouped if r.name == name]
            points = [(c, v) for c, v in points if v is not None and not math.isnan(v)]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=name)
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlabel("concurrent streams")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    average = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, "
        f"load average {average}"
    )
