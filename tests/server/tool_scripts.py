"""A provider that plays scripted events, tool calls included, inside a real server.

`tests/fakes/scripted.py` plays text, usage and failures for the in-process engine rig; this
one also plays `ToolUse`, and is installed in place of a running server's `sim` provider
(`install`), so tool calls go through the real engine, servicer and gRPC stack. Each model's
calls play its scripts in order; a call beyond them fails the test. Every call is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence

from fareway.core.content import ToolCall
from fareway.core.errors import ProviderError
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, ToolUse
from fareway.providers.base import UsageReport as Usage
from tests.server.harness import Harness

Step = ProviderEvent | ProviderError
"""An event to yield, or an error to raise."""


class ToolScripted:
    """Plays each model's scripts in call order (see the module docstring)."""

    genai_name = "fareway.scripted"
    simulated = True
    server_address = ""

    def __init__(self, scripts: Mapping[str, Sequence[Sequence[Step]]], name: str = "sim") -> None:
        self.name = name
        self._queues = {model: list(plays) for model, plays in scripts.items()}
        self.calls: list[ProviderCall] = []

    def calls_to(self, model_id: str) -> list[ProviderCall]:
        """The calls this model received, in order."""
        return [call for call in self.calls if call.model.id == model_id]

    def stream(self, call: ProviderCall) -> AsyncGenerator[ProviderEvent, None]:
        """Record the call and take its script now; play it as it is iterated."""
        self.calls.append(call)
        queue = self._queues.get(call.model.id)
        if not queue:
            raise AssertionError(f"unexpected call to model {call.model.id!r}")
        return self._play(tuple(queue.pop(0)))

    async def aclose(self) -> None:
        """Nothing to release."""

    @staticmethod
    async def _play(script: Sequence[Step]) -> AsyncGenerator[ProviderEvent, None]:
        for step in script:
            if isinstance(step, ProviderError):
                raise step
            yield step


def install(harness: Harness, provider: ToolScripted) -> ToolScripted:
    """Serve the harness's sim-backed models with `provider` from now on."""
    # The engine, its observer and the runtime share the one providers dict.
    harness.running.runtime.providers["sim"] = provider
    return provider


def call(name: str, arguments_json: str, call_id: str = "") -> ToolCall:
    """A complete tool call (its id "call_<name>" unless given)."""
    return ToolCall(call_id or f"call_{name}", name, arguments_json)


def tool_answer(
    *pieces: str | ToolCall,
    input_tokens: int = 10,
    output_tokens: int | None = 7,
    stop_reason: str = "tool_use",
) -> list[Step]:
    """An answer that says `pieces` (text, or tool calls) in order, then reports its usage
    (none when `output_tokens` is None) and finishes."""
    said: list[Step] = [
        ToolUse(piece) if isinstance(piece, ToolCall) else TextChunk(piece) for piece in pieces
    ]
    usage: list[Step] = [] if output_tokens is None else [Usage(input_tokens, output_tokens)]
    return [*said, *usage, Finish(stop_reason)]
