"""A strategy's own model call (the LLM classifier asks a cheap model which route a request
takes), run through the engine's parts so it is billed, traced and timed like any attempt.

- Billed on the request's tenant under a hold of its own, taken before the call and settled,
  shielded, to what the provider reported, whatever happens; the request's stream later shows
  it as a `usage` and counts it in `done.total` (`Decision.spent`).
- Traced as a `chat` span under the request's route span (the current span while routing), and
  fed to the latency record and the circuit breaker like every attempt.
- The attempt runs as its own task, as in the engine: on `timeout_s` or the caller's
  cancellation that task is cancelled (closing the upstream call) and what it used is billed.
"""

from __future__ import annotations

import asyncio
import uuid

from opentelemetry import trace

from fareway.core.content import Message
from fareway.core.errors import ProviderTimeout
from fareway.providers.base import ProviderCall
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import estimate_cost_micros
from fareway.routing.request import RouteRequest
from fareway.routing.strategy import Completion
from fareway.routing.tokens import estimate_prompt_tokens
from fareway.server.engine.attempt import (
    AttemptJob,
    AttemptResult,
    Output,
    outcome,
    run_attempt,
)
from fareway.server.engine.bill import Bill
from fareway.server.engine.events import Delta
from fareway.server.engine.wiring import Wiring


async def consult(
    wiring: Wiring,
    request: RouteRequest,
    model: ModelSpec,
    system: str,
    prompt: str,
    max_tokens: int,
    timeout_s: float,
) -> Completion:
    """Ask `model` one question on `request`'s bill; see the module docstring. A failure (a
    ProviderTimeout after `timeout_s`) comes back in the completion with what it used; raises
    BudgetExceeded when the tenant cannot afford the call (nothing is called)."""
    messages = (Message.user(prompt),)
    prompt_tokens = estimate_prompt_tokens(system, [prompt])
    bill = Bill(
        wiring.ledger,
        wiring.clock,
        request.tenant,
        uuid.uuid4().hex,
        prompt_tokens,
        wiring.checkpoint_interval_s,
    )
    await bill.hold(estimate_cost_micros(model, prompt_tokens, max_tokens))
    call = ProviderCall(
        model, system, messages, min(max_tokens, model.max_output_tokens), timeout_s
    )
    job = AttemptJob(call, prompt_tokens, wiring.first_token_timeouts.get(model.provider))
    meter = bill.meter(model)
    pieces: list[str] = []

    async def collect(piece: Output) -> None:
        # The call offers no tools, so its answer is text: anything else is not the answer.
        if isinstance(piece, Delta):
            pieces.append(piece.text)

    route_span = trace.get_current_span()
    observer = wiring.observer

    async def attempt() -> AttemptResult:
        with observer.attempt_span(route_span, model, call.max_tokens, messages) as span:
            result = await run_attempt(
                job, wiring.providers[model.provider], wiring.clock, collect, meter, bill.tick
            )
            observer.attempt_ended(result, span)
            wiring.breaker.learn(result, route_span)
        return result

    task = asyncio.create_task(attempt())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
            await asyncio.wait({task})
    finally:
        if not task.done():  # this coroutine was cancelled: stop the call, then re-raise
            task.cancel()
            await asyncio.wait({task})
        result = outcome(task, meter, wiring.clock)
        bill.record(result, meter)
        await bill.settle()
    error = result.error
    if result.cancelled:
        error = ProviderTimeout(f"no answer within {timeout_s:g} s", model=model.id)
    return Completion("".join(pieces), result.usage, error)
