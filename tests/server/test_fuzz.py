"""Thousands of generated hostile requests against the real server: bodies that do not decode or
are too large, and well-formed messages with hostile values (huge strings, control characters,
unknown enum values, extreme numbers) on every RPC, with every kind of key.

Every call must end with a definite status, never UNKNOWN or INTERNAL, within its deadline, with
a one-line message and a status small enough for any client's metadata limit; a caller without
a valid key is always UNAUTHENTICATED. Afterwards the server still answers its health check and
each tenant's ledger holds exactly what the successful Generate and Complete calls reported.

Hypothesis runs in a worker thread (it calls examples synchronously) and hands each batch of
calls to the event loop that serves the harness, so the server and its channel are the
ordinary `serve` fixture's. Derandomized and without an example database: the same calls on
every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fareway.budgets.ledger import Limit, OnExceed
from fareway.budgets.windows import Window
from fareway.config.schema import FarewayConfig
from fareway.v1 import budget_pb2, router_pb2
from tests.server.harness import (
    ADMIN_KEY,
    OTHER_KEY,
    TENANT_KEY,
    Harness,
    HarnessFactory,
    make_config,
    metadata,
)

pytestmark = pytest.mark.slow

BATCHES = 400
BATCH_SIZE = 8  # calls sent together: 3,200 in all
MAX_REQUEST_BYTES = 64 * 1024
CALL_TIMEOUT_S = 30.0
STATUS_BUDGET_BYTES = 4096
NEVER = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DEADLINE_EXCEEDED,  # a call that hangs
    grpc.StatusCode.UNIMPLEMENTED,
}
KEYS = {TENANT_KEY: "acme", OTHER_KEY: "other", ADMIN_KEY: ""}
ROUTER = "/fareway.v1.RouterService/"
BUDGETS = "/fareway.v1.BudgetService/"

# -- what a call is -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call to make: the full method name, the body (a message, or raw bytes), the metadata,
    and whether the method streams its answer."""

    method: str
    body: Any
    md: tuple[tuple[str, str], ...]
    streams: bool = False

    @property
    def key(self) -> str | None:
        """The API key sent, when it is a valid one."""
        for name, value in self.md:
            scheme, _, key = value.partition(" ")
            if name == "authorization" and scheme == "Bearer" and key in KEYS:
                return key
        return None


@dataclass
class Outcome:
    """What one call got: its status, the bytes its error status took, its message, and the
    cost it reported when it served an answer."""

    code: grpc.StatusCode
    status_bytes: int = 0
    message: str = ""
    cost_micros: int = 0


@dataclass
class Tally:
    """Everything the calls got, across all examples."""

    outcomes: list[tuple[Call, Outcome]] = field(default_factory=list)
    served_micros: dict[str, int] = field(default_factory=dict)  # tenant -> reported cost


# -- strategies -----------------------------------------------------------------------------------

NAMES = ["fast", "balanced", "powerful", "fast-1", "powerful-1", "rules", "steps", "cost"]
NAMES += ["planning", "summarization", "tools", "vision", "acme", "other", "", " ", "\x00", "\n"]


def repeated(parts: st.SearchStrategy[str], most: int) -> st.SearchStrategy[str]:
    """A short string repeated up to `most` times: huge values without generating them."""
    return st.builds(lambda s, n: s * n, parts, st.integers(1, most))


# Any text (control characters and every plane included), names that mean something, and
# huge repetitions, some above the request size limit.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(NAMES),
    repeated(st.text(min_size=1, max_size=3), 3_000),
    repeated(st.sampled_from(["x", "é", "日", "🙂", "\u202e", "a "]), 40_000),
)
any_int32 = st.integers(-(2**31), 2**31 - 1)
any_uint32 = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 256, 8000, 16001]))
any_int64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, -1, 10**6]))

