"""The upstream fault matrix (issue 9): through the real server, with the real `anthropic` and
`openai` SDKs against the loopback fakes, each fault gives the stream, status and budget the
README's error table says, and repeated faults open the model's circuit.

The catalog is the harness's, with one change: fast-1 (where the rules send SIMPLE, balanced-1
next) is served by a provider of its own, `first`, of the SDK's type. Its base URL is the fake's
(or a closed port, for connection refused) and its first-token timeout is the fault's, so a
fault can be put on fast-1 alone while balanced-1 and powerful-1 answer from the same fake.

Each row of FAULTS says what fast-1's upstream does and what the caller must see:
- before the first token, with a fallback: `decision`, `fallback` (fast-1 -> balanced-1,
  naming the error's kind), balanced-1's answer, `done`; spent == done.total == the usage events.
- before the first token, pinned to fast-1: UNAVAILABLE with ErrorInfo (the kind, the model)
  and RetryInfo only when the upstream sent Retry-After; nothing spent, nothing reserved.
- after the first token: ABORTED after `decision` and the delta, no fallback; the partial
  answer billed; nothing reserved.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.config.schema import CircuitBreakerSettings, FarewayConfig
from fareway.core.clock import ManualClock
from fareway.v1 import router_pb2
from tests.fakes import anthropic_server, openai_server
from tests.fakes.http_server import HttpError, LoopbackServer, Streamed
from tests.providers.upstreams import ANTHROPIC, OPENAI, STALL_S, Upstream
from tests.server.harness import TENANT_KEY, Harness, kinds, make_config, metadata, user_request
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
SIMPLE = "classify this: spam?"  # the rules send it to fast-1, with balanced-1 next
FIRST_TOKEN_TIMEOUT_S = 0.3  # fast-1's, in the stall rows only
# Two failures in a minute open a circuit for 30 s (the breaker rows).
BREAKER = CircuitBreakerSettings(failures=2, window_s=60, failure_rate=0.5, cool_down_s=30)


@dataclass(frozen=True)
class Sdk:
    """One SDK: the harness's provider of its type, its fake and that fake's vocabulary."""

    name: str
    provider: str  # "upstream" (anthropic) or "compatible" (openai) in the harness config
    upstream: Upstream
    malformed: Callable[..., Streamed]  # the fake's `Malformed`
    # The usage an opened stream reports before its first text, which is billed even when the
    # attempt then fails: Anthropic's `message_start` carries the input tokens (and an output
    # count of 1); OpenAI reports usage only in its last chunk.
    usage_at_start: tuple[int, int] | None


SDKS = [
    Sdk("anthropic", "upstream", ANTHROPIC, anthropic_server.Malformed, usage_at_start=(12, 1)),
    Sdk("openai", "compatible", OPENAI, openai_server.Malformed, usage_at_start=None),
]

Behaviour = Streamed | HttpError


@dataclass(frozen=True)
class Fault:
    """What fast-1's upstream does, and what the caller sees for it."""

    name: str
    behaviour: Callable[[Sdk], Behaviour | None]  # None: nothing answers (connection refused)
    kind: str  # the ProviderError kind: the fallback's error prefix, ErrorInfo.reason lower-cased
    after_first_token: bool = False
    retry_after_s: int | None = None  # RetryInfo on the UNAVAILABLE status
    first_token_timeout_s: float | None = None
    says: str = ""  # in the error's text, where fareway words it itself
    opens_stream: bool = False  # a 200 stream starts before the fault (see Sdk.usage_at_start)

    def __str__(self) -> str:
        return self.name


FAULTS = [
    Fault(
        "429-retry-after",
        lambda sdk: sdk.upstream.http_error("rate_limited", retry_after="7"),
        "rate_limited",
        retry_after_s=7,
    ),
    Fault("500", lambda sdk: sdk.upstream.http_error("server_error"), "overloaded"),
    # Anthropic's overloaded status, with its body; the openai fake sends the same status.
    Fault(
        "529-overloaded", lambda sdk: HttpError(529, "overloaded_error", "Overloaded"), "overloaded"
    ),
    Fault("connection-refused", lambda sdk: None, "connection_error"),
    Fault(
        "stall-before-first-token",
        # The 200 head and the API's opening events arrive; the first text never does.
        lambda sdk: sdk.upstream.answer(first_chunk_delay_s=STALL_S),
        "timeout",
        first_token_timeout_s=FIRST_TOKEN_TIMEOUT_S,
        says=f"no first token within {FIRST_TOKEN_TIMEOUT_S:g} s",
        opens_stream=True,
    ),
    Fault(
        "malformed-before-first-token",
        lambda sdk: sdk.malformed(chunks=()),
        "malformed_response",
        says="malformed response from the upstream: JSONDecodeError",
        opens_stream=True,
    ),
    Fault(
        "cut-after-first-token",
        lambda sdk: sdk.upstream.drop(["Half"]),
        "connection_error",
        after_first_token=True,
    ),
    Fault(
        "malformed-after-first-token",
        lambda sdk: sdk.malformed(chunks=("Half",)),
        "malformed_response",
        says="malformed response from the upstream: JSONDecodeError",
        after_first_token=True,
    ),
]
BEFORE = [f for f in FAULTS if not f.after_first_token]
AFTER = [f for f in FAULTS if f.after_first_token]


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def matrix_config(
    sdk: Sdk, fake_url: str, fault: Fault, breaker: CircuitBreakerSettings | None
) -> FarewayConfig:
    """The harness catalog behind `fake_url`, fast-1 on a provider of its own (see above)."""
    config = make_config(provider=sdk.provider, base_url=fake_url)
    first_url = f"http://127.0.0.1:{closed_port()}{sdk.upstream.fake_cls.api_root}"
    first = config.providers[sdk.provider].model_copy(
        update={
            "base_url": first_url if fault.behaviour(sdk) is None else fake_url,
            "first_token_timeout_s": fault.first_token_timeout_s,
        }
    )
    models = tuple(
        m.model_copy(update={"provider": "first"}) if m.id == "fast-1" else m for m in config.models
    )
    update: dict[str, Any] = {"providers": {**config.providers, "first": first}, "models": models}
    if breaker is not None:
        update["circuit_breaker"] = breaker
    return config.model_copy(update=update)


