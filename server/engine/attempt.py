"""One model attempt, run as its own task: it drives the provider's stream, sends the answer
(text and tool calls, in the order the model produced them) to the engine's channel, and ends
in a frozen `AttemptResult` that says what happened.

Guarantees:
- The result is the only report: nobody learns of a failure from a flag set on a shared object.
  A failure before the first token, one after it, the first-token timeout, a provider timeout
  once the call's own deadline had passed (`out_of_time`) and the owner's cancellation
  (`cancelled`) are all results, never exceptions; only a bug escapes as one.
- The task alone drives the provider's generator, so stopping an attempt means cancelling its
  task: the generator is closed in the task that iterates it, which closes the upstream call.
  A cancelled attempt returns its result (what it streamed, to be billed) instead of
  re-raising: only its owner cancels it, and the owner reads that result.
- While it streams, `Meter` holds what it has used so far, for the bill's checkpoints.
- An attempt racing another (a hedge) asks its `claim` at its first token and stops, as if
  cancelled, when the other answered first; its first piece is still metered (it was used).
- A tool call is output like text: the first one may be the first token (for the time to first
  token, the first-token limit, a hedge's claim and the fallback policy, an attempt that
  called a tool has answered), it goes out as `ToolCalled` in order with the text, it is
  metered (its arguments count as output where the provider reports no usage) and the result
  carries it.

The first-token limit runs on the event loop's clock, like the SDKs' own timeouts: the injected
clock's `sleep` returns at once under test, so it cannot time a stall. The other timings are on
the injected clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from fareway.core.clock import Clock
from fareway.core.content import ToolCall
from fareway.core.errors import ProviderError, ProviderTimeout
from fareway.providers.base import Finish, Provider, ProviderCall, TextChunk, ToolUse, UsageReport
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import AttemptUsage
from fareway.routing.tokens import estimate_tokens
from fareway.server.engine.events import Delta, ToolCalled

Output = Delta | ToolCalled
"""One piece of an answer: text, or a complete tool call."""

Send = Callable[[Output], Awaitable[None]]
"""Puts one piece of the answer on the engine's channel (waiting while the channel is full)."""

Claim = Callable[[], Awaitable[bool]]
"""Asked once, when an attempt's first token arrives, whether it may answer: False when
another attempt answered first (a hedge's race), and the attempt then stops."""


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt ended. `error` is None for a complete answer and for a cancelled one;
    `first_token_at` (injected clock, monotonic) is None when no output (text or tool call)
    came; `tool_calls` are the tools the answer called, in order."""

    model: ModelSpec
    usage: AttemptUsage
    started_at: float
    ended_at: float
    first_token_at: float | None = None
    stop_reason: str = ""
    response_id: str = ""
    response_model: str = ""
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    error: ProviderError | None = None
    out_of_time: bool = False
    """The provider timed out once the call's own deadline had passed: the caller's time ran
    out, which says nothing of the model's health."""
    cancelled: bool = False
    """Its owner stopped it (the caller left, or the request ended)."""
    probe: bool = False
    """It was the half-open circuit breaker's probe of the model."""
    mean_logprob: float | None = None
    """The mean natural-log probability of the answer's tokens, when the provider reported
    them (a cascade's log-probability confidence)."""

    @property
    def answered(self) -> bool:
        """Its first token arrived: a failure now is mid-answer, too late to fall back."""
        return self.first_token_at is not None

    @property
    def succeeded(self) -> bool:
        """A complete answer."""
        return self.error is None and not self.cancelled


class Meter:
    """What a running attempt has used so far: its text, its tool calls and the provider's last
    usage figures. Written only by the attempt's task; read by the bill for checkpoints."""

    def __init__(self, model: ModelSpec, prompt_tokens: int) -> None:
        self.model = model
        self._prompt_tokens = prompt_tokens
        self.pieces: list[str] = []
        self.calls: list[ToolCall] = []
        self.reported: UsageReport | None = None
        self.stop_reason = ""
        self.logprob_sum = 0.0
        self.logprob_count = 0

    def mean_logprob(self) -> float | None:
        """The mean log-probability of the tokens so far; None when none were reported."""
        return self.logprob_sum / self.logprob_count if self.logprob_count else None

    def usage(self) -> AttemptUsage:
        """The provider's figures; where a stream was cut before its final count, or a server
        never reports usage (some OpenAI-compatible ones ignore include_usage), at least a
        conservative estimate from the prompt and what was streamed: the text, and each tool
        call's name and arguments (the model generated those too)."""
        text = "".join(self.pieces)
        if self.calls:
            text = "\n".join([text, *(f"{c.name}({c.arguments_json})" for c in self.calls)])
        reported = self.reported
        input_tokens = reported.input_tokens if reported else 0
        output_tokens = reported.output_tokens if reported else 0
        if text and (reported is None or not self.stop_reason):
            input_tokens = input_tokens or self._prompt_tokens
            output_tokens = max(output_tokens, estimate_tokens(text))
        cost = self.model.price.cost_micros(input_tokens, output_tokens)
        return AttemptUsage(self.model.id, input_tokens, output_tokens, cost)


