"""A cascade whose answer is a tool call, through the real server: the call stands when it names
a tool of the request and its arguments validate against that tool's schema, and escalates,
naming the tool and the error, when not; no confidence is asked of it. Buffered calls wait for
acceptance; speculative ones already sent are discarded on escalation."""

from __future__ import annotations

import json

from fareway.core.content import ToolCall
from fareway.v1 import router_pb2
from tests.server.harness import (
    CONFIG_TEMPLATE,
    TENANT_KEY,
    Harness,
    HarnessFactory,
    kinds,
    make_config,
    metadata,
)
from tests.server.tool_scripts import ToolScripted, call, install, tool_answer

AUTH = metadata(TENANT_KEY)
SCHEMA = {
    "type": "object",
    "properties": {"expression": {"type": "string"}},
    "required": ["expression"],
    "additionalProperties": False,
}
GOOD = call("calculator", '{"expression": "2+2"}', "call_good")
WRONG_TYPE = call("calculator", '{"expression": 4}', "call_wrong")
CASCADE = "  cascade: {{type: cascade, threshold: 0.8, max_escalations: 2}}\n"


async def serve_cascade(serve: HarnessFactory) -> Harness:
    """The test configuration with a cascade strategy (fast-1, then balanced-1, powerful-1)."""
    text = CONFIG_TEMPLATE.replace("  cost: {{type: cost}}\n", "  cost: {{type: cost}}\n" + CASCADE)
    harness: Harness = await serve(make_config(template=text))
    return harness


def cascade_request(
    mode: str = "buffered", choice: router_pb2.ToolChoice | None = None
) -> router_pb2.GenerateRequest:
    request = router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content="what is 2+2?")],
        max_tokens=256,
        tools=[
            router_pb2.Tool(
                name="calculator", description="Evaluates", input_schema_json=json.dumps(SCHEMA)
            )
        ],
        hints=router_pb2.RoutingHints(strategy="cascade", cascade_mode=mode),
    )
    if choice is not None:
        request.tool_choice.CopyFrom(choice)
    return request


def calls(events: list[router_pb2.GenerateEvent]) -> list[str]:
    return [e.tool_call.id for e in events if e.WhichOneof("event") == "tool_call"]


async def test_a_valid_tool_call_stands_without_a_confidence(serve: HarnessFactory) -> None:
    harness = await serve_cascade(serve)
    provider = install(harness, ToolScripted({"fast-1": [tool_answer(GOOD)]}))

    events = [e async for e in harness.router.Generate(cascade_request(), metadata=AUTH)]

    assert kinds(events) == ["decision", "usage", "tool_call", "done"]
    assert calls(events) == ["call_good"]
    assert events[-1].done.signals["cascade.confidence"] == 1.0
    assert events[-1].done.stop_reason == "tool_use"
    [sent] = provider.calls
    assert sent.self_assessment  # the answer might have been text: it is asked, not required


async def test_an_invalid_call_escalates_naming_the_tool_and_the_error(
    serve: HarnessFactory,
) -> None:
    harness = await serve_cascade(serve)
    install(
        harness,
        ToolScripted({"fast-1": [tool_answer(WRONG_TYPE)], "balanced-1": [tool_answer(GOOD)]}),
    )

    events = [e async for e in harness.router.Generate(cascade_request(), metadata=AUTH)]

    [escalation] = [e.escalation for e in events if e.WhichOneof("event") == "escalation"]
    assert (escalation.from_model, escalation.to_model) == ("fast-1", "balanced-1")
    assert escalation.reason == (
        "the call of tool 'calculator' does not validate at $.expression: 4 is not of type 'string'"
    )
    assert escalation.confidence == 0.0
    assert not escalation.discard_previous  # buffered: the bad call never went out
    assert calls(events) == ["call_good"]


async def test_a_call_of_an_unknown_tool_escalates(serve: HarnessFactory) -> None:
    harness = await serve_cascade(serve)
    unknown = ToolCall("call_x", "search", '{"q": "2+2"}')
    install(
        harness,
        ToolScripted({"fast-1": [tool_answer(unknown)], "balanced-1": [tool_answer(GOOD)]}),
    )

    reply = await harness.router.Complete(cascade_request(), metadata=AUTH)

    assert reply.escalations[0].reason == "the call of tool 'search' names no tool of the request"
    assert [c.id for c in reply.tool_calls] == ["call_good"]


async def test_speculative_calls_are_discarded_on_escalation(serve: HarnessFactory) -> None:
    harness = await serve_cascade(serve)
    scripts = {"fast-1": [tool_answer("Computing.", WRONG_TYPE)], "balanced-1": [tool_answer(GOOD)]}
    install(harness, ToolScripted({m: list(s) * 2 for m, s in scripts.items()}))

    events = [
        e async for e in harness.router.Generate(cascade_request("speculative"), metadata=AUTH)
    ]
    reply = await harness.router.Complete(cascade_request("speculative"), metadata=AUTH)

    assert kinds(events)[:4] == ["decision", "delta", "tool_call", "usage"]
    assert calls(events) == ["call_wrong", "call_good"]
    [escalation] = [e.escalation for e in events if e.WhichOneof("event") == "escalation"]
    assert escalation.discard_previous
    assert [c.id for c in reply.tool_calls] == ["call_good"]
    assert reply.text == ""


async def test_the_last_invalid_call_stands_when_the_ladder_ends(serve: HarnessFactory) -> None:
    harness = await serve_cascade(serve)
    install(
        harness,
        ToolScripted(
            {m: [tool_answer(WRONG_TYPE)] for m in ("fast-1", "balanced-1", "powerful-1")}
        ),
    )

    reply = await harness.router.Complete(cascade_request(), metadata=AUTH)

    assert [(e.from_model, e.to_model) for e in reply.escalations] == [
        ("fast-1", "balanced-1"),
        ("balanced-1", "powerful-1"),
    ]
    assert [c.id for c in reply.tool_calls] == ["call_wrong"]
    assert reply.decision.signals["cascade.confidence"] == 0.0


async def test_a_forced_tool_call_is_not_asked_for_a_confidence(serve: HarnessFactory) -> None:
    harness = await serve_cascade(serve)
    provider = install(harness, ToolScripted({"fast-1": [tool_answer(GOOD)]}))

    reply = await harness.router.Complete(
        cascade_request(choice=router_pb2.ToolChoice(mode=router_pb2.ToolChoice.MODE_ANY)),
        metadata=AUTH,
    )

    assert [c.id for c in reply.tool_calls] == ["call_good"]
    [sent] = provider.calls
    assert not sent.self_assessment
    assert not sent.system  # no assessment instruction either
