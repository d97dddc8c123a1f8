"""The deployment files (deploy/: compose, Kubernetes, collector, Prometheus, Grafana) checked
for everything that can be checked without a container engine or a cluster: they parse, and
every image, port, probe, environment variable, metric name and path they name exists in the
repository, the Dockerfile, fareway's configuration loader or its telemetry.

Each check is a function from the loaded files to a list of problems, so that
`test_a_typo_is_caught` can feed it a copy with one typo and see it complain: a check that
accepts anything would pass on the real files too.

Where the facts come from, never from a copy kept here:
- fareway's port: the configuration (validated with config/loader.py parse_config), the
  Dockerfile's EXPOSE and HEALTHCHECK;
- the variables fareway reads: FAREWAY_* and OTEL_* strings in its code, the OpenTelemetry
  SDK's own list (opentelemetry.sdk.environment_variables), and the variables the
  configuration names (API keys, provider keys, the ledger URL's variable);
- metric names: the instruments of telemetry/metrics.py, recorded once into an in-memory
  reader, converted as the collector's Prometheus exporter converts them (its default
  translation; `prometheus_name` below, docs/DEPLOY.md "Metrics in Prometheus");
- shutdown time: server.grace_s, LedgerHealth's settle flush and telemetry's SHUTDOWN_TIMEOUT_S;
- the shared ledgers' URL variables: budgets/registry.py's `url_env` defaults.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import tomllib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from opentelemetry.sdk import environment_variables as sdk_environment_variables
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Sum,
)

from fareway.budgets.registry import PostgresLedgerConfig, RedisLedgerConfig
from fareway.config.loader import ConfigError, parse_config
from fareway.config.schema import FarewayConfig
from fareway.server.app import SERVICE_NAMES
from fareway.server.ledger_health import LedgerHealth
from fareway.telemetry import names
from fareway.telemetry.metrics import Metrics
from fareway.telemetry.setup import SHUTDOWN_TIMEOUT_S, configure_telemetry

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY_DOC = ROOT / "docs" / "DEPLOY.md"

CONFIG_MOUNT = "/etc/fareway/fareway.yaml"  # where both stacks mount fareway's configuration
FAREWAY_IMAGE = "fareway"  # the repository name of the image built from the Dockerfile

# Ports of third-party servers that their own defaults fix (nothing here configures them).
POSTGRES_PORT = 5432
REDIS_PORT = 6379
JAEGER_OTLP_GRPC_PORT = 4317
PROMETHEUS_PORT = 9090

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


# --- loading ----------------------------------------------------------------------------


@dataclass
class Files:
    """Everything under deploy/, parsed; the checks read only this."""

    compose: dict[str, Any]
    collector: dict[str, Any]
    prometheus: dict[str, Any]
    datasources: dict[str, Any]
    dashboard_provider: dict[str, Any]
    dashboard: dict[str, Any]
    k8s: dict[str, list[dict[str, Any]]]  # file name -> its documents
    fareway_config: str  # deploy/fareway.yaml's text
    dockerfile: str
    deploy_doc: str = ""


def yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def load() -> Files:
    def one(path: Path) -> dict[str, Any]:
        (doc,) = yaml_documents(path)
        assert isinstance(doc, dict), f"{path}: expected a mapping"
        return doc

    return Files(
        compose=one(DEPLOY / "compose.yaml"),
        collector=one(DEPLOY / "otel-collector.yaml"),
        prometheus=one(DEPLOY / "prometheus.yaml"),
        datasources=one(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"),
        dashboard_provider=one(DEPLOY / "grafana" / "provisioning" / "dashboards" / "fareway.yaml"),
        dashboard=json.loads((DEPLOY / "grafana" / "fareway-dashboard.json").read_text()),
        k8s={path.name: yaml_documents(path) for path in sorted(K8S.glob("*.yaml"))},
        fareway_config=(DEPLOY / "fareway.yaml").read_text(encoding="utf-8"),
        dockerfile=DOCKERFILE.read_text(encoding="utf-8"),
        deploy_doc=DEPLOY_DOC.read_text(encoding="utf-8") if DEPLOY_DOC.exists() else "",
    )


@pytest.fixture(scope="module")
def files() -> Files:
    return load()


# --- facts from the repository ------------------------------------------------------------


@dataclass(frozen=True)
class DockerfileFacts:
    exposed: frozenset[int]
    healthcheck_port: int | None


def dockerfile_facts(text: str) -> DockerfileFacts:
    joined = re.sub(r"\\\n", " ", text)  # continuation lines
    exposed: set[int] = set()
    health: int | None = None
    for line in joined.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "EXPOSE":
            exposed |= {int(word.split("/")[0]) for word in words[1:]}
        if words[0] == "HEALTHCHECK":
            target = re.search(r'"--target",\s*"[^"]*:(\d+)"', line)
            health = int(target.group(1)) if target else None
    return DockerfileFacts(frozenset(exposed), health)


def package_folders() -> list[Path]:
    """fareway's installed code: pyproject's package-dir folders."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [ROOT / folder for folder in pyproject["tool"]["setuptools"]["package-dir"].values()]


