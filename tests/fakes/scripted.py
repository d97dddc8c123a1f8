"""A provider that plays scripts, for in-process tests of the engine (cascades, fallbacks,
hedging), in the spirit of httpx's MockTransport.

A handler turns each `ProviderCall` into a script: a list of steps played in order. Events
(`TextChunk`, `UsageReport`, `Finish`) are yielded as they are; `Fail` raises a ProviderError
naming the call's model; `Sleep` waits on the injected clock; `Gate` waits until the test sets
its event; `Stall` waits until the stream is closed or cancelled. Every call is recorded with
what it sent and how it ended, so a test can assert, say, that a hedge's loser was closed:

    provider = ScriptedProvider.per_model(
        {"fast": [[Stall()]], "strong": [answer("Hello", ", world")]}, clock=clock
    )
    ...
    [loser] = provider.calls_to("fast")
    assert loser.outcome in ("closed", "cancelled")

Scripts may break the provider contract on purpose (text after Finish, no usage at all), to test
that the engine copes; `answer` and `broken` build scripts that keep it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fareway.budgets.pricing import Price
from fareway.core.clock import Clock, ManualClock
from fareway.core.errors import Overloaded, ProviderError
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, UsageReport
from fareway.routing.catalog import ModelSpec


@dataclass(frozen=True)
class Fail:
    """Raise `error` (a ProviderError subclass) with the call's model and `retry_after_s`."""

    error: type[ProviderError] = Overloaded
    message: str = "scripted failure"
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Sleep:
    """Wait this long on the provider's clock (a ManualClock moves at once)."""

    seconds: float


@dataclass(frozen=True)
class Gate:
    """Wait until the test sets `event`: orders concurrent streams without any clock."""

    event: asyncio.Event = field(compare=False)


@dataclass(frozen=True)
class Stall:
    """Wait until the stream is closed or its task cancelled; nothing after it is played."""


Step = TextChunk | UsageReport | Finish | Fail | Sleep | Gate | Stall
Script = Sequence[Step]
Handler = Callable[[ProviderCall], Script]

Outcome = Literal["running", "finished", "failed", "closed", "cancelled"]


@dataclass
class RecordedCall:
    """One call the provider received. `outcome` says how its stream ended: played to the end
    (`finished`), raised a ProviderError (`failed`), closed by its consumer at a yield
    (`closed`, `aclose()`), cancelled while waiting (`cancelled`), or not yet (`running`)."""

    call: ProviderCall
    sent: list[ProviderEvent] = field(default_factory=list)
    outcome: Outcome = "running"
    ended: asyncio.Event = field(default_factory=asyncio.Event, compare=False)
    stalled: asyncio.Event = field(default_factory=asyncio.Event, compare=False)
    """Set when the script reaches a `Stall`: everything before it was sent."""

    @property
    def stopped_early(self) -> bool:
        """Whether the consumer closed or cancelled the stream before the script ended."""
        return self.outcome in ("closed", "cancelled")

    @property
    def text(self) -> str:
        """The text sent so far."""
        return "".join(e.text for e in self.sent if isinstance(e, TextChunk))


def model(model_id: str, *, tier: str = "fast", provider: str = "scripted") -> ModelSpec:
    """A catalog entry for a scripted model ($1 in, $5 out per million tokens)."""
    return ModelSpec(
        id=model_id,
        provider=provider,
        provider_model_id=model_id,
        tier=tier,
        price=Price(1_000_000, 5_000_000),
        context_window=32_768,
        max_output_tokens=4_096,
        capabilities=frozenset(),
        quality=0.5,
    )


def answer(
    *pieces: str,
    input_tokens: int = 10,
    output_tokens: int | None = None,
    stop_reason: str = "end_turn",
    response_id: str = "",
    response_model: str = "",
) -> list[Step]:
    """A normal answer as real providers stream it: input usage, the text, the final usage
    (by default one output token a piece), then Finish."""
    output = len(pieces) if output_tokens is None else output_tokens
    return [
        UsageReport(input_tokens, 0),
        *(TextChunk(piece) for piece in pieces),
        UsageReport(input_tokens, output),
        Finish(stop_reason, response_id, response_model),
    ]