messages = st.lists(
    st.builds(
        router_pb2.Message,
        role=st.one_of(st.sampled_from([1, 1, 2]), any_int32),
        content=st.one_of(st.sampled_from(["hi", "classify this: spam?", "analyze"]), hostile_text),
    ),
    max_size=4,
)


@st.composite
def hints(draw: st.DrawFn) -> router_pb2.RoutingHints:
    """Hints with any values, each field usually left empty."""
    maybe = st.one_of(st.just(""), hostile_text)
    message = router_pb2.RoutingHints(
        strategy=draw(maybe),
        step_type=draw(maybe),
        model=draw(maybe),
        tier=draw(maybe),
        required_capabilities=draw(st.lists(hostile_text, max_size=3)),
        labels=draw(st.dictionaries(st.text(max_size=10), hostile_text, max_size=2)),
    )
    if draw(st.booleans()):
        message.max_cost_micros = draw(any_int64)
    if draw(st.booleans()):
        message.latency_target_ms = draw(any_uint32)
    return message


hostile_requests = st.builds(
    router_pb2.GenerateRequest,
    messages=messages,
    system=st.one_of(st.just(""), hostile_text),
    max_tokens=st.one_of(st.sampled_from([16, 256]), any_uint32),
    hints=hints(),
    request_id=st.one_of(st.just(""), hostile_text),
)


@st.composite
def nearly_valid_requests(draw: st.DrawFn) -> router_pb2.GenerateRequest:
    """A request that would be served, with at most one hint set to anything: these reach
    routing, the providers and the ledger."""
    prompt = draw(st.one_of(st.sampled_from(["classify this: spam?", "analyze it"]), hostile_text))
    message = router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=prompt)],
        max_tokens=draw(st.integers(1, 2000)),
    )
    name = draw(st.sampled_from(["", "strategy", "step_type", "model", "tier"]))
    if name:
        setattr(message.hints, name, draw(st.one_of(st.sampled_from(NAMES), hostile_text)))
    if draw(st.integers(0, 4)) == 0:
        capability = st.sampled_from(["tools", "vision", "", "teleport", "\x00"])
        message.hints.required_capabilities.append(draw(capability))
    if draw(st.integers(0, 4)) == 0:
        message.hints.max_cost_micros = draw(st.sampled_from([1, 100, 10**6]))
    return message


generate_requests = st.one_of(nearly_valid_requests(), hostile_requests)

budget_limits = st.lists(
    st.builds(
        budget_pb2.BudgetLimit,
        window=st.one_of(st.sampled_from([1, 2, 3]), any_int32),
        cap_micros=st.one_of(st.sampled_from([0, 10**9]), any_int64),
        soft_fraction=st.floats(allow_nan=True, allow_infinity=True),
        on_exceed=st.one_of(st.sampled_from([0, 1, 2]), any_int32),
    ),
    max_size=4,
)


@st.composite
def set_budget_requests(draw: st.DrawFn) -> budget_pb2.SetBudgetRequest:
    """SetBudget of a real tenant or any string; every cap large enough to keep serving is
    as likely as a hostile one."""
    message = budget_pb2.SetBudgetRequest(
        tenant=draw(st.one_of(st.sampled_from(["acme", "other"]), hostile_text)),
        limits=draw(budget_limits),
    )
    if draw(st.booleans()):
        message.latency_target_ms = draw(any_uint32)
    return message


@st.composite
def undecodable_body(draw: st.DrawFn) -> bytes:
    """Bytes that are mostly no valid message: random, truncated, invalid UTF-8 in a string
    field, a length beyond the end."""
    valid = router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=1, content="hi there")], max_tokens=10
    ).SerializeToString()
    bad_utf8 = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]))
    content = b"\x08\x01\x12" + bytes([len(bad_utf8)]) + bad_utf8
    invalid_string = b"\x0a" + bytes([len(content)]) + content + b"\x18\x0a"
    return draw(
        st.one_of(
            st.binary(min_size=1, max_size=64),
            st.just(valid[: draw(st.integers(1, len(valid) - 1))]),
            st.just(invalid_string),
            st.just(b"\x0a\xff\xff\xff\xff\x0f"),  # a length far beyond the body
        )
    )


