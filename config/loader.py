"""Reads a configuration file and reports every problem with its line and field.

Every refusal is a `ConfigError` (a `StartupError`) whose message has one line per problem,
each `file:line: field: why`: YAML syntax, a key given twice in one mapping (YAML parsers keep
the last one silently, so a forgotten earlier line would quietly win or lose), the schema, and
the cross-references between sections.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fareway.config.schema import FarewayConfig
from fareway.core.errors import StartupError

DEFAULT_CONFIG_NAME = "default.yaml"


class ConfigError(StartupError):
    """The configuration is invalid; the message lists each problem as `file:line: field: why`,
    one per line."""


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
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from exc
    return parse_config(text, str(path))


def parse_config(text: str, name: str = "<config>") -> FarewayConfig:
    """Validate configuration text; `name` is used in error messages."""
    root, data = _parse_yaml(text, name)
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


def _parse_yaml(text: str, name: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its Python value, parsed once. Keys
    given twice in a mapping are refused before anything is built from the tree."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # checked as the loader reads its input
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            f"{name}:{line}: not valid YAML: character #x{exc.character:04x} is not allowed"
        ) from exc
    loader.name = name  # marks name this instead of "<unicode string>"
    try:
        root = loader.get_single_node()
        duplicates = _duplicate_keys(root, name)
        if duplicates:
            raise ConfigError("\n".join(duplicates))
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_problem(exc, name)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {' '.join(str(exc).split())}") from exc
    finally:
        loader.dispose()
    return root, data


def _yaml_problem(exc: yaml.MarkedYAMLError, name: str) -> str:
    """One line: where the parser gave up, what it found, and what it was in the middle of."""
    mark = exc.problem_mark or exc.context_mark
    where = f"{name}:{mark.line + 1}" if mark is not None else name
    problem = exc.problem or exc.context or "cannot be parsed"
    context = ""
    if exc.problem and exc.context:
        at = f" at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        context = f" ({exc.context}{at})"
    return f"{where}: not valid YAML: {problem}{context}"


def _duplicate_keys(root: yaml.Node | None, name: str) -> list[str]:
    """`file:line: key 'x' appears twice` for every key repeated within one mapping, in
    file order. Aliases share nodes, so each node is visited once."""
    found: list[tuple[int, str]] = []
    seen_nodes: set[int] = set()
    pending = [root] if root is not None else []
    while pending:
        node = pending.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in first_line:
                        first = first_line[(key.tag, key.value)]
                        message = f"key '{key.value}' appears twice (first on line {first})"
                        found.append((line, f"{name}:{line}: {message}"))
                    else:
                        first_line[(key.tag, key.value)] = line
                pending.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
    return [message for _, message in sorted(found)]


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