def variables_in_code() -> set[str]:
    """FAREWAY_* and OTEL_* names in fareway's code, and every variable the OpenTelemetry SDK
    reads from the process environment."""
    found: set[str] = set()
    pattern = re.compile(r"\b(?:FAREWAY|OTEL)_[A-Z0-9_]*[A-Z0-9]\b")
    for folder in package_folders():
        for path in folder.rglob("*.py"):
            found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    sdk = {value for key, value in vars(sdk_environment_variables).items() if key.isupper()}
    return found | sdk


def variables_in_config(config: FarewayConfig) -> tuple[set[str], set[str]]:
    """(every variable the configuration names, those without which the server will not start:
    key variables with no sha256 to fall back on)."""
    named: set[str] = set()
    required: set[str] = set()
    keys = [key for tenant in config.tenants.values() for key in tenant.api_keys]
    for key in [*keys, *config.admin_keys]:
        if key.env:
            named.add(key.env)
            if key.sha256 is None:
                required.add(key.env)
    for provider in config.providers.values():
        variable = getattr(provider, "api_key_env", None)
        if variable:
            named.add(variable)
            if getattr(provider, "simulate_without_key", True) is False:
                required.add(variable)
    url_env = getattr(config.ledger, "url_env", None)
    if url_env:
        named.add(url_env)
    return named, required


def shutdown_budget_s(config: FarewayConfig) -> float:
    """How long a fareway process may take to stop after SIGTERM: its drain, then the settles
    waiting for the ledger, then the telemetry flush (server/app.py RunningServer.stop)."""
    flush = inspect.signature(LedgerHealth.__init__).parameters["flush_timeout_s"].default
    return config.server.grace_s + flush + SHUTDOWN_TIMEOUT_S


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


# --- compose --------------------------------------------------------------------------------


def port_of(endpoint: str) -> int:
    """The port of `host:port`, `:port` or a URL."""
    if "//" in endpoint:
        port = urlsplit(endpoint).port
        assert port is not None, endpoint
        return port
    return int(endpoint.rsplit(":", 1)[1])


def collector_ports(collector: dict[str, Any]) -> dict[str, int]:
    """The collector's OTLP receiver ports by protocol, and its Prometheus exporter's."""
    protocols = collector["receivers"]["otlp"]["protocols"]
    ports = {name: port_of(spec["endpoint"]) for name, spec in protocols.items()}
    ports["prometheus"] = port_of(collector["exporters"]["prometheus"]["endpoint"])
    return ports


def image_problems(image: str | None, where: str) -> list[str]:
    """A third-party image must name a tag (not `latest`) or a digest."""
    if not image:
        return [f"{where}: no image"]
    if "@sha256:" in image:
        return []
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if not tag or tag == "latest":
        return [f"{where}: image '{image}' is not pinned to a tag"]
    return []


def is_fareway_image(image: str) -> bool:
    name = image.split("@")[0]
    repository = name.rsplit(":", 1)[0] if ":" in name.split("/")[-1] else name
    return repository.split("/")[-1] == FAREWAY_IMAGE


