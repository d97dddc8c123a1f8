"""The Kubernetes manifests' problems: the Deployment's probes, ports, configuration, secrets
and grace period, and the objects that select it."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from fareway.config.loader import parse_config
from fareway.server.app import SERVICE_NAMES
from tests.deploy.repository import Files, dockerfile_facts, shutdown_budget_s
from tests.deploy.stacks import (
    config_argument,
    env_problems,
    image_problems,
    is_fareway_image,
    option,
    otlp_problems,
)


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
