"""The parts of the wire contract this repository relies on, checked on the compiled
descriptors (beside `buf lint` and `buf breaking`, which `make lint` runs where npm is, as
`make protolint`): published field numbers never move, every element carries a comment (the
API contract asks for comments on every field), and every enum starts with an `_UNSPECIFIED`
zero value.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from fareway.v1 import router_pb2

PROTOS = Path(__file__).resolve().parents[2] / "protos"

# Field numbers clients in other languages were generated against: add, never renumber.
PUBLISHED = {
    "GenerateEvent": {
        "decision": 1,
        "delta": 2,
        "escalation": 3,
        "fallback": 4,
        "usage": 5,
        "done": 6,
        "hedge": 7,
        "tool_call": 8,
    },
    "RoutingHints": {
        "strategy": 1,
        "step_type": 2,
        "model": 3,
        "tier": 4,
        "max_cost_micros": 5,
        "latency_target_ms": 6,
        "required_capabilities": 7,
        "labels": 8,
        "cascade_mode": 9,
    },
    "Hedge": {"from_model": 1, "to_model": 2, "after_ms": 3, "winner": 4},
    "Done": {"stop_reason": 1, "total": 2, "ttft_ms": 3, "signals": 4, "reason": 5},
    "CompleteResponse": {
        "decision": 1,
        "text": 2,
        "stop_reason": 3,
        "usage": 4,
        "total": 5,
        "ttft_ms": 6,
        "escalations": 7,
        "fallbacks": 8,
        "hedges": 9,
        "tool_calls": 10,
    },
    "Message": {"role": 1, "content": 2, "tool_calls": 3, "tool_call_id": 4, "images": 5},
    "Image": {"media_type": 1, "data": 2},
    "GenerateRequest": {
        "messages": 1,
        "system": 2,
        "max_tokens": 3,
        "hints": 4,
        "request_id": 5,
        "tools": 6,
        "tool_choice": 7,
    },
    "Tool": {"name": 1, "description": 2, "input_schema_json": 3},
    "ToolChoice": {"mode": 1, "name": 2},
    "ToolCall": {"id": 1, "name": 2, "arguments_json": 3},
}


@pytest.mark.parametrize("message", sorted(PUBLISHED))
def test_published_field_numbers_stay(message: str) -> None:
    fields = router_pb2.DESCRIPTOR.message_types_by_name[message].fields
    assert {f.name: f.number for f in fields} == PUBLISHED[message]


def test_hedge_is_a_member_of_the_event_oneof_and_done_signals_a_map() -> None:
    event = router_pb2.GenerateEvent.DESCRIPTOR
    assert event.fields_by_name["hedge"].containing_oneof is event.oneofs_by_name["event"]
    signals = router_pb2.Done.DESCRIPTOR.fields_by_name["signals"]
    assert signals.message_type.GetOptions().map_entry
    assert [f.type for f in signals.message_type.fields] == [
        signals.TYPE_STRING,
        signals.TYPE_DOUBLE,
    ]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[descriptor_pb2.FileDescriptorProto]:
    """The fareway.v1 protos compiled with their comments (source info)."""
    out = tmp_path_factory.mktemp("descriptors") / "set.pb"
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "fareway/v1").glob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *sources,
        ],
        cwd=PROTOS,
        check=True,
    )
    return list(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file)


# Tag numbers of FileDescriptorProto, DescriptorProto and friends, as source-info paths use them.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM, _ONEOF = 2, 3, 4, 8
_VALUE, _METHOD = 2, 2

Element = tuple[str, tuple[int, ...]]


def _elements(file: descriptor_pb2.FileDescriptorProto) -> Iterator[Element]:
    """(name, source-info path) of every message, field, oneof, enum, value, service, rpc."""
    for i, message in enumerate(file.message_type):
        yield from _message(message, (_MESSAGE, i))
    for i, enum in enumerate(file.enum_type):
        yield from _enum(enum, (_ENUM, i))
    for i, service in enumerate(file.service):
        yield service.name, (_SERVICE, i)
        for j, method in enumerate(service.method):
            yield f"{service.name}.{method.name}", (_SERVICE, i, _METHOD, j)


def _message(message: descriptor_pb2.DescriptorProto, path: tuple[int, ...]) -> Iterator[Element]:
    if message.options.map_entry:
        return  # protoc's own entry type for a map field: nothing to comment
    yield message.name, path
    for i, field in enumerate(message.field):
        yield f"{message.name}.{field.name}", (*path, _FIELD, i)
    for i, oneof in enumerate(message.oneof_decl):
        if not oneof.name.startswith("_"):  # the synthetic oneof of a proto3 `optional`
            yield f"{message.name}.{oneof.name}", (*path, _ONEOF, i)
    for i, nested in enumerate(message.nested_type):
        yield from _message(nested, (*path, _NESTED, i))
    for i, enum in enumerate(message.enum_type):
        yield from _enum(enum, (*path, _NESTED_ENUM, i))


def _enum(enum: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...]) -> Iterator[Element]:
    yield enum.name, path
    for i, value in enumerate(enum.value):
        yield f"{enum.name}.{value.name}", (*path, _VALUE, i)


def test_every_element_has_a_leading_comment(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    missing = []
    for file in files:
        comments = {
            tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location
        }
        missing += [
            f"{file.name}: {name}" for name, path in _elements(file) if not comments.get(path)
        ]
    assert not missing, f"elements without a comment: {missing}"


def test_every_enum_starts_with_an_unspecified_zero_value(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    enums = [enum for file in files for enum in file.enum_type]
    assert enums
    for enum in enums:
        zero = enum.value[0]
        assert zero.number == 0
        assert zero.name.endswith("_UNSPECIFIED"), enum.name
