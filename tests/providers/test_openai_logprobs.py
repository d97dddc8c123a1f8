"""Token log-probabilities from an OpenAI-compatible server, through the real openai SDK against
the loopback fake: asked for only when the call wants them, passed through per text chunk, and
never a failure when the server does not send them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from unittest.mock import ANY

import httpx2
import pytest

from fareway.providers.base import Finish, Provider, ProviderCall, TextChunk, UsageReport
from tests.fakes.openai_server import Answer, FakeOpenAI, wants_logprobs
from tests.providers.upstreams import OPENAI, Upstream, collect


@pytest.fixture
def upstream() -> Upstream:
    return OPENAI


def call(*, logprobs: bool) -> ProviderCall:
    return dataclasses.replace(OPENAI.call(), logprobs=logprobs)


def texts(events: Sequence[object]) -> list[TextChunk]:
    return [e for e in events if isinstance(e, TextChunk)]


async def test_asked_for_they_are_requested_and_passed_through_per_chunk(
    fake: FakeOpenAI, provider: Provider
) -> None:
    fake.script(
        Answer(chunks=("Hel", "lo there"), logprobs=[[-0.25], [-0.5, -1.75]], output_tokens=3)
    )

    events = await collect(provider, call(logprobs=True))

    body = fake.requests[0].body
    assert body["logprobs"] is True
    assert "top_logprobs" not in body
    assert events == [
        TextChunk("Hel", (-0.25,)),
        TextChunk("lo there", (-0.5, -1.75)),
        UsageReport(12, 3),
        Finish("end_turn", ANY, ANY),
    ]


async def test_not_asked_for_the_request_and_the_chunks_are_as_without_them(
    fake: FakeOpenAI, provider: Provider
) -> None:
    # The fake would send log-probabilities to a request that asked for them.
    fake.script(Answer(chunks=("Hel", "lo"), logprobs=[[-0.25], [-0.5]]))

    events = await collect(provider, call(logprobs=False))

    body = fake.requests[0].body
    assert "logprobs" not in body
    assert not wants_logprobs(body)
    assert texts(events) == [TextChunk("Hel"), TextChunk("lo")]
    assert all(chunk.logprobs == () for chunk in texts(events))


@pytest.mark.parametrize(
    "sent",
    [None, [[], []]],
    ids=["logprobs-null", "empty-content"],
)
async def test_a_server_that_sends_none_gives_chunks_without_them_and_no_failure(
    fake: FakeOpenAI, provider: Provider, sent: list[list[float]] | None
) -> None:
    """Ollama and some vLLM builds ignore the flag (`logprobs: null`); an empty `content` list
    says the same."""
    fake.script(Answer(chunks=("Hel", "lo"), logprobs=sent))

    events = await collect(provider, call(logprobs=True))

    assert wants_logprobs(fake.requests[0].body)
    assert texts(events) == [TextChunk("Hel", ()), TextChunk("lo", ())]
    assert events[-1] == Finish("end_turn", ANY, ANY)


async def test_the_fake_sends_openais_streaming_wire_format(fake: FakeOpenAI) -> None:
    """The shape the provider reads is the one OpenAI streams, read here without the SDK."""
    fake.script(Answer(chunks=("Hi!",), logprobs=[[-0.5, -0.125]]))
    body = {"model": "m", "messages": [], "stream": True, "logprobs": True}
    async with httpx2.AsyncClient() as client:
        response = await client.post(f"{fake.base_url}/chat/completions", json=body)

    chunks = [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: {")
    ]
    with_text = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert [c["choices"][0]["logprobs"] for c in with_text] == [
        {
            "content": [
                {"token": "H", "logprob": -0.5, "bytes": [72], "top_logprobs": []},
                {"token": "i!", "logprob": -0.125, "bytes": [105, 33], "top_logprobs": []},
            ],
            "refusal": None,
        }
    ]