@dataclass(frozen=True)
class AttemptJob:
    """Everything one attempt needs besides the provider and the channel."""

    call: ProviderCall
    prompt_tokens: int
    first_token_timeout_s: float | None
    probe: bool = False
    claim: Claim | None = None
    """Asked at the first token when the attempt races another (None: it answers alone)."""


def outcome(task: asyncio.Task[AttemptResult], meter: Meter, clock: Clock) -> AttemptResult:
    """An ended attempt task's result; one cancelled before it ever ran used nothing and says
    so. Raises what the task raised (a bug: attempts end in results)."""
    if task.cancelled():
        now = clock.monotonic()
        return AttemptResult(meter.model, meter.usage(), now, now, cancelled=True)
    return task.result()


def refused(model: ModelSpec, error: ProviderError, clock: Clock) -> AttemptResult:
    """The result of an attempt that never started (its circuit is open)."""
    now = clock.monotonic()
    return AttemptResult(model, AttemptUsage(model.id, 0, 0, 0), now, now, error=error)


async def run_attempt(
    job: AttemptJob,
    provider: Provider,
    clock: Clock,
    send: Send,
    meter: Meter,
    on_piece: Callable[[], None],
) -> AttemptResult:
    """Stream one attempt to `send` and return its result; `on_piece` runs after every piece
    (the bill's checkpoint tick). See the module docstring for what ends how."""
    model = job.call.model
    started_at = clock.monotonic()
    loop_started = asyncio.get_running_loop().time()
    first_token_at: float | None = None
    response = ("", "")
    error: ProviderError | None = None
    out_of_time = cancelled = False
    try:
        async with (
            asyncio.timeout(job.first_token_timeout_s) as first_token,
            aclosing(provider.stream(job.call)) as events,
        ):
            async for event in events:
                piece: Output
                if isinstance(event, TextChunk):
                    meter.pieces.append(event.text)
                    if event.logprobs:
                        meter.logprob_sum += sum(event.logprobs)
                        meter.logprob_count += len(event.logprobs)
                    piece = Delta(event.text)
                elif isinstance(event, ToolUse):
                    meter.calls.append(event.call)
                    piece = ToolCalled(event.call)
                else:
                    if isinstance(event, UsageReport):
                        meter.reported = event
                    elif isinstance(event, Finish):
                        meter.stop_reason = event.stop_reason
                        response = (event.response_id, event.response_model)
                    continue
                if first_token_at is None:
                    first_token_at = clock.monotonic()
                    # Off before the output goes out: a late expiry would otherwise cut a
                    # stream that already answered.
                    first_token.reschedule(None)
                    if job.claim is not None and not await job.claim():
                        cancelled = True  # another attempt answered first: stop here
                        break
                await send(piece)
                on_piece()
    except ProviderTimeout as timeout:
        error = timeout
        # The SDK was given the call's remaining time: a timeout that late is the caller's.
        elapsed = asyncio.get_running_loop().time() - loop_started
        out_of_time = job.call.timeout_s is not None and elapsed >= job.call.timeout_s
    except TimeoutError:
        if not first_token.expired():
            raise  # not ours: a timeout the provider raised as it is
        error = ProviderTimeout(f"no first token within {job.first_token_timeout_s:g} s")
    except ProviderError as failure:
        error = failure
    except asyncio.CancelledError:
        cancelled = True  # the owner stops it and reads this result: see the module docstring
    if error is not None:
        error.model = model.id
    return AttemptResult(
        model=model,
        usage=meter.usage(),
        started_at=started_at,
        ended_at=clock.monotonic(),
        first_token_at=first_token_at,
        stop_reason=meter.stop_reason,
        response_id=response[0],
        response_model=response[1],
        text="".join(meter.pieces),
        tool_calls=tuple(meter.calls),
        error=error,
        out_of_time=out_of_time,
        cancelled=cancelled,
        probe=job.probe,
        mean_logprob=meter.mean_logprob(),
    )
