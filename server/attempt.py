"""One model attempt: streams the provider's text and keeps what the attempt used and when."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from fareway.core.clock import Clock
from fareway.core.errors import ProviderError, ProviderTimeout
from fareway.providers.base import Finish, Provider, ProviderCall, TextChunk, UsageReport
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import Decision
from fareway.routing.request import ChatMessage
from fareway.routing.tokens import estimate_tokens


@dataclass(frozen=True)
class AttemptUsage:
    """What one model attempt used and cost (or, with model "", all attempts together)."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int


class Attempt:
    """One model's try. `stream` yields its text; afterwards (however it ended) `usage` says
    what to bill and the timings say how fast it was."""

    def __init__(self, model: ModelSpec, decision: Decision, clock: Clock) -> None:
        self.model = model
        self._decision = decision
        self._clock = clock
        self.started_at = clock.monotonic()
        self.first_token_at: float | None = None
        self.stop_reason = ""
        self.response_id = ""  # the provider's id for the answer, once it finished
        self.response_model = ""  # the model the provider says answered, once it finished
        self.charged = False  # set once this attempt's usage is on the bill
        self.error: ProviderError | None = None  # a failure before the first token
        self.probe = False  # the half-open circuit breaker's probe of this model
        # The call's own deadline ran out, not the provider: says nothing of the model's health.
        self.out_of_time = False
        self._reported: UsageReport | None = None
        self._streamed: list[str] = []

    @property
    def max_tokens(self) -> int:
        """The request's max_tokens, capped by this model."""
        return self._decision.max_tokens_for(self.model)

    @property
    def messages(self) -> tuple[ChatMessage, ...]:
        """The conversation sent to the model."""
        return self._decision.request.messages

    @property
    def text(self) -> str:
        """Everything streamed so far."""
        return "".join(self._streamed)

    async def stream(
        self,
        provider: Provider,
        timeout_s: float | None,
        first_token_timeout_s: float | None = None,
    ) -> AsyncGenerator[str, None]:
        """The provider's text pieces as they arrive; ProviderError on failure, ProviderTimeout
        when no text came within `first_token_timeout_s` (None: no such limit).

        The first-token limit runs on the event loop's clock, like the SDKs' own timeouts: the
        injected clock's `sleep` returns at once under test, so it cannot time a stall.
        """
        started = asyncio.get_running_loop().time()
        try:
            async with (
                asyncio.timeout(first_token_timeout_s) as first_token,
                aclosing(self._pieces(provider, timeout_s, first_token)) as pieces,
            ):
                async for text in pieces:
                    yield text
        except ProviderTimeout:
            # The SDK was given the call's remaining time: a timeout that late is the caller's.
            elapsed = asyncio.get_running_loop().time() - started
            self.out_of_time = timeout_s is not None and elapsed >= timeout_s
            raise
        except TimeoutError as error:
            if not first_token.expired():
                raise  # not ours: a timeout the provider raised as it is
            raise ProviderTimeout(
                f"no first token within {first_token_timeout_s:g} s", model=self.model.id
            ) from error

    async def _pieces(
        self, provider: Provider, timeout_s: float | None, first_token: asyncio.Timeout
    ) -> AsyncGenerator[str, None]:
        request = self._decision.request
        call = ProviderCall(
            model=self.model,
            system=request.system,
            messages=request.messages,
            max_tokens=self.max_tokens,
            timeout_s=timeout_s,
        )
        async with aclosing(provider.stream(call)) as events:
            async for event in events:
                if isinstance(event, TextChunk):
                    if self.first_token_at is None:
                        self.first_token_at = self._clock.monotonic()
                        # Off before the first yield: from here the caller's code runs between
                        # pieces, and a late expiry would cancel it rather than the provider.
                        first_token.reschedule(None)
                    self._streamed.append(event.text)
                    yield event.text
                elif isinstance(event, UsageReport):
                    self._reported = event
                elif isinstance(event, Finish):
                    self.stop_reason = event.stop_reason
                    self.response_id = event.response_id
                    self.response_model = event.response_model

    def usage(self) -> AttemptUsage:
        """The provider's figures; where a stream was cut before its final count, or a server
        never reports usage (some OpenAI-compatible ones ignore include_usage), at least a
        conservative estimate from the prompt and the text that was streamed."""
        text = self.text
        reported = self._reported
        input_tokens = reported.input_tokens if reported else 0
        output_tokens = reported.output_tokens if reported else 0
        if text and (reported is None or not self.stop_reason):
            input_tokens = input_tokens or self._decision.prompt_tokens
            output_tokens = max(output_tokens, estimate_tokens(text))
        cost = self.model.price.cost_micros(input_tokens, output_tokens)
        return AttemptUsage(self.model.id, input_tokens, output_tokens, cost)