KINDS = ["route", "complete", "generate", "raw", "oversized", "models", "get_budget"]
KINDS += ["set_budget", "route", "complete", "generate"]  # the busiest calls twice as often
valid_keys = [metadata(TENANT_KEY)] * 6 + [metadata(OTHER_KEY), metadata(ADMIN_KEY)] * 2
invalid_keys = [(), metadata("not-a-key"), (("authorization", TENANT_KEY),)]
printable_ascii = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@st.composite
def keys(draw: st.DrawFn) -> tuple[tuple[str, str], ...]:
    """Mostly valid keys (so that most calls get past authentication), else any."""
    pick = draw(st.integers(0, 9))
    if pick < 8:
        return draw(st.sampled_from(valid_keys))
    if pick == 8:
        return draw(st.sampled_from(invalid_keys))
    return metadata(draw(st.text(printable_ascii, max_size=300)))


@st.composite
def calls(draw: st.DrawFn) -> Call:
    """Any call to any fareway.v1 method."""
    md = draw(keys())
    kind = draw(st.sampled_from(KINDS))
    if kind in ("route", "complete", "generate"):
        method = {"route": "Route", "complete": "Complete", "generate": "Generate"}[kind]
        return Call(ROUTER + method, draw(generate_requests), md, streams=kind == "generate")
    if kind == "raw":
        method = draw(st.sampled_from(["Route", "Complete", "Generate", "ListModels"]))
        return Call(ROUTER + method, draw(undecodable_body()), md, streams=method == "Generate")
    if kind == "oversized":
        size = draw(st.integers(MAX_REQUEST_BYTES + 1, 4 * MAX_REQUEST_BYTES))
        body = router_pb2.GenerateRequest(
            messages=[router_pb2.Message(role=1, content="y" * size)], max_tokens=10
        )
        method = draw(st.sampled_from(["Route", "Generate"]))
        return Call(ROUTER + method, body, md, streams=method == "Generate")
    if kind == "models":
        return Call(ROUTER + "ListModels", router_pb2.ListModelsRequest(), md)
    if kind == "get_budget":
        tenant = draw(st.one_of(st.sampled_from(["", "acme", "other"]), hostile_text))
        return Call(BUDGETS + "GetBudget", budget_pb2.GetBudgetRequest(tenant=tenant), md)
    admin = draw(st.sampled_from([metadata(ADMIN_KEY), md]))
    return Call(BUDGETS + "SetBudget", draw(set_budget_requests()), admin)


# -- making the calls -----------------------------------------------------------------------------


def serialized(body: Any) -> bytes:
    return body if isinstance(body, bytes) else body.SerializeToString()


async def make(harness: Harness, call: Call) -> Outcome:
    """Send `call` as raw bytes; decode only what the ledger check needs."""
    channel = harness.channel
    try:
        if call.streams:
            stream = channel.unary_stream(
                call.method,
                request_serializer=serialized,
                response_deserializer=router_pb2.GenerateEvent.FromString,
            )
            cost = 0
            async for event in stream(call.body, metadata=call.md, timeout=CALL_TIMEOUT_S):
                if event.WhichOneof("event") == "done":
                    cost = event.done.total.cost_micros
            return Outcome(grpc.StatusCode.OK, cost_micros=cost)
        reply_type = router_pb2.CompleteResponse if call.method.endswith("Complete") else None
        unary = channel.unary_unary(
            call.method,
            request_serializer=serialized,
            response_deserializer=reply_type.FromString if reply_type else None,
        )
        reply = await unary(call.body, metadata=call.md, timeout=CALL_TIMEOUT_S)
        cost = reply.total.cost_micros if reply_type else 0
        return Outcome(grpc.StatusCode.OK, cost_micros=cost)
    except grpc.aio.AioRpcError as error:
        details = error.details() or ""
        size = len(details.encode()) + sum(
            len(value)
            for key, value in error.trailing_metadata() or ()
            if key == "grpc-status-details-bin"
        )
        return Outcome(error.code(), size, details)


