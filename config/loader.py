"""Reads a configuration file and reports every problem with its line and field."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from fareway.config.schema import FarewayConfig

DEFAULT_CONFIG_NAME = "default.yaml"


class ConfigError(Exception):
    """The configuration is invalid; the message lists each problem as `file:line: field: why`."""


def load_config(path: str | Path | None = None) -> FarewayConfig:
    """Load and validate a configuration file; None loads the embedded default."""
    if path is None:
        source = resources.files("fareway.config").joinpath(DEFAULT_CONFIG_NAME)
        return parse_config(source.read_text(encoding="utf-8"), f"<embedded {DEFAULT_CONFIG_NAME}>")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_config(text, str(path))


def parse_config(text: str, name: str = "<config>") -> FarewayConfig:
    """Validate configuration text; `name` is used in error messages."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or root is None:
        raise ConfigError(f"{name}: expected a mapping at the top level")
    try:
        config = FarewayConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            _describe(name, root, tuple(err["loc"]), err["msg"])
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError("\n".join(lines)) from None
    problems = config.problems()
    if problems:
        raise ConfigError("\n".join(_describe(name, root, loc, msg) for loc, msg in problems))
    return config


def _describe(name: str, root: yaml.Node, loc: tuple[str | int, ...], message: str) -> str:
    node = _deepest_node(root, loc)
    field = ".".join(str(part) for part in loc) or "(top level)"
    return f"{name}:{node.start_mark.line + 1}: {field}: {message}"


def _deepest_node(node: yaml.Node, loc: tuple[str | int, ...]) -> yaml.Node:
    """The YAML node at `loc`, or its deepest ancestor that exists (for a missing field, the
    mapping that should hold it). Pydantic adds union tags to paths; those are skipped."""
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is not None:
            node = child
    return node
