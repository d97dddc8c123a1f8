"""The compose stack's problems: fareway's replicas, the ledger, the collector, Prometheus,
Jaeger and Grafana, and how they point at each other."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fareway.budgets.registry import PostgresLedgerConfig, RedisLedgerConfig
from fareway.config.loader import parse_config
from tests.deploy.repository import (
    DEPLOY,
    DOCKERFILE,
    JAEGER_OTLP_GRPC_PORT,
    POSTGRES_PORT,
    PROMETHEUS_PORT,
    REDIS_PORT,
    Files,
    dockerfile_facts,
    shutdown_budget_s,
)
from tests.deploy.stacks import (
    collector_ports,
    config_argument,
    duration_s,
    env_problems,
    environment,
    image_problems,
    is_fareway_image,
    mounted_file,
    mounts,
    option,
    otlp_problems,
)


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
