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
  translation; `prometheus.prometheus_name`, docs/DEPLOY.md "Metrics in Prometheus");
- shutdown time: server.grace_s, LedgerHealth's settle flush and telemetry's SHUTDOWN_TIMEOUT_S;
- the shared ledgers' URL variables: budgets/registry.py's `url_env` defaults.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from fareway.config.loader import ConfigError, parse_config
from fareway.telemetry import names
from fareway.telemetry.setup import configure_telemetry
from tests.deploy.compose_checks import compose_problems
from tests.deploy.k8s_checks import configmap_config, k8s_problems
from tests.deploy.prometheus import (
    dashboard_problems,
    dashboard_queries,
    prometheus_name,
    recorded_metrics,
)
from tests.deploy.repository import DEPLOY, Files, load, yaml_documents


@pytest.fixture(scope="module")
def files() -> Files:
    return load()


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
