"""Escalations, hedges and Done signals from a real server through both clients and `chat`.

The engine emits none of them yet, so the server's generation is swapped for a script
(`ScriptedGeneration` of tests/server/test_encoding.py) that plays them after the real decision.
"""

from __future__ import annotations

import pytest

from fareway.cli.main import main
from fareway.client import (
    AsyncClient,
    CascadeMode,
    Client,
    Decision,
    Done,
    Escalation,
    Hedge,
    InvalidArgument,
    TextDelta,
    Usage,
    convert,
)
from fareway.routing.decision import AttemptUsage
from fareway.routing.decision import Decision as Decision_
from fareway.routing.request import RouteRequest, TenantContext
from fareway.routing.router import TenantPolicy
from fareway.server.engine.events import (
    Billed,
    Delta,
    Escalated,
    Finished,
    GenerationEvent,
    Hedged,
)
from fareway.server.router_service import encode_event
from tests.client.conftest import ServerThread
from tests.server.harness import TENANT_KEY, Harness
from tests.server.test_encoding import ScriptedGeneration

SCRIPT: list[GenerationEvent] = [
    Delta("Probably spam."),
    Escalated("fast-1", "big-1", "low confidence", 0.25, discard_previous=True),
    Hedged("big-1", "big-2", 800, "big-2"),
    Delta("Not spam."),
    Billed(AttemptUsage("big-2", 10, 3, 30)),
    Finished("end_turn", AttemptUsage("", 10, 3, 30), 45, {"cascade.confidence": 0.9375}),
]


def test_what_the_server_encodes_the_client_decodes_field_for_field() -> None:
    hedge, done = (convert.event(encode_event(e, "")) for e in (SCRIPT[2], SCRIPT[5]))

    assert hedge == Hedge("big-1", "big-2", 800, "big-2")
    assert done == Done("end_turn", Usage("", 10, 3, 30), 45, {"cascade.confidence": 0.9375})
    assert convert.event(encode_event(SCRIPT[1], "")) == Escalation(
        "fast-1", "big-1", "low confidence", 0.25, True
    )


async def test_async_generate_yields_hedges_and_done_signals(harness: Harness) -> None:
    harness.running.runtime.generation = ScriptedGeneration(SCRIPT)  # type: ignore[assignment]

    async with AsyncClient(f"127.0.0.1:{harness.running.port}", TENANT_KEY) as client:
        events = [event async for event in client.generate("classify this: spam or not?")]

    assert [type(e) for e in events] == [
        Decision,
        TextDelta,
        Escalation,
        Hedge,
        TextDelta,
        Usage,
        Done,
    ]
    assert events[3] == Hedge("big-1", "big-2", 800, "big-2")
    done = events[-1]
    assert isinstance(done, Done)
    assert done.signals == {"cascade.confidence": 0.9375}


async def test_async_complete_drops_discarded_text_keeps_hedges_and_merges_signals(
    harness: Harness,
) -> None:
    harness.running.runtime.generation = ScriptedGeneration(SCRIPT)  # type: ignore[assignment]

    async with AsyncClient(f"127.0.0.1:{harness.running.port}", TENANT_KEY) as client:
        completion = await client.complete("classify this: spam or not?")

    assert completion.text == "Not spam."
    assert completion.hedges == (Hedge("big-1", "big-2", 800, "big-2"),)
    assert [e.discard_previous for e in completion.escalations] == [True]
    assert completion.decision.signals["cascade.confidence"] == 0.9375


def test_sync_complete_has_the_hedges_too(server: ServerThread) -> None:
    server.running.runtime.generation = ScriptedGeneration(SCRIPT)  # type: ignore[assignment]

    with Client(server.target, TENANT_KEY) as client:
        completion = client.complete("classify this: spam or not?")

    assert completion.hedges == (Hedge("big-1", "big-2", 800, "big-2"),)
    assert completion.text == "Not spam."


def test_chat_prints_hedge_and_escalation_lines_and_the_confidence(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    server.running.runtime.generation = ScriptedGeneration(SCRIPT)  # type: ignore[assignment]

    status = main(["chat", "hi", "--target", server.target, "--api-key", TENANT_KEY])

    out, err = capsys.readouterr()
    assert status == 0, err
    assert out == "Probably spam.Not spam.\n", "stdout carries the text as it came"
    assert "\n[hedge big-1 → big-2 after 800 ms: big-2 answers]\n" in err
    assert (
        "\n[↑ escalated fast-1 → big-1: low confidence (discarding the text above: the answer "
        "that follows replaces it)]\n"
    ) in err
    assert err.endswith("first token 45 ms · confidence 0.94]\n")


BUFFERED: list[GenerationEvent] = [
    Escalated("fast-1", "big-1", "confidence 0.36 is below the threshold 0.8", 0.36, False),
    Delta("Not spam."),
    Billed(AttemptUsage("big-1", 10, 3, 30)),
    Finished("end_turn", AttemptUsage("", 10, 3, 30), 45, {}),
]


def test_chat_prints_a_buffered_escalation_without_a_discard_and_no_confidence_when_none_came(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    server.running.runtime.generation = ScriptedGeneration(BUFFERED)  # type: ignore[assignment]

    argv = ["chat", "hi", "--target", server.target, "--api-key", TENANT_KEY]

    status = main([*argv, "--cascade-mode", "buffered"])

    out, err = capsys.readouterr()
    assert status == 0, err
    assert out == "Not spam.\n"
    assert "\n[↑ escalated fast-1 → big-1: confidence 0.36 is below the threshold 0.8]\n" in err
    assert "discard" not in err
    assert err.endswith("first token 45 ms]\n")


async def test_the_cascade_mode_reaches_the_router(harness: Harness) -> None:
    seen: list[str] = []
    router = harness.running.runtime.router
    decide = router.decide

    async def spy(request: RouteRequest, policy: TenantPolicy, tenant: TenantContext) -> Decision_:
        seen.append(request.hints.cascade_mode)
        return await decide(request, policy, tenant)

    router.decide = spy  # type: ignore[method-assign]
    async with AsyncClient(f"127.0.0.1:{harness.running.port}", TENANT_KEY) as client:
        await client.route("hi", cascade_mode=CascadeMode.SPECULATIVE)
        with pytest.raises(InvalidArgument) as caught:
            await client.route("hi", cascade_mode="eager")

    assert seen == ["speculative"]
    assert "hints.cascade_mode: unknown cascade mode 'eager'; known: buffered, speculative" in str(
        caught.value
    )