async def make_all(harness: Harness, batch: list[Call]) -> list[Outcome]:
    """Every call of a batch at once."""
    return list(await asyncio.gather(*(make(harness, call) for call in batch)))


def check(call: Call, outcome: Outcome) -> None:
    """What must hold for every call on its own."""
    where = f"{call.method} with {len(serialized(call.body))} bytes: {outcome.message[:200]!r}"
    assert outcome.code not in NEVER, f"{outcome.code.name} from {where}"
    assert "\n" not in outcome.message, f"a message of one line from {where}"
    assert outcome.status_bytes < STATUS_BUDGET_BYTES, f"a small status from {where}"
    if call.key is None:
        assert outcome.code == grpc.StatusCode.UNAUTHENTICATED, f"no valid key: {where}"
    elif isinstance(call.body, bytes) and not decodes(call):
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, f"undecodable: {where}"


def decodes(call: Call) -> bool:
    """Whether the raw body is a valid request message of its method (random bytes can be)."""
    kind = (
        router_pb2.ListModelsRequest if "ListModels" in call.method else router_pb2.GenerateRequest
    )
    try:
        kind.FromString(call.body)
    except DecodeError:
        return False
    return True


def fuzz_config() -> FarewayConfig:
    config = make_config(day_cap_usd=1000)
    server = config.server.model_copy(update={"max_request_bytes": MAX_REQUEST_BYTES})
    return config.model_copy(update={"server": server})


Runner = Callable[[Coroutine[Any, Any, list[Outcome]]], list[Outcome]]


def run_examples(run: Runner, harness: Harness, tally: Tally) -> None:
    """Hypothesis's loop (blocking, in a worker thread): each batch goes to the server's loop."""

    @settings(
        max_examples=BATCHES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(calls(), min_size=BATCH_SIZE, max_size=BATCH_SIZE))
    def examples(batch: list[Call]) -> None:
        outcomes = run(make_all(harness, batch))
        for call, outcome in zip(batch, outcomes, strict=True):
            tally.outcomes.append((call, outcome))
            tenant = KEYS.get(call.key or "", "")
            if outcome.code == grpc.StatusCode.OK and tenant:
                tally.served_micros[tenant] = tally.served_micros.get(tenant, 0) + (
                    outcome.cost_micros
                )
            check(call, outcome)

    examples()


async def test_hostile_requests_get_definite_bounded_statuses(serve: HarnessFactory) -> None:
    harness: Harness = await serve(fuzz_config())
    loop = asyncio.get_running_loop()
    tally = Tally()

    def run(batch: Coroutine[Any, Any, list[Outcome]]) -> list[Outcome]:
        return asyncio.run_coroutine_threadsafe(batch, loop).result(timeout=4 * CALL_TIMEOUT_S)

    await asyncio.to_thread(run_examples, run, harness, tally)

    assert len(tally.outcomes) >= 3000
    codes = {outcome.code for _, outcome in tally.outcomes}
    assert grpc.StatusCode.OK in codes, "some calls were served"
    assert grpc.StatusCode.INVALID_ARGUMENT in codes
    health = health_pb2_grpc.HealthStub(harness.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    for tenant in ("acme", "other"):
        # Spend is kept per window whatever the limits say (SetBudget may have removed them
        # all), so a total limit shows every settled micro-USD since the start.
        await harness.ledger.configure(tenant, [Limit(Window.TOTAL, 10**15, 0, OnExceed.REJECT)])
        (total,) = (await harness.ledger.state(tenant)).limits
        assert (total.spent_micros, total.reserved_micros) == (
            tally.served_micros.get(tenant, 0),
            0,
        ), tenant
