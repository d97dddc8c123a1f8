"""fareway's metrics as Prometheus shows them after the collector's OTLP translation, and the
part of PromQL the dashboard uses, so that every name a query or legend uses can be checked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Sum,
)

from fareway.telemetry import names
from fareway.telemetry.metrics import Metrics
from tests.deploy.repository import Files

# Labels the collector's Prometheus exporter adds to every series, and a histogram's bucket.
EXPORTER_LABELS = frozenset({"job", "instance", "le", "otel_scope_name", "otel_scope_version"})
PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "and", "or", "unless", "bool"})
PROMQL_FUNCTIONS = frozenset(
    {"sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile"}
    | {"topk", "bottomk", "clamp_min", "clamp_max", "abs", "label_values"}
)

# OTLP unit -> Prometheus unit word (prometheus/otlptranslator's unitMap, the part that a
# metric could use); "1" adds none, and a unit in braces ({token}) none either.
UNIT_WORDS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "%": "percent",
    "1": "",
}


# --- metric names as Prometheus shows them ------------------------------------------------


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """An OTLP metric's name after the collector's Prometheus exporter with its default
    translation (UnderscoreEscapingWithSuffixes, prometheus/otlptranslator normalizeName):
    the name split on every character outside [a-zA-Z0-9:] and joined with `_`; the unit's
    word appended unless already a token (a unit in braces or `1` adds none); `_total` for a
    monotonic counter; `_ratio` for a gauge of unit `1`."""
    tokens = [token for token in re.split(r"[^a-zA-Z0-9:]+", name) if token]
    main = unit.split("/")[0].strip()
    word = "" if not main or "{" in main or "}" in main else UNIT_WORDS.get(main, main)
    word = re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9:]", "_", word)).strip("_")
    if word and word not in tokens:
        tokens.append(word)
    if kind == "counter":
        tokens = [token for token in tokens if token != "total"] + ["total"]
    if kind == "gauge" and unit == "1":
        tokens = [token for token in tokens if token != "ratio"] + ["ratio"]
    return "_".join(tokens)


def prometheus_label(attribute: str) -> str:
    """An attribute's label name: every character outside [a-zA-Z0-9_] becomes `_`."""
    label = re.sub(r"[^a-zA-Z0-9_]", "_", attribute)
    return f"key_{label}" if label[:1].isdigit() else label


@dataclass
class PrometheusNames:
    series: frozenset[str]  # names a query may select: counters, gauges, _bucket/_sum/_count
    labels: frozenset[str]
    by_otel_name: dict[str, str]  # fareway.cost -> fareway_cost_total


def recorded_metrics() -> PrometheusNames:
    """Every instrument of telemetry/metrics.py, recorded once, named as Prometheus shows it."""
    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider([reader]).get_meter("fareway"))
    metrics.record_attempt(
        provider="p", model="m", input_tokens=3, output_tokens=5, duration_s=0.5, ttft_s=0.1
    )
    metrics.record_attempt(
        provider="p", model="m", input_tokens=3, output_tokens=0, duration_s=0.5, ttft_s=None,
        error_type="timeout",
    )  # fmt: skip
    metrics.record_decision("rules", "m", "fast")
    metrics.record_fallback("m", "n")
    metrics.record_circuit_transition("m", "closed", "open")
    metrics.record_escalation("m", "n")
    metrics.record_hedge("m", "n", "n")
    metrics.record_cost("acme", "m", 7)
    metrics.record_budget("acme", 0.5)
    data = reader.get_metrics_data()
    assert data is not None
    series: set[str] = set()
    labels: set[str] = set(EXPORTER_LABELS)
    by_otel: dict[str, str] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = list(metric.data.data_points)
                if isinstance(metric.data, Histogram):
                    base = prometheus_name(metric.name, metric.unit or "", "histogram")
                    series |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
                elif isinstance(metric.data, Sum) and metric.data.is_monotonic:
                    base = prometheus_name(metric.name, metric.unit or "", "counter")
                    series.add(base)
                else:
                    assert isinstance(metric.data, Gauge | Sum), metric.data
                    base = prometheus_name(metric.name, metric.unit or "", "gauge")
                    series.add(base)
                by_otel[metric.name] = base
                for point in points:
                    labels |= {prometheus_label(key) for key in (point.attributes or {})}
    declared = {value for key, value in vars(names).items() if key.startswith("METRIC_")}
    missing = declared - set(by_otel)
    assert not missing, f"record these metrics in recorded_metrics() too: {sorted(missing)}"
    return PrometheusNames(frozenset(series), frozenset(labels), by_otel)


# --- PromQL, as much of it as the dashboard uses ------------------------------------------


def promql_problems(expr: str, known: PrometheusNames, where: str) -> list[str]:
    """Unknown metric names, labels and functions in one query."""
    problems: list[str] = []

    def label(name: str) -> None:
        if name not in known.labels:
            problems.append(f"{where}: label '{name}' is not one fareway's metrics carry")

    text = re.sub(r"\$\{\w+\}|\$\w+", "0", expr)  # Grafana variables
    for metric, name in re.findall(r"label_values\(\s*([\w:]+)\s*,\s*(\w+)\s*\)", text):
        label(name)
        if metric not in known.series:
            problems.append(f"{where}: metric '{metric}' does not exist in Prometheus")
    text = re.sub(r"label_values\([^)]*\)", " ", text)
    for matchers in re.findall(r"\{([^{}]*)\}", text):
        for name in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers):
            label(name)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", re.sub(r"\{[^{}]*\}", " ", text))
    grouping = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
    for names_ in re.findall(grouping, text):
        for name in re.findall(r"\w+", names_):
            label(name)
    text = re.sub(grouping, " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    for name, call in re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\s*(\()?", text):
        if call:
            if name not in PROMQL_FUNCTIONS:
                problems.append(f"{where}: '{name}(' is not a PromQL function this test knows")
        elif name not in PROMQL_WORDS and name not in known.series:
            problems.append(f"{where}: metric '{name}' does not exist in Prometheus")
    return problems


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, query, legend) of every panel target and templating query."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            where = f"panel '{panel.get('title')}' {target.get('refId')}"
            yield where, target.get("expr", ""), target.get("legendFormat", "")
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            text = query.get("query", "") if isinstance(query, dict) else str(query)
            yield f"variable '{variable.get('name')}'", text, ""


def dashboard_problems(files: Files) -> list[str]:
    known = recorded_metrics()
    problems: list[str] = []
    for where, expr, legend in dashboard_queries(files.dashboard):
        problems += promql_problems(expr, known, where)
        for name in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
            if name not in known.labels:
                problems.append(f"{where}: legend label '{name}' is not one fareway's carry")
    variables = {v.get("name") for v in files.dashboard.get("templating", {}).get("list", [])}
    for used in set(re.findall(r"\$\{(\w+)\}", json.dumps(files.dashboard))):
        if used not in variables:
            problems.append(f"dashboard: variable ${{{used}}} is not defined")
    return problems