@dataclass
class Served:
    """A server in front of one SDK's fake, with one fault on fast-1."""

    sdk: Sdk
    fault: Fault
    harness: Harness
    fake: LoopbackServer[Any]
    clock: ManualClock

    def script_fault(self, then: Sequence[Behaviour] = ()) -> None:
        """The fault on fast-1's next attempt (when it reaches the fake), then `then`."""
        behaviour = self.fault.behaviour(self.sdk)
        self.fake.script(*([behaviour] if behaviour is not None else []), *then)

    def answer(self, **fields: Any) -> Streamed:
        return self.sdk.upstream.answer(**fields)

    async def generate(
        self, request: router_pb2.GenerateRequest
    ) -> tuple[list[router_pb2.GenerateEvent], grpc.aio.AioRpcError | None]:
        """The events of a Generate call, and the error it ended with (None: it succeeded)."""
        events: list[router_pb2.GenerateEvent] = []
        try:
            async for event in self.harness.router.Generate(request, metadata=AUTH):
                events.append(event)
        except grpc.aio.AioRpcError as error:
            return events, error
        return events, None

    async def complete(self, **hints: Any) -> router_pb2.CompleteResponse:
        reply: router_pb2.CompleteResponse = await self.harness.router.Complete(
            user_request(SIMPLE, **hints), metadata=AUTH
        )
        return reply

    async def figures(self) -> tuple[int, int]:
        """(spent, reserved) of the tenant's day limit."""
        state = await self.harness.ledger.state("acme")
        return state.limits[0].spent_micros, state.limits[0].reserved_micros

    async def health(self) -> dict[str, bool]:
        listed = await self.harness.router.ListModels(router_pb2.ListModelsRequest(), metadata=AUTH)
        return {m.id: m.healthy for m in listed.models}

    def sent_models(self) -> list[str]:
        return [r.body["model"] for r in self.fake.requests]


@pytest.fixture(params=SDKS, ids=lambda sdk: sdk.name)
def sdk(request: pytest.FixtureRequest) -> Sdk:
    chosen: Sdk = request.param
    return chosen


@pytest.fixture
async def start(serve: Any, sdk: Sdk) -> AsyncIterator[Callable[..., Any]]:
    """`await start(fault, breaker=None)`: a fake for `sdk` and a server in front of it."""
    async with contextlib.AsyncExitStack() as fakes:

        async def starter(fault: Fault, breaker: CircuitBreakerSettings | None = None) -> Served:
            fake: LoopbackServer[Any] = await fakes.enter_async_context(sdk.upstream.fake_cls())
            clock = ManualClock()
            config = matrix_config(sdk, fake.base_url, fault, breaker)
            return Served(sdk, fault, await serve(config, clock), fake, clock)

        yield starter


@pytest.mark.parametrize("fault", BEFORE, ids=str)
async def test_a_fault_before_the_first_token_falls_back_to_the_next_model(
    start: Callable[..., Any], fault: Fault
) -> None:
    served: Served = await start(fault)
    served.script_fault(
        then=[served.answer(chunks=("Not", " spam"), input_tokens=20, output_tokens=7)]
    )

    events, error = await served.generate(user_request(SIMPLE))

    assert error is None, f"{error.code()}: {error.details()}" if error else ""
    # fast-1's attempt is billed only for what its stream reported before it failed (at $1/Mtok
    # in, $5 out); then balanced-1's answer: 20 in at $3/Mtok, 7 out at $15/Mtok.
    early = served.sdk.usage_at_start if fault.opens_stream else None
    billed = [("fast-1", early[0] * 1 + early[1] * 5)] if early else []
    billed.append(("balanced-1", 20 * 3 + 7 * 15))
    answer = ["fallback", "delta", "usage", "done"]
    assert kinds(events) == ["decision", *(["usage"] if early else []), *answer]
    fallback = next(e.fallback for e in events if e.HasField("fallback"))
    assert (fallback.from_model, fallback.to_model) == ("fast-1", "balanced-1")
    assert fallback.error.startswith(f"{fault.kind}: ")
    assert fault.says in fallback.error
    assert "".join(e.delta.text for e in events if e.HasField("delta")) == "Not spam"
    usages = [e.usage for e in events if e.HasField("usage")]
    assert [(u.model, u.cost_micros) for u in usages] == billed
    done = events[-1].done
    assert (done.stop_reason, done.total.cost_micros) == ("end_turn", sum(c for _, c in billed))
    assert await served.figures() == (sum(u.cost_micros for u in usages), 0)
    reached = [] if fault.behaviour(served.sdk) is None else ["up-fast"]
    assert served.sent_models() == [*reached, "up-balanced"]


