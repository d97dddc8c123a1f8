"""Checks shared by the compose and Kubernetes stacks: images, environments, mounts,
arguments, OTLP endpoints and durations as both spell them."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fareway.config.schema import FarewayConfig
from tests.deploy.repository import DEPLOY, FAREWAY_IMAGE, variables_in_code, variables_in_config


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
