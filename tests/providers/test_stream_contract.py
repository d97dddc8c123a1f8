"""The provider contract for in-process providers: `sim`, and the scripted provider that engine
tests use in place of a real one.

`test_provider_contract.py` proves the contract for the SDK-backed providers over real HTTP,
scripting loopback servers; these two have no HTTP to script, so each is told here, in its own
vocabulary (a sim profile, a script), to answer or to fail, and the event shapes are checked with
the same assertions: text then final usage then one Finish, and each failure kind raised with the
model and Retry-After, before any event or after exactly the chunks that were sent. A fallback,
cascade or hedge tested on the scripted provider then sees what a real provider would give it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from fareway.core.clock import ManualClock
from fareway.core.content import Message
from fareway.core.errors import (
    Overloaded,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)
from fareway.providers.base import (
    Finish,
    Provider,
    ProviderCall,
    ProviderEvent,
    TextChunk,
    UsageReport,
)
from fareway.providers.sim import FailureKind, SimFailure, SimProfile, SimProvider
from fareway.routing.catalog import ModelSpec
from tests.fakes.scripted import ScriptedProvider, answer, broken, model
from tests.providers.upstreams import collect, collect_until_error

MODEL: ModelSpec = model("in-process-model")

# (error, after_tokens, retry_after_s) -> a provider whose answer to `CALL` fails that way
Failing = Callable[[type[ProviderError], int, float | None], Provider]


@dataclass(frozen=True)
class InProcess:
    """One in-process provider, and how to make it answer or fail."""

    name: str
    answering: Callable[[], Provider]
    failing: Failing


CALL = ProviderCall(MODEL, "", (Message.user("What is fareway?"),), 256)


def _sim(profile: SimProfile) -> Provider:
    return SimProvider(ManualClock(), {MODEL.id: profile})


def _sim_failing(error: type[ProviderError], after: int, retry_after_s: float | None) -> Provider:
    kind: FailureKind = error.kind  # type: ignore[assignment]  # a leaf's kind is a FailureKind
    return _sim(SimProfile(fail=SimFailure(kind, after_tokens=after, retry_after_s=retry_after_s)))


def _scripted_failing(
    error: type[ProviderError], after: int, retry_after_s: float | None
) -> Provider:
    pieces = [f"word{n} " for n in range(after)]
    return ScriptedProvider.in_order(broken(*pieces, error=error, retry_after_s=retry_after_s))


SUBJECTS = (
    InProcess("sim", lambda: _sim(SimProfile(answer_tokens=20)), _sim_failing),
    InProcess(
        "scripted",
        lambda: ScriptedProvider.in_order(answer("The ", "quick ", "fox", input_tokens=12)),
        _scripted_failing,
    ),
)


@pytest.fixture(params=SUBJECTS, ids=lambda subject: subject.name)
def subject(request: pytest.FixtureRequest) -> InProcess:
    assert isinstance(request.param, InProcess)
    return request.param


async def test_an_answer_is_text_then_final_usage_then_one_finish(subject: InProcess) -> None:
    events = await collect(subject.answering(), CALL)

    chunks = [i for i, e in enumerate(events) if isinstance(e, TextChunk)]
    usage = [e for e in events if isinstance(e, UsageReport)]
    assert chunks
    assert usage[-1].input_tokens > 0
    assert usage[-1].output_tokens >= len(chunks)
    assert events.index(usage[-1]) > chunks[-1]
    outputs = [u.output_tokens for u in usage]
    assert outputs == sorted(outputs), "usage is cumulative"
    assert [e for e in events if isinstance(e, Finish)] == [events[-1]]


LEAVES = (RateLimited, Overloaded, ProviderTimeout, ProviderUnreachable, ProviderRejected)
RETRY_AFTER = {RateLimited: 7.0, Overloaded: 2.5}


@pytest.mark.parametrize("error", LEAVES, ids=[e.kind for e in LEAVES])
async def test_a_failure_before_the_first_token_raises_before_any_event(
    subject: InProcess, error: type[ProviderError]
) -> None:
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as caught:
        await collect_until_error(subject.failing(error, 0, RETRY_AFTER.get(error)), CALL, seen)

    assert type(caught.value) is error
    assert caught.value.model == MODEL.id
    assert caught.value.retry_after_s == RETRY_AFTER.get(error)
    assert seen == []


@pytest.mark.parametrize("error", LEAVES, ids=[e.kind for e in LEAVES])
async def test_a_failure_mid_stream_raises_after_the_chunks_sent(
    subject: InProcess, error: type[ProviderError]
) -> None:
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as caught:
        await collect_until_error(subject.failing(error, 2, None), CALL, seen)

    assert type(caught.value) is error
    assert caught.value.model == MODEL.id
    assert sum(isinstance(e, TextChunk) for e in seen) == 2
    assert not any(isinstance(e, Finish) for e in seen)


async def test_aclose_mid_stream_ends_it(subject: InProcess) -> None:
    stream = subject.answering().stream(CALL)

    while not isinstance(await anext(stream), TextChunk):
        pass
    await stream.aclose()

    with pytest.raises(StopAsyncIteration):
        await anext(stream)