def interpolate(value: str) -> str:
    """A compose value with its variables as compose fills them in when none is set:
    `${NAME:-default}` is the default, any other reference a stand-in."""
    value = re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[^}]*\}|\$\w+", "set", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's variables, interpolated."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = [item.split("=", 1) if "=" in item else [item, ""] for item in env]
        return {name: interpolate(value) for name, value in pairs}
    return {str(k): "" if v is None else interpolate(str(v)) for k, v in env.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each short-syntax volume."""
    found = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            found.append((volume.get("source", ""), volume.get("target", "")))
        else:
            source, target, *_ = volume.split(":")
            found.append((source, target))
    return found


def mounted_file(service: dict[str, Any], target: str) -> Path | None:
    """The host file behind `target` in the container, when a bind mount provides it."""
    for source, mounted in mounts(service):
        if not source.startswith((".", "/")):
            continue
        host = (DEPLOY / source).resolve()
        if target == mounted:
            return host
        if PurePosixPath(target).is_relative_to(mounted):
            return host / PurePosixPath(target).relative_to(mounted)
    return None


def duration_s(text: str | int | float) -> float:
    if isinstance(text, int | float):
        return float(text)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert "".join(n + u for n, u in parts) == text, f"duration {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def config_argument(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


def env_problems(
    env: dict[str, str], config: FarewayConfig, where: str, referenced: Collection[str] = ()
) -> list[str]:
    """Every variable set for fareway is one it reads (or one that another variable's value
    refers to, as Kubernetes' $(NAME)); every key variable it needs is set."""
    read = variables_in_code()
    named, required = variables_in_config(config)
    problems = [
        f"{where}: fareway reads no variable {name}"
        for name in env
        if name not in read | named | set(referenced)
    ]
    for name in sorted(required - set(env)):
        problems.append(f"{where}: {name} is not set; the configuration needs it")
    return problems


def otlp_problems(env: dict[str, str], collector: dict[str, Any], where: str) -> list[str]:
    """The OTLP endpoint's port is the collector's receiver for the protocol in use."""
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return [f"{where}: OTEL_EXPORTER_OTLP_ENDPOINT is not set: nothing would be exported"]
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    receiver = "http" if protocol == "http/protobuf" else "grpc"
    expected = collector_ports(collector)[receiver]
    if port_of(endpoint) != expected:
        return [
            f"{where}: OTEL_EXPORTER_OTLP_ENDPOINT {endpoint} is not the collector's OTLP "
            f"{receiver} port {expected}"
        ]
    return []


def compose_problems(files: Files) -> list[str]:
    problems: list[str] = []
    services: dict[str, dict[str, Any]] = files.compose.get("services", {})
    facts = dockerfile_facts(files.dockerfile)
    volumes = set(files.compose.get("volumes") or {})
    config = parse_config(files.fareway_config, "deploy/fareway.yaml")
    fareway_port = config.server.port
    fareway_services = []
    for name, service in services.items():
        where = f"compose service {name}"
        image = service.get("image", "")
        if "build" in service or is_fareway_image(image):
            fareway_services.append(name)
            build = service.get("build")
            if not isinstance(build, dict):
                problems.append(f"{where}: fareway must be built from the repository")
            else:
                context = DEPLOY / build.get("context", ".")
                dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
                if dockerfile != DOCKERFILE:
                    problems.append(f"{where}: builds {dockerfile}, not the repository's")
        else:
            problems += image_problems(image, where)
        for source, _ in mounts(service):
            if source.startswith((".", "/")):
                if not (DEPLOY / source).exists():
                    problems.append(f"{where}: mounts {source}, which does not exist")
            elif source not in volumes:
                problems.append(f"{where}: volume '{source}' is not declared")
        for dependency in service.get("depends_on") or []:
            if dependency not in services:
                problems.append(f"{where}: depends on '{dependency}', which is not a service")
        command = [str(arg) for arg in service.get("command") or []]
        for arg in command:
            # A configuration file named on the command line comes from deploy/.
            path = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
            if not (path.startswith("/") and path.endswith((".yaml", ".yml", ".json"))):
                continue
            host_file = mounted_file(service, path)
            if host_file is None:
                problems.append(f"{where}: {path} is not mounted from deploy/")
            elif not host_file.is_file():
                problems.append(f"{where}: {path} is mounted from a file that does not exist")
        if name not in fareway_services:
            continue
        # fareway itself.
        path = config_argument(command)
        host_file = mounted_file(service, path) if path else None
        if host_file != (DEPLOY / "fareway.yaml").resolve():
            problems.append(f"{where}: --config must name deploy/fareway.yaml as mounted")
        for spec in service.get("ports") or []:
            container = int(str(spec).split(":")[-1].split("/")[0])
            if container != fareway_port or container not in facts.exposed:
                problems.append(
                    f"{where}: publishes container port {container}; fareway listens on "
                    f"{fareway_port} (Dockerfile EXPOSE {sorted(facts.exposed)})"
                )
        port = option(command, "--port")
        if port is not None and int(port) != fareway_port:
            problems.append(f"{where}: --port {port} is not the configuration's {fareway_port}")
        env = environment(service)
        problems += env_problems(env, config, where)
        problems += otlp_problems(env, files.collector, where)
        host = urlsplit(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")).hostname or ""
        if "opentelemetry-collector" not in services.get(host, {}).get("image", ""):
            problems.append(f"{where}: the OTLP endpoint's host '{host}' is not the collector")
        for variable, scheme, port_ in (
            (PostgresLedgerConfig.model_fields["url_env"].default, "postgres", POSTGRES_PORT),
            (RedisLedgerConfig.model_fields["url_env"].default, "redis", REDIS_PORT),
        ):
            if variable in env:
                url = urlsplit(env[variable])
                target = services.get(url.hostname or "", {})
                if scheme not in target.get("image", "") or (url.port or port_) != port_:
                    problems.append(f"{where}: {variable} does not point at the {scheme} service")
        grace = duration_s(service.get("stop_grace_period", "10s"))
        if grace < shutdown_budget_s(config):
            problems.append(
                f"{where}: stop_grace_period {grace:g} s is shorter than fareway's shutdown "
                f"({shutdown_budget_s(config):g} s)"
            )
    if len(fareway_services) < 2:
        problems.append(f"compose: {len(fareway_services)} fareway replica; two share the ledger")
    if facts.healthcheck_port != fareway_port or fareway_port not in facts.exposed:
        problems.append("Dockerfile: HEALTHCHECK and EXPOSE must name the configuration's port")
    problems += observability_problems(files, services)
    return problems


def observability_problems(files: Files, services: dict[str, dict[str, Any]]) -> list[str]:
    """The collector's, Prometheus' and Grafana's files agree with each other and with the
    compose services that run them."""
    problems: list[str] = []
    collector = files.collector
    ports = collector_ports(collector)
    for kind in ("receivers", "processors", "exporters"):
        for pipeline, spec in collector["service"]["pipelines"].items():
            for component in spec.get(kind, []):
                if component not in collector.get(kind, {}):
                    problems.append(f"collector: pipeline {pipeline} names undefined {component}")
    for extension in collector["service"].get("extensions", []):
        if extension not in collector.get("extensions", {}):
            problems.append(f"collector: extension {extension} is not defined")
    for name, exporter in collector.get("exporters", {}).items():
        if name.startswith("otlp"):
            endpoint = exporter["endpoint"]
            host, port = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").netloc.rsplit(
                ":", 1
            )
            if "jaeger" not in services.get(host, {}).get("image", ""):
                problems.append(f"collector: exporter {name} sends to '{host}', not Jaeger")
            if int(port) != JAEGER_OTLP_GRPC_PORT:
                problems.append(f"collector: exporter {name} port {port} is not Jaeger's OTLP")
    collector_service = next(
        (n for n, s in services.items() if "opentelemetry-collector" in s.get("image", "")), None
    )
    if collector_service is None:
        problems.append("compose: no OpenTelemetry collector service")
    else:
        command = [str(arg) for arg in services[collector_service].get("command") or []]
        path = config_argument(command) or "/etc/otelcol-contrib/config.yaml"
        host_file = mounted_file(services[collector_service], path)
        if host_file != (DEPLOY / "otel-collector.yaml").resolve():
            problems.append("compose: the collector does not run deploy/otel-collector.yaml")
    for job in files.prometheus.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                host, port = target.rsplit(":", 1)
                if host != collector_service or int(port) != ports["prometheus"]:
                    problems.append(
                        f"prometheus: target {target} is not the collector's Prometheus "
                        f"exporter ({collector_service}:{ports['prometheus']})"
                    )
        if not job.get("honor_labels"):
            problems.append(f"prometheus: job {job.get('job_name')} must honor_labels")
    prometheus_service = next(
        (n for n, s in services.items() if "prom/prometheus" in s.get("image", "")), None
    )
    if prometheus_service is not None:
        command = [str(arg) for arg in services[prometheus_service].get("command") or []]
        path = next((a.split("=", 1)[1] for a in command if a.startswith("--config.file=")), None)
        config_file = mounted_file(services[prometheus_service], path) if path else None
        if config_file != (DEPLOY / "prometheus.yaml").resolve():
            problems.append("compose: Prometheus does not run deploy/prometheus.yaml")
    for source in files.datasources.get("datasources", []):
        url = urlsplit(source.get("url", ""))
        if url.hostname != prometheus_service or url.port != PROMETHEUS_PORT:
            problems.append(f"grafana: data source {source.get('url')} is not Prometheus")
    grafana = next((s for s in services.values() if "grafana/grafana" in s.get("image", "")), None)
    if grafana is not None:
        for provider in files.dashboard_provider.get("providers", []):
            folder = provider.get("options", {}).get("path", "")
            dashboard = mounted_file(grafana, f"{folder}/fareway-dashboard.json")
            if dashboard != (DEPLOY / "grafana" / "fareway-dashboard.json").resolve():
                problems.append(f"grafana: {folder} does not hold the fareway dashboard")
        if mounted_file(grafana, "/etc/grafana/provisioning/dashboards/fareway.yaml") is None:
            problems.append("grafana: deploy/grafana/provisioning is not mounted")
    return problems


# --- Kubernetes -----------------------------------------------------------------------------


def k8s_objects(files: Files) -> list[dict[str, Any]]:
    return [doc for name, docs in files.k8s.items() if name != "kustomization.yaml" for doc in docs]


def k8s_find(files: Files, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        obj
        for obj in k8s_objects(files)
        if obj.get("kind") == kind and (name is None or obj["metadata"]["name"] == name)
    ]


def configmap_config(files: Files) -> tuple[str, str]:
    """(name, text) of the fareway configuration in the ConfigMap the Deployment mounts."""
    (configmap,) = k8s_find(files, "ConfigMap", "fareway-config")
    return "deploy/k8s/configmap.yaml fareway.yaml", configmap["data"]["fareway.yaml"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def probe_problems(container: dict[str, Any], port: int, where: str) -> list[str]:
    problems = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        if probe is None:
            problems.append(f"{where}: no {kind}")
            continue
        grpc = probe.get("grpc")
        if grpc is None:
            problems.append(f"{where}: {kind} is not a gRPC health probe")
            continue
        if grpc.get("port") != port:
            problems.append(f"{where}: {kind} probes port {grpc.get('port')}, not {port}")
        service = grpc.get("service", "")
        if service and service not in SERVICE_NAMES:
            problems.append(f"{where}: {kind} asks about '{service}', which fareway never reports")
    return problems


def k8s_problems(files: Files) -> list[str]:
    problems: list[str] = []
    listed = files.k8s.get("kustomization.yaml", [{}])[0].get("resources", [])
    on_disk = sorted(name for name in files.k8s if name != "kustomization.yaml")
    if sorted(listed) != on_disk:
        problems.append(f"kustomization: resources {sorted(listed)} are not the files {on_disk}")
    name, text = configmap_config(files)
    config = parse_config(text, name)
    port = config.server.port
    facts = dockerfile_facts(files.dockerfile)
    secrets = {s["metadata"]["name"]: s for s in k8s_find(files, "Secret")}
    configmaps = {c["metadata"]["name"]: c for c in k8s_find(files, "ConfigMap")}
    deployments = k8s_find(files, "Deployment")
    if not deployments:
        return [*problems, "k8s: no Deployment"]
    for deployment in deployments:
        where = f"Deployment {deployment['metadata']['name']}"
        spec = deployment["spec"]
        pod = spec["template"]
        labels = pod["metadata"].get("labels", {})
        if not selects(spec["selector"].get("matchLabels", {}), labels):
            problems.append(f"{where}: its selector does not match its pods' labels")
        if spec.get("replicas", 1) < 2:
            problems.append(f"{where}: one replica; several share the ledger")
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        if not any(is_fareway_image(c.get("image", "")) for c in pod["spec"]["containers"]):
            problems.append(f"{where}: no container runs the fareway image")
        for container in pod["spec"]["containers"]:
            cwhere = f"{where} container {container['name']}"
            image = container.get("image", "")
            if not is_fareway_image(image):
                problems += image_problems(image, cwhere)
                continue
            args = [str(arg) for arg in container.get("command", []) + container.get("args", [])]
            # The configuration file: --config names a file that a ConfigMap volume provides.
            path = config_argument(args)
            if path is None:
                problems.append(f"{cwhere}: no --config: the embedded default would be served")
            else:
                provided = None
                for mount in container.get("volumeMounts", []):
                    mounted = PurePosixPath(mount["mountPath"])
                    if PurePosixPath(path).parent != mounted:
                        continue
                    volume = volumes.get(mount["name"], {}).get("configMap")
                    if volume is None:
                        continue
                    # With `items`, only the files they list are there.
                    items = {i["path"]: i["key"] for i in volume.get("items", [])}
                    filename = PurePosixPath(path).name
                    key = items.get(filename) if items else filename
                    source = configmaps.get(volume["name"], {}).get("data", {})
                    provided = (volume["name"], key) if key in source else None
                if provided != ("fareway-config", "fareway.yaml"):
                    problems.append(f"{cwhere}: {path} is not fareway-config's fareway.yaml")
            if option(args, "--port") not in (None, str(port)):
                problems.append(f"{cwhere}: --port is not the configuration's {port}")
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            if ports.get("grpc") != port or port not in facts.exposed:
                problems.append(
                    f"{cwhere}: port 'grpc' is {ports.get('grpc')}; fareway listens on {port} "
                    f"(Dockerfile EXPOSE {sorted(facts.exposed)})"
                )
            problems += probe_problems(container, port, cwhere)
            # Variables: each read by fareway, each secret reference resolvable.
            env: dict[str, str] = {}
            referenced: set[str] = set()
            for item in container.get("env", []):
                value = str(item.get("value", ""))
                for ref in re.findall(r"\$\((\w+)\)", value):
                    if ref not in env:
                        problems.append(f"{cwhere}: {item['name']} uses $({ref}), unset before")
                    referenced.add(ref)
                env[item["name"]] = value
                secret = item.get("valueFrom", {}).get("secretKeyRef")
                if secret is not None:
                    data = secrets.get(secret["name"], {})
                    keys = set(data.get("stringData", {})) | set(data.get("data", {}))
                    if secret["key"] not in keys:
                        problems.append(
                            f"{cwhere}: {item['name']} reads key '{secret['key']}' of Secret "
                            f"'{secret['name']}', which does not exist"
                        )
            if container.get("envFrom"):
                problems.append(f"{cwhere}: envFrom hides which variables are set; name them")
            problems += env_problems(env, config, cwhere, referenced)
            problems += otlp_problems(env, files.collector, cwhere)
            # Stopping: preStop's pause plus fareway's shutdown fit in the grace period.
            pre_stop = container.get("lifecycle", {}).get("preStop", {})
            command = pre_stop.get("exec", {}).get("command", [])
            pause = float(command[1]) if command[:1] == ["sleep"] else 0.0
            pause = float(pre_stop.get("sleep", {}).get("seconds", pause))
            needed = pause + shutdown_budget_s(config)
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
            if grace < needed:
                problems.append(
                    f"{where}: terminationGracePeriodSeconds {grace} is shorter than preStop "
                    f"{pause:g} s plus fareway's shutdown ({shutdown_budget_s(config):g} s)"
                )
        # What points at the Deployment.
        for service in k8s_find(files, "Service"):
            swhere = f"Service {service['metadata']['name']}"
            if not selects(service["spec"].get("selector", {}), labels):
                problems.append(f"{swhere}: its selector does not match the fareway pods")
            for service_port in service["spec"].get("ports", []):
                target = service_port.get("targetPort", service_port.get("port"))
                names_ = {
                    p.get("name"): p["containerPort"]
                    for c in pod["spec"]["containers"]
                    for p in c.get("ports", [])
                }
                resolved = names_.get(target) if isinstance(target, str) else target
                if resolved != port:
                    problems.append(f"{swhere}: targetPort {target} is not fareway's {port}")
        for budget in k8s_find(files, "PodDisruptionBudget"):
            if not selects(budget["spec"]["selector"].get("matchLabels", {}), labels):
                problems.append("PodDisruptionBudget: its selector does not match the pods")
    if not any(s["spec"].get("clusterIP") == "None" for s in k8s_find(files, "Service")):
        problems.append("k8s: no headless Service for client-side balancing")
    deployment_names = {d["metadata"]["name"] for d in deployments}
    for hpa in k8s_find(files, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or target.get("name") not in deployment_names:
            problems.append(f"HorizontalPodAutoscaler: scales {target}, not a Deployment here")
        if hpa["spec"].get("minReplicas", 1) < 2:
            problems.append("HorizontalPodAutoscaler: minReplicas below 2")
    for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret"):
        if not k8s_find(files, kind):
            problems.append(f"k8s: no {kind}")
    return problems


# --- the tests ------------------------------------------------------------------------------


EXPECTED_FILES = [
    "compose.yaml",
    "fareway.yaml",
    "otel-collector.yaml",
    "prometheus.yaml",
    "grafana/fareway-dashboard.json",
    "grafana/provisioning/datasources/prometheus.yaml",
    "grafana/provisioning/dashboards/fareway.yaml",
    "k8s/kustomization.yaml",
    "k8s/configmap.yaml",
    "k8s/secret.yaml",
    "k8s/deployment.yaml",
    "k8s/service.yaml",
    "k8s/hpa.yaml",
    "k8s/pdb.yaml",
]


def test_every_file_is_there_and_parses() -> None:
    for name in EXPECTED_FILES:
        assert (DEPLOY / name).is_file(), f"deploy/{name} is missing"
    for path in sorted(DEPLOY.rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            assert yaml_documents(path), f"{path} is empty"
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))


def test_fareway_configurations_load(files: Files) -> None:
    """deploy/fareway.yaml and the ConfigMap's file pass fareway's own loader, and serve a
    shared ledger on every interface without the public demo keys."""
    for name, text in [("deploy/fareway.yaml", files.fareway_config), configmap_config(files)]:
        config = parse_config(text, name)
        assert config.server.host == "0.0.0.0", name
        assert config.ledger.type == "postgres", f"{name}: the ledger is not the shared one"
        demo_hashes = {
            "677276db4ed94c79fa5c543dc9cc51824115ff011e30b5a40f4b2afbc4e231e9",  # fareway-demo-key
            "495263509836d6b9c06dbd0ac7e79cf5f4d0097efab622045d787624c45a17aa",  # fareway-admin-key
        }
        keys = [k for t in config.tenants.values() for k in t.api_keys] + list(config.admin_keys)
        assert not {k.sha256 for k in keys} & demo_hashes, f"{name} accepts a demo key"


def test_configmap_is_the_compose_configuration(files: Files) -> None:
    """The two configurations differ only where configmap.yaml's header says: a missing
    provider key stops a Kubernetes pod instead of simulating its models."""

    def without_simulation(text: str) -> dict[str, Any]:
        data = yaml.safe_load(text)
        for provider in data["providers"].values():
            provider.pop("simulate_without_key", None)
        return dict(data)

    _, text = configmap_config(files)
    assert without_simulation(text) == without_simulation(files.fareway_config)


def test_compose(files: Files) -> None:
    assert compose_problems(files) == []


def test_kubernetes(files: Files) -> None:
    assert k8s_problems(files) == []


def test_dashboard_names_only_metrics_fareway_exports(files: Files) -> None:
    assert dashboard_problems(files) == []
    queried = " ".join(expr for _, expr, _ in dashboard_queries(files.dashboard))
    known = recorded_metrics()
    for needed in ("fareway.cost", "fareway.decisions", "fareway.escalations", "fareway.fallbacks"):
        assert known.by_otel_name[needed] in queried, f"the dashboard does not show {needed}"
    for needed in (names.METRIC_TIME_TO_FIRST_CHUNK, names.METRIC_BUDGET_UTILIZATION):
        assert known.by_otel_name[needed] in queried, f"the dashboard does not show {needed}"
    assert known.by_otel_name[names.METRIC_TOKEN_USAGE] in queried


def test_each_process_reports_its_own_instance() -> None:
    """The deployments leave service.instance.id to the OpenTelemetry SDK, which gives each
    process a random one: that is what keeps the series of two replicas (or two workers) apart
    in Prometheus (docs/DEPLOY.md, "Metrics in Prometheus")."""
    telemetry = configure_telemetry(
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
    )
    attributes = telemetry.tracer_provider.resource.attributes
    assert attributes.get("service.instance.id"), attributes
    assert attributes.get("service.name") == "fareway"


def test_conversion_matches_the_collectors_rules() -> None:
    """Worked examples from prometheus/otlptranslator's own documentation and tests."""
    assert prometheus_name("http.server.request.duration", "s", "histogram") == (
        "http_server_request_duration_seconds"
    )
    assert prometheus_name("requests.count", "1", "counter") == "requests_count_total"
    assert prometheus_name("memory.usage", "By", "gauge") == "memory_usage_bytes"
    assert prometheus_name("system.cpu.utilization", "1", "gauge") == "system_cpu_utilization_ratio"
    assert prometheus_name("gen_ai.client.token.usage", "{token}", "histogram") == (
        "gen_ai_client_token_usage"
    )


# A row of docs/DEPLOY.md's metric table: | `otlp.name` | instrument, unit | `prometheus_name` |
METRIC_ROW = re.compile(r"^\|\s*`((?:fareway|gen_ai)\.[\w.]+)`\s*\|[^|\n]*\|\s*`(\w+)`", re.M)


def test_deploy_doc_names_the_metrics_as_prometheus_shows_them(files: Files) -> None:
    """docs/DEPLOY.md's table of metric names: each Prometheus name is the conversion of the
    OTLP name beside it, and every fareway metric is listed."""
    known = recorded_metrics()
    table = dict(METRIC_ROW.findall(files.deploy_doc))
    assert table, "docs/DEPLOY.md has no table of metric names"
    for otel_name, prometheus in table.items():
        assert known.by_otel_name.get(otel_name) == prometheus, (otel_name, prometheus)
    assert set(table) == set(known.by_otel_name), set(known.by_otel_name) ^ set(table)


def _replace_in(obj: Any, old: str, new: str) -> Any:
    """`obj` with `old` replaced by `new` in every string, key or value."""
    if isinstance(obj, str):
        return obj.replace(old, new)
    if isinstance(obj, list):
        return [_replace_in(item, old, new) for item in obj]
    if isinstance(obj, dict):
        return {_replace_in(k, old, new): _replace_in(v, old, new) for k, v in obj.items()}
    return obj


def _typo(attribute: str, old: str, new: str, k8s_file: str = "") -> Callable[[Files], Files]:
    """A copy of the files with `old` replaced by `new` in one of them (for Kubernetes, in
    `k8s_file` only)."""

    def mutate(files: Files) -> Files:
        changed = copy.deepcopy(files)
        if k8s_file:
            before = changed.k8s[k8s_file]
            changed.k8s[k8s_file] = _replace_in(before, old, new)
            assert changed.k8s[k8s_file] != before, f"{old!r} is not in {k8s_file}"
            return changed
        before = getattr(changed, attribute)
        setattr(changed, attribute, _replace_in(before, old, new))
        assert getattr(changed, attribute) != before, f"{old!r} is not in {attribute}"
        return changed

    return mutate


TYPOS = {
    "metric name": (
        _typo("dashboard", "fareway_cost_total", "fareway_costs_total"),
        dashboard_problems,
        "metric 'fareway_costs_total'",
    ),
    "metric without its unit suffix": (
        _typo("dashboard", "time_to_first_chunk_seconds_bucket", "time_to_first_chunk_bucket"),
        dashboard_problems,
        "does not exist",
    ),
    "label": (
        _typo("dashboard", "fareway_strategy", "fareway_stratgy"),
        dashboard_problems,
        "label 'fareway_stratgy'",
    ),
    "compose variable": (
        _typo("compose", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPIONT"),
        compose_problems,
        "reads no variable OTEL_EXPORTER_OTLP_ENDPIONT",
    ),
    "compose key variable": (
        _typo("compose", "FAREWAY_TENANT_KEY", "FAREWAY_TENANT_KEYS"),
        compose_problems,
        "FAREWAY_TENANT_KEY is not set",
    ),
    "compose mount": (
        _typo("compose", "./fareway.yaml:", "./fareway.yml:"),
        compose_problems,
        "does not exist",
    ),
    "compose image tag": (
        _typo("compose", "postgres:17.6", "postgres:latest"),
        compose_problems,
        "not pinned",
    ),
    "collector port": (
        _typo("compose", "otel-collector:4317", "otel-collector:4318"),
        compose_problems,
        "OTLP grpc port 4317",
    ),
    "scrape target": (
        _typo("prometheus", "otel-collector:8889", "otel-collector:8899"),
        compose_problems,
        "Prometheus exporter",
    ),
    "probe port": (lambda f: _set_probe_port(f, 50052), k8s_problems, "probes port 50052"),
    "secret key": (
        _typo("k8s", "tenant-key", "tenant-keys", "deployment.yaml"),
        k8s_problems,
        "key 'tenant-keys' of Secret 'fareway-secrets', which does not exist",
    ),
    "k8s variable": (
        _typo("k8s", "OTEL_SERVICE_NAME", "OTEL_SERVICE", "deployment.yaml"),
        k8s_problems,
        "reads no variable OTEL_SERVICE",
    ),
    "configuration": (
        _typo("k8s", "default_strategy: learned", "default_strategy: learnd", "configmap.yaml"),
        k8s_problems,
        "learnd",
    ),
    "config path": (
        _typo("k8s", "/etc/fareway/fareway.yaml", "/etc/fareway/config.yaml", "deployment.yaml"),
        k8s_problems,
        "is not fareway-config's fareway.yaml",
    ),
    "image": (
        _typo("k8s", "fareway:0.1.0", "farway:0.1.0", "deployment.yaml"),
        k8s_problems,
        "no container runs the fareway image",
    ),
}


def _set_probe_port(files: Files, port: int) -> Files:
    changed = copy.deepcopy(files)
    (deployment,) = [d for d in changed.k8s["deployment.yaml"] if d["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = port
    return changed


@pytest.mark.parametrize("typo", list(TYPOS))
def test_a_typo_is_caught(files: Files, typo: str) -> None:
    """One wrong character in a deployment file makes its check complain."""
    mutate, check, expected = TYPOS[typo]
    try:
        problems = check(mutate(files))
    except ConfigError as error:  # the loader refusing a configuration is a complaint too
        problems = [str(error)]
    assert any(expected in problem for problem in problems), problems
