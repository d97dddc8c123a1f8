"""Decoding a request's conversation and tools from the wire, every problem a field violation.

The rules, each reported at the field it is about (`messages[3].tool_call_id`, say):

- a turn is ROLE_USER (text, images, or both; an image is PNG, JPEG, GIF or WebP of at most
  5 MiB), ROLE_ASSISTANT (text, tool calls, or both) or
  ROLE_TOOL (the result of one call: `tool_call_id` and `content`, which may be empty);
- a tool call has an id unique in the conversation, a name, and arguments that are a JSON
  object; a tool result answers a call of an earlier assistant turn, once;
- the conversation ends with a user turn, or with tool results;
- a tool has a unique name of letters, digits, "_" and "-" (at most 64, as the providers
  require) and an input schema that is a JSON object and a valid JSON Schema (a cascade
  validates tool calls against it, so a broken one must not get that far);
- a tool choice needs tools, and MODE_TOOL names one of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError

from fareway.core.content import Block, Image, Message, Role, Text, Tool, ToolCall, ToolChoice
from fareway.core.content import ToolChoiceMode as Mode
from fareway.core.errors import FieldViolation
from fareway.v1 import router_pb2

_ROLES = {
    router_pb2.ROLE_USER: Role.USER,
    router_pb2.ROLE_ASSISTANT: Role.ASSISTANT,
    router_pb2.ROLE_TOOL: Role.TOOL,
}
_MODES = {
    router_pb2.ToolChoice.MODE_UNSPECIFIED: Mode.AUTO,
    router_pb2.ToolChoice.MODE_AUTO: Mode.AUTO,
    router_pb2.ToolChoice.MODE_ANY: Mode.ANY,
    router_pb2.ToolChoice.MODE_NONE: Mode.NONE,
    router_pb2.ToolChoice.MODE_TOOL: Mode.TOOL,
}
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Anthropic's limit per image, the stricter provider's


def decode_turns(
    turns: Sequence[router_pb2.Message], violations: list[FieldViolation]
) -> tuple[Message, ...]:
    """The conversation, appending a violation for each problem (module docstring)."""
    decoded: list[Message] = []
    calls: set[str] = set()
    answered: set[str] = set()
    for i, turn in enumerate(turns):
        role = _ROLES.get(turn.role)
        where = f"messages[{i}]"
        if role is None:
            violations.append(
                FieldViolation(f"{where}.role", "must be ROLE_USER, ROLE_ASSISTANT or ROLE_TOOL")
            )
            continue
        if role is Role.TOOL:
            decoded.append(_tool_result(turn, where, calls, answered, violations))
            continue
        content = turn.content  # each read makes a new str: once, since it may be megabytes
        blank = not content or content.isspace()  # isspace stops early; strip would copy
        if turn.tool_call_id:
            violations.append(FieldViolation(f"{where}.tool_call_id", "only on ROLE_TOOL turns"))
        if role is not Role.USER and turn.images:
            violations.append(FieldViolation(f"{where}.images", "only on ROLE_USER turns"))
        if role is Role.USER:
            if turn.tool_calls:
                violations.append(
                    FieldViolation(f"{where}.tool_calls", "only on ROLE_ASSISTANT turns")
                )
            images = tuple(
                _image(image, f"{where}.images[{j}]", violations)
                for j, image in enumerate(turn.images)
            )
            if blank and not images:
                violations.append(FieldViolation(f"{where}.content", "must not be empty"))
            decoded.append(Message.user(content, images))
            continue
        made = tuple(_call(c, f"{where}.tool_calls[{j}]", calls, violations)
                     for j, c in enumerate(turn.tool_calls))  # fmt: skip
        if blank and not made:
            violations.append(
                FieldViolation(f"{where}.content", "must not be empty without tool_calls")
            )
        blocks: tuple[Block, ...] = (Text(content),) if not blank else ()
        decoded.append(Message(Role.ASSISTANT, blocks + made))
    if turns and turns[-1].role not in (router_pb2.ROLE_USER, router_pb2.ROLE_TOOL):
        violations.append(FieldViolation("messages", "must end with a ROLE_USER or ROLE_TOOL turn"))
    return tuple(decoded)


def decode_tools(
    tools: Sequence[router_pb2.Tool], violations: list[FieldViolation]
) -> tuple[Tool, ...]:
    """The request's tools, appending a violation for each problem."""
    decoded: list[Tool] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not _TOOL_NAME.fullmatch(tool.name):
            violations.append(
                FieldViolation(f"tools[{i}].name", "must be 1-64 letters, digits, '_' or '-'")
            )
        elif tool.name in seen:
            violations.append(FieldViolation(f"tools[{i}].name", f"'{tool.name}' appears twice"))
        seen.add(tool.name)
        where = f"tools[{i}].input_schema_json"
        schema = _json_object(tool.input_schema_json, where, violations)
        if schema is not None:
            try:
                validators.validator_for(schema).check_schema(schema)
            except SchemaError as error:
                violations.append(FieldViolation(where, f"not a JSON Schema: {error.message}"))
        decoded.append(Tool(tool.name, tool.description, schema or {}))
    return tuple(decoded)


