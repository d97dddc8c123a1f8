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
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or root is None:
        raise ConfigError(f"{name}: expected a mapping at the top level")
    try:
        config = FarewayConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            _describe(name, root, tuple(err["loc"]), err["msg"], union_tags=True)
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError("\n".join(lines)) from None
    problems = config.problems()
    if problems:
        raise ConfigError("\n".join(_describe(name, root, loc, msg) for loc, msg in problems))
    return config


def _describe(
    name: str, root: yaml.Node, loc: tuple[str | int, ...], message: str, union_tags: bool = False
) -> str:
    node, path = _locate(root, loc, union_tags)
    field = ".".join(str(part) for part in path) or "(top level)"
    return f"{name}:{node.start_mark.line + 1}: {field}: {message}"


def _locate(
    root: yaml.Node, loc: tuple[str | int, ...], union_tags: bool
) -> tuple[yaml.Node, list[str | int]]:
    """The YAML node at `loc`, or its deepest ancestor that exists (for a missing field, the
    mapping that should hold it), and the path to report. Pydantic's paths (`union_tags`)
    repeat a tagged-union member's `type` value right after the member; that tag is dropped,
    or it would be read as a field (a `type: rules` strategy also has a `rules` field)."""
    node = root
    path: list[str | int] = []
    untagged: set[int] = set()  # ids of mapping nodes whose union tag was already skipped
    for part in loc:
        if union_tags and isinstance(node, yaml.MappingNode) and id(node) not in untagged:
            untagged.add(id(node))
            if _type_tag(node) == part:
                continue
        path.append(part)
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is not None:
            node = child
    return node, path


def _type_tag(node: yaml.MappingNode) -> str | None:
    value = next((v for k, v in node.value if k.value == "type"), None)
    return value.value if isinstance(value, yaml.ScalarNode) else None
