"""What the deployment checks read: the deploy/ files, loaded once, and the facts they are
checked against, each from its source in the repository (the Dockerfile, the variables the code
reads, the configuration's key variables, the shutdown time), never from a copy kept here."""

from __future__ import annotations

import inspect
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.sdk import environment_variables as sdk_environment_variables

from fareway.config.schema import FarewayConfig
from fareway.server.ledger_health import LedgerHealth
from fareway.telemetry.setup import SHUTDOWN_TIMEOUT_S

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
