"""The simulated provider: repeatable answers, real usage counts, pacing on the injected clock,
and seeded confidence, failures and stalls."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from fareway.config.loader import load_config
from fareway.config.schema import SimSettings
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
from fareway.providers.assessment import split_assessment, with_instruction
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, UsageReport
from fareway.providers.sim import (
    FailureKind,
    SimConfidence,
    SimFailure,
    SimProfile,
    SimProvider,
    SimStall,
)
from fareway.routing.catalog import ModelSpec
from tests.providers.upstreams import collect_until_error

HAIKU: ModelSpec = load_config().models[0].spec()


def call(text: str = "What is fareway?", max_tokens: int = 1000) -> ProviderCall:
    return ProviderCall(HAIKU, "", (Message.user(text),), max_tokens)


async def run(provider: SimProvider, request: ProviderCall) -> list[ProviderEvent]:
    return [event async for event in provider.stream(request)]


async def test_the_same_request_gives_the_same_answer() -> None:
    provider = SimProvider(ManualClock())
    first, second = await run(provider, call()), await run(provider, call())
    other = await run(provider, call("Something else entirely"))

    assert first == second
    assert first != other


async def test_usage_counts_the_tokens_streamed() -> None:
    events = await run(SimProvider(ManualClock(), {HAIKU.id: SimProfile(answer_tokens=40)}), call())
    chunks = [e for e in events if isinstance(e, TextChunk)]
    final_usage = [e for e in events if isinstance(e, UsageReport)][-1]

    assert 30 <= len(chunks) <= 50
    assert final_usage.output_tokens == len(chunks)
    assert final_usage.input_tokens > 0
    assert events[-1] == Finish("end_turn")


async def test_max_tokens_cuts_the_answer() -> None:
    events = await run(SimProvider(ManualClock()), call(max_tokens=5))

    assert sum(isinstance(e, TextChunk) for e in events) == 5
    assert events[-1] == Finish("max_tokens")


async def test_pacing_follows_the_profile_on_the_injected_clock() -> None:
    clock = ManualClock()
    profile = SimProfile(ttft_ms=300, tokens_per_second=100, answer_tokens=50)
    provider = SimProvider(clock, {HAIKU.id: profile})
    start = clock.monotonic()
    first_token_at = None
    tokens = 0
    async for event in provider.stream(call()):
        if isinstance(event, TextChunk):
            tokens += 1
            first_token_at = first_token_at or clock.monotonic()

    assert first_token_at is not None
    assert first_token_at - start == pytest.approx(0.3)
    assert clock.monotonic() - start == pytest.approx(0.3 + tokens / 100)


# --- answers stay as they were ------------------------------------------------------------------


async def test_answers_are_the_same_as_before_confidence_and_failures_existed() -> None:
    events = await run(SimProvider(ManualClock()), call())
    text = "".join(e.text for e in events if isinstance(e, TextChunk))

    # Pinned: demos, benchmarks and recorded examples rely on the words not shifting.
    assert text.startswith("while model load so and a stronger each so can latency questions")
    assert len(text.split()) == 51


# --- confidence -----------------------------------------------------------------------------------

PROMPTS = [f"question number {n}: what should we do?" for n in range(200)]


def assessed(
    text: str = "What is fareway?", system: str = "", max_tokens: int = 1000
) -> ProviderCall:
    """A call asking for the self-assessment, as a cascade sends it."""
    return ProviderCall(
        HAIKU,
        with_instruction(system),
        (Message.user(text),),
        max_tokens,
        self_assessment=True,
    )


def sim(**profile: Any) -> SimProvider:
    return SimProvider(ManualClock(), {HAIKU.id: SimProfile(**profile)})


def test_confidence_is_fixed_per_prompt_and_varies_across_prompts() -> None:
    provider = sim(confidence=SimConfidence(mean=0.6, spread=0.3))
    values = [provider.plan(call(prompt)).confidence for prompt in PROMPTS]

    assert values == [provider.plan(call(prompt)).confidence for prompt in PROMPTS]
    assert all(0.3 <= v <= 0.9 for v in values)
    assert len(set(values)) > 30
    assert min(values) < 0.4
    assert max(values) > 0.8


def test_confidence_depends_on_the_model() -> None:
    other = dataclasses.replace(HAIKU, id="another-model")
    provider = SimProvider(ManualClock())
    mine = [provider.plan(call(p)).confidence for p in PROMPTS[:20]]
    theirs = [
        provider.plan(dataclasses.replace(call(p), model=other)).confidence for p in PROMPTS[:20]
    ]

    assert mine != theirs


def test_confidence_is_clipped_to_zero_and_one() -> None:
    sure = sim(confidence=SimConfidence(mean=1.0, spread=0.5))
    lost = sim(confidence=SimConfidence(mean=0.0, spread=0.5))

    assert {sure.plan(call(p)).confidence for p in PROMPTS[:50]} <= {
        n / 100 for n in range(50, 101)
    }
    assert 1.0 in {sure.plan(call(p)).confidence for p in PROMPTS}
    assert 0.0 in {lost.plan(call(p)).confidence for p in PROMPTS}


async def test_asked_for_it_the_answer_ends_with_its_confidence_tail() -> None:
    provider = sim(confidence=SimConfidence(mean=0.6, spread=0.3))
    plain = await run(provider, call())
    asked = await run(provider, assessed())
    plain_text = "".join(e.text for e in plain if isinstance(e, TextChunk))
    asked_chunks = [e for e in asked if isinstance(e, TextChunk)]

    answer, confidence = split_assessment("".join(c.text for c in asked_chunks))
    assert answer == plain_text  # the instruction changes nothing but the tail
    assert confidence == provider.plan(call()).confidence
    assert asked[-2] == UsageReport(asked[0].input_tokens, len(asked_chunks))  # type: ignore[union-attr]
    assert asked[-1] == Finish("end_turn")


async def test_not_asked_there_is_no_tail() -> None:
    events = await run(SimProvider(ManualClock()), call())

    assert split_assessment("".join(e.text for e in events if isinstance(e, TextChunk)))[1] is None


async def test_the_instruction_is_billed_as_input() -> None:
    plain, asked = await run(sim(), call()), await run(sim(), assessed())

    assert asked[0].input_tokens > plain[0].input_tokens  # type: ignore[union-attr]


async def test_an_answer_cut_at_max_tokens_loses_its_tail() -> None:
    events = await run(sim(answer_tokens=20), assessed(max_tokens=10))
    text = "".join(e.text for e in events if isinstance(e, TextChunk))

    assert split_assessment(text) == (text, None)
    assert events[-1] == Finish("max_tokens")


# --- failures -------------------------------------------------------------------------------------

KINDS: list[tuple[FailureKind, type[ProviderError]]] = [
    ("rate_limited", RateLimited),
    ("overloaded", Overloaded),
    ("timeout", ProviderTimeout),
    ("connection_error", ProviderUnreachable),
    ("rejected", ProviderRejected),
]


@pytest.mark.parametrize(("kind", "expected"), KINDS, ids=[k for k, _ in KINDS])
async def test_a_failure_before_the_first_token_sends_nothing(
    kind: FailureKind, expected: type[ProviderError]
) -> None:
    provider = sim(fail=SimFailure(kind))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as caught:
        await collect_until_error(provider, call(), seen)

    assert type(caught.value) is expected
    assert caught.value.kind == kind
    assert caught.value.model == HAIKU.id
    assert seen == []


@pytest.mark.parametrize(("kind", "expected"), KINDS, ids=[k for k, _ in KINDS])
async def test_a_failure_after_tokens_breaks_the_stream_after_exactly_that_many(
    kind: FailureKind, expected: type[ProviderError]
) -> None:
    provider = sim(fail=SimFailure(kind, after_tokens=3))
    seen: list[ProviderEvent] = []

    with pytest.raises(expected):
        await collect_until_error(provider, call(), seen)

    assert sum(isinstance(e, TextChunk) for e in seen) == 3
    assert not any(isinstance(e, Finish) for e in seen)


async def test_a_failure_after_more_tokens_than_the_answer_has_still_breaks_it() -> None:
    provider = sim(answer_tokens=5, fail=SimFailure("overloaded", after_tokens=99))
    seen: list[ProviderEvent] = []

    with pytest.raises(Overloaded):
        await collect_until_error(provider, call(), seen)

    assert sum(isinstance(e, TextChunk) for e in seen) == len(
        sim(answer_tokens=5).plan(call()).pieces
    )
    assert not any(isinstance(e, Finish) for e in seen)


@pytest.mark.parametrize(("kind", "expected"), [("rate_limited", 7.0), ("overloaded", 2.5)])
async def test_retry_after_is_carried_on_the_error(kind: FailureKind, expected: float) -> None:
    with pytest.raises(ProviderError) as caught:
        await run(sim(fail=SimFailure(kind, retry_after_s=expected)), call())

    assert caught.value.retry_after_s == expected


async def test_a_rate_limit_without_retry_after_carries_none() -> None:
    with pytest.raises(RateLimited) as caught:
        await run(sim(fail=SimFailure("rate_limited")), call())

    assert caught.value.retry_after_s is None


async def test_a_timeout_comes_after_the_calls_timeout_on_the_clock() -> None:
    clock = ManualClock()
    provider = SimProvider(clock, {HAIKU.id: SimProfile(fail=SimFailure("timeout"))})
    start = clock.monotonic()

    with pytest.raises(ProviderTimeout):
        await run(provider, dataclasses.replace(call(), timeout_s=4.0))

    assert clock.monotonic() - start == pytest.approx(4.0)


def failing(provider: SimProvider) -> set[str]:
    return {p for p in PROMPTS if provider.plan(call(p)).failure is not None}


def test_a_rate_fails_that_fraction_of_prompts_and_always_the_same_ones() -> None:
    provider = sim(fail=SimFailure("overloaded", rate=0.3))

    assert 0.2 * len(PROMPTS) < len(failing(provider)) < 0.4 * len(PROMPTS)
    assert failing(provider) == failing(sim(fail=SimFailure("overloaded", rate=0.3)))
    assert failing(sim(fail=SimFailure("overloaded", rate=0.0))) == set()
    assert failing(sim(fail=SimFailure("overloaded", rate=1.0))) == set(PROMPTS)


def test_a_higher_rate_only_adds_failing_prompts() -> None:
    low, high = (
        sim(fail=SimFailure("overloaded", rate=0.2)),
        sim(fail=SimFailure("overloaded", rate=0.6)),
    )

    assert failing(low) < failing(high)


def test_asking_for_the_assessment_does_not_change_which_prompts_fail() -> None:
    provider = sim(fail=SimFailure("overloaded", rate=0.5))
    asked = {p for p in PROMPTS if provider.plan(assessed(p)).failure is not None}

    assert asked == failing(provider)


async def test_a_prompt_that_does_not_fail_is_answered_as_usual() -> None:
    provider = sim(fail=SimFailure("overloaded", rate=0.5))
    fine = next(p for p in PROMPTS if p not in failing(provider))

    assert await run(provider, call(fine)) == await run(sim(), call(fine))


# --- stalls ---------------------------------------------------------------------------------------


async def ttft(provider: SimProvider, clock: ManualClock, request: ProviderCall) -> float:
    start = clock.monotonic()
    async for event in provider.stream(request):
        if isinstance(event, TextChunk):
            return clock.monotonic() - start
    raise AssertionError("no text")


async def test_a_stall_delays_the_first_token_of_a_fraction_of_prompts() -> None:
    clock = ManualClock()
    profile = SimProfile(ttft_ms=200, stall=SimStall(seconds=5.0, rate=0.25))
    provider = SimProvider(clock, {HAIKU.id: profile})
    waits = [await ttft(provider, clock, call(p)) for p in PROMPTS[:80]]

    assert {round(w, 6) for w in waits} == {0.2, 5.2}
    assert 10 < sum(w > 1 for w in waits) < 30
    assert [provider.plan(call(p)).wait_s for p in PROMPTS[:80]] == pytest.approx(waits)


async def test_a_stall_past_the_calls_timeout_times_out() -> None:
    clock = ManualClock()
    provider = SimProvider(clock, {HAIKU.id: SimProfile(stall=SimStall(seconds=30.0))})
    start = clock.monotonic()
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderTimeout) as caught:
        await collect_until_error(provider, dataclasses.replace(call(), timeout_s=2.0), seen)

    assert clock.monotonic() - start == pytest.approx(2.0)
    assert caught.value.model == HAIKU.id
    assert not any(isinstance(e, TextChunk) for e in seen)


# --- configuration --------------------------------------------------------------------------------


def test_the_default_fast_model_is_unsure_on_some_prompts_and_nothing_fails() -> None:
    config = load_config()
    profiles = {m.id: m.sim.profile() for m in config.models}
    provider = SimProvider(ManualClock(), profiles)
    haiku = [provider.plan(call(p)).confidence for p in PROMPTS]

    assert sum(c < 0.6 for c in haiku) > len(PROMPTS) / 10
    assert sum(c >= 0.8 for c in haiku) > len(PROMPTS) / 10
    assert all(p.fail is None and p.stall is None for p in profiles.values())


def test_sim_settings_build_the_profile() -> None:
    settings = SimSettings.model_validate(
        {
            "ttft_ms": 100,
            "confidence": {"mean": 0.5, "spread": 0.2},
            "fail": {"kind": "rate_limited", "rate": 0.1, "after_tokens": 2, "retry_after_s": 3},
            "stall": {"seconds": 4, "rate": 0.5},
        }
    )

    assert settings.profile() == SimProfile(
        ttft_ms=100,
        confidence=SimConfidence(0.5, 0.2),
        fail=SimFailure("rate_limited", 0.1, 2, 3.0),
        stall=SimStall(4.0, 0.5),
    )
    assert SimSettings().profile() == SimProfile()


@pytest.mark.parametrize(
    "settings",
    [
        {"fail": {"kind": "exploded"}},
        {"fail": {"kind": "timeout", "retry_after_s": 1}},
        {"fail": {"kind": "overloaded", "rate": 1.5}},
        {"fail": {"kind": "overloaded", "after_tokens": -1}},
        {"stall": {"seconds": 0}},
        {"confidence": {"mean": 1.2}},
        {"confidence": {"mean": 0.5, "sd": 0.1}},
    ],
)
def test_sim_settings_refuse_what_cannot_be_simulated(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SimSettings.model_validate(settings)