@pytest.mark.parametrize("fault", BEFORE, ids=str)
async def test_a_fault_before_the_first_token_with_no_fallback_is_unavailable(
    start: Callable[..., Any], fault: Fault
) -> None:
    served: Served = await start(fault)
    served.script_fault()

    events, error = await served.generate(user_request(SIMPLE, model="fast-1"))

    assert error is not None, "the call succeeded"
    early = served.sdk.usage_at_start if fault.opens_stream else None
    assert kinds(events) == ["decision", *(["usage"] if early else [])], "no text, no fallback"
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "all 1 candidate model(s) failed" in (error.details() or "")
    info = detail(error, error_details_pb2.ErrorInfo)
    assert info is not None
    assert (info.reason, info.domain, info.metadata["model"]) == (
        fault.kind.upper(),
        "fareway.dev",
        "fast-1",
    )
    assert fault.says in info.metadata["error"]
    retry = detail(error, error_details_pb2.RetryInfo)
    assert (retry.retry_delay.seconds if retry is not None else None) == fault.retry_after_s
    billed = early[0] * 1 + early[1] * 5 if early else 0  # what the failed stream reported
    assert await served.figures() == (billed, 0)


@pytest.mark.parametrize("fault", AFTER, ids=str)
async def test_a_fault_after_the_first_token_is_aborted_and_the_partial_answer_billed(
    start: Callable[..., Any], fault: Fault
) -> None:
    served: Served = await start(fault)
    served.script_fault()

    events, error = await served.generate(user_request(SIMPLE))

    assert error is not None, "a cut answer must never end cleanly"
    assert error.code() == grpc.StatusCode.ABORTED
    assert "model fast-1 failed mid-answer" in (error.details() or "")
    assert kinds(events) == ["decision", "delta"], "no fallback once tokens were sent"
    assert events[1].delta.text == "Half"
    info = detail(error, error_details_pb2.ErrorInfo)
    assert info is not None
    assert (info.reason, info.metadata["model"]) == (fault.kind.upper(), "fast-1")
    assert fault.says in info.metadata["error"]
    assert served.sent_models() == ["up-fast"]
    spent, reserved = await served.figures()
    assert reserved == 0
    assert spent > 0, "the partial answer is billed"


# --- the circuit breaker -------------------------------------------------------------------------


def excluded(reply: router_pb2.CompleteResponse) -> dict[str, str]:
    return {c.model: c.excluded_reason for c in reply.decision.candidates}


@pytest.mark.parametrize("fault", BEFORE, ids=str)
async def test_repeated_faults_open_the_circuit_until_a_probe_after_the_cool_down(
    start: Callable[..., Any], fault: Fault
) -> None:
    served: Served = await start(fault, breaker=BREAKER)
    reaches_fake = fault.behaviour(served.sdk) is not None
    for _ in range(2):
        served.script_fault(then=[served.answer()])
        reply = await served.complete()
        assert [(f.from_model, f.to_model) for f in reply.fallbacks] == [("fast-1", "balanced-1")]
    assert await served.health() == {"fast-1": False, "balanced-1": True, "powerful-1": True}

    sent = len(served.fake.requests)
    skipped = await served.complete()
    assert skipped.decision.model == "balanced-1"
    assert excluded(skipped)["fast-1"].startswith("circuit open until ")
    assert list(skipped.fallbacks) == []
    assert served.sent_models()[sent:] == ["up-balanced"], "fast-1 was not tried"

    served.clock.advance(BREAKER.cool_down_s)
    assert not (await served.health())["fast-1"], "open until a probe answers"
    sent = len(served.fake.requests)
    probed = await served.complete()
    assert probed.decision.model == "fast-1"
    assert excluded(probed)["fast-1"] == ""
    if reaches_fake:  # the upstream has recovered: the probe answers and the circuit closes
        assert list(probed.fallbacks) == []
        assert served.sent_models()[sent:] == ["up-fast"]
        assert all((await served.health()).values())
    else:  # still refused: the probe fails, falls back, and the circuit opens again
        assert [f.error.split(":")[0] for f in probed.fallbacks] == ["connection_error"]
        assert served.sent_models()[sent:] == ["up-balanced"]
        assert not (await served.health())["fast-1"]
    assert (await served.figures())[1] == 0