def decode_tool_choice(
    request: router_pb2.GenerateRequest, tools: Sequence[Tool], violations: list[FieldViolation]
) -> ToolChoice | None:
    """The tool choice, None when the request sets none; appends a violation for each problem."""
    if not request.HasField("tool_choice"):
        return None
    choice = request.tool_choice
    mode = _MODES.get(choice.mode)
    if mode is None:
        violations.append(FieldViolation("tool_choice.mode", "unknown mode"))
        return None
    if not tools:
        violations.append(FieldViolation("tool_choice", "needs tools"))
    names = [t.name for t in tools]
    if mode is Mode.TOOL and choice.name not in names:
        known = ", ".join(names) or "none"
        violations.append(
            FieldViolation("tool_choice.name", f"unknown tool '{choice.name}'; known: {known}")
        )
    elif mode is not Mode.TOOL and choice.name:
        violations.append(FieldViolation("tool_choice.name", "only with MODE_TOOL"))
    return ToolChoice(mode, choice.name if mode is Mode.TOOL else "")


def _image(image: router_pb2.Image, where: str, violations: list[FieldViolation]) -> Image:
    if image.media_type not in IMAGE_TYPES:
        known = ", ".join(sorted(IMAGE_TYPES))
        violations.append(FieldViolation(f"{where}.media_type", f"must be one of {known}"))
    size = len(image.data)
    if not 0 < size <= MAX_IMAGE_BYTES:
        violations.append(
            FieldViolation(f"{where}.data", f"must hold 1 to {MAX_IMAGE_BYTES} bytes, not {size}")
        )
    return Image(image.media_type, image.data)


def _call(
    call: router_pb2.ToolCall, where: str, calls: set[str], violations: list[FieldViolation]
) -> ToolCall:
    if not call.id:
        violations.append(FieldViolation(f"{where}.id", "must not be empty"))
    elif call.id in calls:
        violations.append(FieldViolation(f"{where}.id", f"'{call.id}' is used twice"))
    calls.add(call.id)
    if not call.name:
        violations.append(FieldViolation(f"{where}.name", "must not be empty"))
    _json_object(call.arguments_json, f"{where}.arguments_json", violations)
    return ToolCall(call.id, call.name, call.arguments_json)


def _tool_result(
    turn: router_pb2.Message,
    where: str,
    calls: set[str],
    answered: set[str],
    violations: list[FieldViolation],
) -> Message:
    call_id = turn.tool_call_id
    if turn.tool_calls:
        violations.append(FieldViolation(f"{where}.tool_calls", "only on ROLE_ASSISTANT turns"))
    if call_id not in calls:
        violations.append(
            FieldViolation(
                f"{where}.tool_call_id",
                f"no earlier assistant turn called a tool with id '{call_id}'",
            )
        )
    elif call_id in answered:
        violations.append(FieldViolation(f"{where}.tool_call_id", f"'{call_id}' is answered twice"))
    answered.add(call_id)
    return Message.tool(call_id, turn.content)


def _json_object(text: str, where: str, violations: list[FieldViolation]) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError as error:
        violations.append(FieldViolation(where, f"must be a JSON object ({error})"))
        return None
    if not isinstance(value, dict):
        violations.append(FieldViolation(where, "must be a JSON object"))
        return None
    return value