def broken(
    *pieces: str,
    error: type[ProviderError] = Overloaded,
    retry_after_s: float | None = None,
    input_tokens: int = 10,
) -> list[Step]:
    """An answer that fails: before its first token when no pieces are given (nothing sent, as
    an HTTP error is), else after sending them (a stream broken mid-answer)."""
    fail = Fail(error, retry_after_s=retry_after_s)
    if not pieces:
        return [fail]
    return [UsageReport(input_tokens, 0), *(TextChunk(piece) for piece in pieces), fail]


class ScriptedProvider:
    """Plays a script for each call and records every call; see the module docstring."""

    genai_name = "fareway.scripted"
    simulated = True
    server_address = ""

    def __init__(
        self, handler: Handler, *, clock: Clock | None = None, name: str = "scripted"
    ) -> None:
        self.name = name
        self._handler = handler
        self._clock = clock or ManualClock()
        self.calls: list[RecordedCall] = []
        self.closed = False  # aclose() was called (server shutdown)

    @classmethod
    def in_order(cls, *scripts: Script, clock: Clock | None = None) -> ScriptedProvider:
        """Call n plays `scripts[n]`, whatever its model; one call more fails the test."""
        queue = list(scripts)

        def next_script(call: ProviderCall) -> Script:
            if not queue:
                raise AssertionError(f"unexpected call #{len(scripts) + 1} ({call.model.id})")
            return queue.pop(0)

        return cls(next_script, clock=clock)

    @classmethod
    def per_model(
        cls, scripts: Mapping[str, Sequence[Script]], *, clock: Clock | None = None
    ) -> ScriptedProvider:
        """Each model's calls play its scripts in order (so concurrent calls to different
        models need no agreed order); a call beyond them, or to another model, fails the test."""
        queues = defaultdict(list, {model: list(plays) for model, plays in scripts.items()})

        def next_script(call: ProviderCall) -> Script:
            queue = queues[call.model.id]
            if not queue:
                raise AssertionError(f"unexpected call to model {call.model.id!r}")
            return queue.pop(0)

        return cls(next_script, clock=clock)

    def calls_to(self, model_id: str) -> list[RecordedCall]:
        """The calls this model received, in order."""
        return [record for record in self.calls if record.call.model.id == model_id]

    def stream(self, call: ProviderCall) -> AsyncGenerator[ProviderEvent, None]:
        """Record the call and choose its script now, then play it as it is iterated."""
        record = RecordedCall(call)
        self.calls.append(record)
        return self._play(record, tuple(self._handler(call)))

    async def aclose(self) -> None:
        """Remember that the provider was shut down."""
        self.closed = True

    async def _play(
        self, record: RecordedCall, script: Script
    ) -> AsyncGenerator[ProviderEvent, None]:
        try:
            for step in script:
                match step:
                    case TextChunk() | UsageReport() | Finish():
                        record.sent.append(step)
                        yield step
                    case Fail(error=error, message=message, retry_after_s=retry_after_s):
                        model = record.call.model.id
                        raise error(message, model=model, retry_after_s=retry_after_s)
                    case Sleep(seconds=seconds):
                        await self._clock.sleep(seconds)
                    case Gate(event=event):
                        await event.wait()
                    case Stall():
                        record.stalled.set()
                        await asyncio.get_running_loop().create_future()
            record.outcome = "finished"
        except ProviderError:
            record.outcome = "failed"
            raise
        except GeneratorExit:
            record.outcome = "closed"
            raise
        except asyncio.CancelledError:
            record.outcome = "cancelled"
            raise
        finally:
            record.ended.set()
