"""The simulated provider (F12): deterministic answers with configurable speed.

The same request to the same model always produces the same text, token count and stop reason,
so demos, tests and benchmarks are repeatable without a network or an API key.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

from fareway.core.clock import Clock
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, UsageReport
from fareway.routing.tokens import estimate_prompt_tokens

_SOURCE_TEXT = (
    "the router weighs each request against cost and latency and picks a model that can "
    "answer it well so simple questions stay cheap while hard ones reach a stronger model "
    "budgets hold under load and every decision is traced for later review"
)
_WORDS = tuple(_SOURCE_TEXT.split())


@dataclass(frozen=True)
class SimProfile:
    """How a simulated model behaves: time to first token, speed, and typical answer length."""

    ttft_ms: int = 0
    tokens_per_second: float = 0.0  # 0: no pacing, every token at once
    answer_tokens: int = 60


class SimProvider:
    """Answers from a seeded word list, paced by the injected clock."""

    name = "sim"
    genai_name = "fareway.sim"  # not a real provider, so a name in fareway's own namespace
    simulated = True
    server_address = ""  # answers in-process

    def __init__(self, clock: Clock, profiles: Mapping[str, SimProfile] | None = None) -> None:
        self._clock = clock
        self._profiles = dict(profiles or {})

    async def stream(self, call: ProviderCall) -> AsyncGenerator[ProviderEvent, None]:
        """Yield a deterministic answer: usage first, then one word a token, then Finish."""
        profile = self._profiles.get(call.model.id, SimProfile())
        prompt = (call.system, *(m.content for m in call.messages))
        input_tokens = estimate_prompt_tokens(call.system, (m.content for m in call.messages))
        rng = random.Random(_seed(call.model.id, prompt))
        length = max(1, int(profile.answer_tokens * rng.uniform(0.75, 1.25)))
        tokens = min(length, call.max_tokens)
        stop_reason = "end_turn" if length <= call.max_tokens else "max_tokens"

        yield UsageReport(input_tokens, 0)
        await self._clock.sleep(profile.ttft_ms / 1000)
        for i in range(tokens):
            word = rng.choice(_WORDS)
            yield TextChunk(word if i == 0 else " " + word)
            if profile.tokens_per_second > 0:
                await self._clock.sleep(1 / profile.tokens_per_second)
        yield UsageReport(input_tokens, tokens)
        yield Finish(stop_reason)

    async def aclose(self) -> None:
        """Nothing to release."""


def _seed(model_id: str, prompt: tuple[str, ...]) -> int:
    digest = hashlib.sha256("\x00".join((model_id, *prompt)).encode()).digest()
    return int.from_bytes(digest[:8], "big")
