"""The blocking Client end to end, against a real server in a background thread."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from fareway.client import (
    Budget,
    BudgetLimit,
    Candidate,
    Client,
    Completion,
    DeadlineExceeded,
    Decision,
    Done,
    InvalidArgument,
    ModelInfo,
    OnExceed,
    PermissionDenied,
    ResourceExhausted,
    StreamEvent,
    TextDelta,
    Unauthenticated,
    Unavailable,
    Usage,
    Window,
)
from fareway.core.clock import SystemClock
from fareway.v1 import router_pb2, router_pb2_grpc
from tests.client.conftest import ServerThread, ThreadedFactory, paced_config
from tests.server.harness import ADMIN_KEY, OTHER_KEY, TENANT_KEY, make_config, metadata

# The manual clock of the harness starts here; the day window resets at the next midnight.
MIDNIGHT = datetime(2026, 1, 16, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_generate_yields_a_decision_first_then_deltas_usage_and_done_last(
    server: ServerThread,
) -> None:
    with Client(server.target, TENANT_KEY) as client:
        events = list(client.generate("What is the capital of France?", max_tokens=200))

    decision, *middle, usage, done = events
    assert isinstance(decision, Decision)
    assert isinstance(done, Done)
    assert isinstance(usage, Usage)
    assert middle, "at least one delta"
    assert all(isinstance(e, TextDelta) for e in middle)
    assert usage.model == decision.model == "balanced-1"
    text = "".join(e.text for e in middle if isinstance(e, TextDelta))
    assert usage.output_tokens == len(text.split()), "sim sends one word per output token"
    assert done.stop_reason == "end_turn"
    assert done.total == Usage("", usage.input_tokens, usage.output_tokens, usage.cost_micros)
    assert done.total.cost_micros > 0
    assert server.ledger() == (usage.cost_micros, 0)


def test_a_conversation_and_hints_reach_the_router(server: ServerThread) -> None:
    conversation = [
        ("user", "classify this: spam or not?"),
        ("assistant", "Which message?"),
        ("user", "the one about the prize"),
    ]
    with Client(server.target, TENANT_KEY) as client:
        events = list(
            client.generate(conversation, tier="powerful", request_id="req-7", max_tokens=20)
        )

    decision = events[0]
    assert isinstance(decision, Decision)
    assert (decision.model, decision.strategy, decision.request_id) == (
        "powerful-1",
        "pin",
        "req-7",
    )
    assert isinstance(events[-1], Done)
    assert events[-1].stop_reason == "max_tokens"


def test_complete_returns_the_joined_text_and_totals(server: ServerThread) -> None:
    prompt = "What is a good name for a bakery in Lisbon?"
    with Client(server.target, TENANT_KEY) as client:
        events = list(client.generate(prompt, max_tokens=300))
        completion = client.complete(prompt, max_tokens=300)

    assert isinstance(completion, Completion)
    assert completion.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert completion.text, "sim answers the same prompt with the same text"
    (usage,) = completion.usage
    done = events[-1]
    assert isinstance(done, Done)
    assert (usage, completion.total, completion.stop_reason) == (
        events[-2],
        done.total,
        "end_turn",
    )
    assert completion.decision.model == "balanced-1"
    assert (completion.escalations, completion.fallbacks) == ((), ())
    assert server.ledger() == (2 * completion.total.cost_micros, 0)


def test_route_explains_and_spends_nothing(server: ServerThread) -> None:
    prompt = "classify this: spam or not?"
    with Client(server.target, TENANT_KEY) as client:
        decision = client.route(prompt, max_tokens=100)
    with grpc.insecure_channel(server.target) as channel:
        raw = router_pb2_grpc.RouterServiceStub(channel).Route(
            router_pb2.GenerateRequest(
                messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=prompt)],
                max_tokens=100,
            ),
            metadata=metadata(TENANT_KEY),
        )

    assert (decision.model, decision.provider, decision.tier, decision.strategy) == (
        "fast-1",
        "sim",
        "fast",
        "rules",
    )
    assert "simple-classification" in decision.reason
    assert [c.model for c in decision.candidates] == ["fast-1", "balanced-1", "powerful-1"]
    assert all(isinstance(c, Candidate) and c.eligible for c in decision.candidates)
    assert decision.candidates[0].score > decision.candidates[1].score
    assert 0 < decision.estimated_cost_micros == raw.estimated_cost_micros
    assert decision.budget_remaining_micros == 100_000_000
    assert decision.request_id
    assert decision.signals == dict(raw.signals)
    assert decision.signals, "the rules strategy explains itself in numbers"
    assert server.ledger() == (0, 0)


def test_list_models(server: ServerThread) -> None:
    with Client(server.target, TENANT_KEY) as client:
        models = client.list_models()

    assert [m.id for m in models] == ["fast-1", "balanced-1", "powerful-1"]
    assert models[0] == ModelInfo(
        id="fast-1",
        provider="sim",
        tier="fast",
        input_price_micros_per_mtok=1_000_000,
        output_price_micros_per_mtok=5_000_000,
        context_window=200_000,
        capabilities=("tools",),
        simulated=True,
        healthy=True,
        provider_model_id="up-fast",
        quality=0.7,
        max_output_tokens=8000,
    )


def test_a_tenant_reads_its_budget(server: ServerThread) -> None:
    with Client(server.target, TENANT_KEY) as client:
        budget = client.get_budget()

    assert budget == Budget(
        tenant="acme",
        limits=(BudgetLimit(Window.DAY, 100_000_000, resets_at=MIDNIGHT),),
        latency_target_ms=5000,
        latency_attainment=budget.latency_attainment,
    )


def test_an_admin_sets_and_reads_any_budget(server: ServerThread) -> None:
    limits = [
        BudgetLimit(Window.MONTH, 5_000_000, 0.5, OnExceed.CHEAPEST_ONLY),
        BudgetLimit(Window.TOTAL, 9_000_000),
    ]
    with Client(server.target, ADMIN_KEY) as admin:
        written = admin.set_budget("other", limits, latency_target_ms=800)
        read = admin.get_budget("other")

    assert written == read
    assert read.tenant == "other"
    assert read.latency_target_ms == 800
    assert read.limits == (
        BudgetLimit(
            Window.MONTH,
            5_000_000,
            0.5,
            OnExceed.CHEAPEST_ONLY,
            resets_at=datetime(2026, 2, 1, tzinfo=UTC),
        ),
        BudgetLimit(Window.TOTAL, 9_000_000),
    )


def test_malformed_requests_raise_invalid_argument_with_field_violations(
    server: ServerThread,
) -> None:
    with Client(server.target, TENANT_KEY) as client:
        with pytest.raises(InvalidArgument) as unary:
            client.route([("user", "hi"), ("assistant", "hello")], max_tokens=0)
        with pytest.raises(InvalidArgument) as streamed:
            list(client.generate("hi", tier="ludicrous"))

    assert unary.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "greater than 0" in unary.value.field_violations["max_tokens"]
    assert "end with a ROLE_USER or ROLE_TOOL turn" in unary.value.field_violations["messages"]
    assert "known: fast, balanced, powerful" in streamed.value.field_violations["hints.tier"]
    assert server.ledger() == (0, 0)


@pytest.mark.parametrize("key", ["", "not-a-key"])
def test_a_missing_or_unknown_key_raises_unauthenticated(server: ServerThread, key: str) -> None:
    with Client(server.target, key) as client:
        with pytest.raises(Unauthenticated) as unary:
            client.list_models()
        with pytest.raises(Unauthenticated) as streamed:
            next(iter(client.generate("hi")))

    for error in (unary.value, streamed.value):
        assert error.code == grpc.StatusCode.UNAUTHENTICATED
        assert ("unknown API key" if key else "missing") in error.message


def test_the_wrong_key_raises_permission_denied(server: ServerThread) -> None:
    with Client(server.target, TENANT_KEY) as tenant, Client(server.target, OTHER_KEY) as other:
        with pytest.raises(PermissionDenied, match="admin key") as admin_only:
            tenant.set_budget("acme", [BudgetLimit(Window.DAY, 1)])
        with pytest.raises(PermissionDenied, match="only its own budget"):
            other.get_budget("acme")

    assert admin_only.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert server.run(server.running.runtime.ledger.state("acme")).limits[0].limit.cap_micros == (
        100_000_000
    ), "the refused SetBudget changed nothing"


def test_the_hard_cap_raises_resource_exhausted_with_retry_after(
    threaded: ThreadedFactory,
) -> None:
    server = threaded(make_config(day_cap_usd=0.0001))  # 100 micro-USD a day
    with Client(server.target, TENANT_KEY) as client:
        with pytest.raises(ResourceExhausted) as unary:
            client.complete("analyze this", max_tokens=1000)
        with pytest.raises(ResourceExhausted) as streamed:
            list(client.generate("analyze this", max_tokens=1000))

    for error in (unary.value, streamed.value):
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "day cap" in error.message
        assert list(error.quota_violations) == ["tenant:acme"]
        assert error.retry_after == timedelta(hours=12), "the manual clock stands at noon"
    assert server.ledger() == (0, 0)


def test_deadlines_default_from_the_client_and_are_overridden_per_call(
    threaded: ThreadedFactory,
) -> None:
    server = threaded(paced_config(ttft_ms=1000), SystemClock())
    with Client(server.target, TENANT_KEY, timeout_s=0.2) as client:
        with pytest.raises(DeadlineExceeded) as by_default:
            client.complete("hello")
        with pytest.raises(DeadlineExceeded):
            list(client.generate("hello"))
        answered = client.complete("hello", max_tokens=3, timeout_s=20)
    with Client(server.target, TENANT_KEY) as client, pytest.raises(DeadlineExceeded):
        client.complete("hello", timeout_s=0.2)

    assert by_default.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert answered.ttft_ms >= 1000
    server.wait_until_released()


def test_breaking_out_of_generate_cancels_the_call(threaded: ThreadedFactory) -> None:
    server = threaded(paced_config(), SystemClock())  # a whole answer takes about 40 s
    started = time.monotonic()
    with Client(server.target, TENANT_KEY) as client:
        for event in client.generate("hello", max_tokens=4000):
            if isinstance(event, Decision):
                estimate = event.estimated_cost_micros
            if isinstance(event, TextDelta):
                break
        server.wait_until_released()

    spent, _ = server.ledger()
    assert spent > 0, "the tokens streamed before the break are billed"
    assert spent < estimate / 10, "the answer stopped when the loop did"
    assert time.monotonic() - started < 10


def test_closing_the_iterator_cancels_the_call(threaded: ThreadedFactory) -> None:
    server = threaded(paced_config(), SystemClock())
    with Client(server.target, TENANT_KEY) as client:
        events = client.generate("hello", max_tokens=4000)
        received: list[StreamEvent] = [next(events), next(events)]
        assert server.ledger()[1] > 0, "the answer is in flight"
        events.close()
        server.wait_until_released()

    assert [type(e) for e in received] == [Decision, TextDelta]
    with pytest.raises(StopIteration):
        next(events)


def test_an_unreachable_server_raises_unavailable() -> None:
    client = Client(f"127.0.0.1:{free_port()}", TENANT_KEY, timeout_s=5)
    with client, pytest.raises(Unavailable) as caught:
        client.list_models()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason == ""


def test_every_candidate_failing_raises_unavailable_with_error_info(
    threaded: ThreadedFactory,
) -> None:
    server = threaded(make_config(provider="upstream", base_url=f"http://127.0.0.1:{free_port()}"))
    with Client(server.target, TENANT_KEY) as client, pytest.raises(Unavailable) as caught:
        client.complete("hello", model="fast-1")

    error = caught.value
    assert error.reason
    assert error.domain == "fareway.dev"
    assert error.metadata["model"] == "fast-1"
    assert server.ledger() == (0, 0)


def test_with_closes_the_channel(server: ServerThread) -> None:
    with Client(server.target, TENANT_KEY) as client:
        client.list_models()
        events = client.generate("hello")
    with pytest.raises(RuntimeError, match="closed"):
        client.list_models()
    with pytest.raises(RuntimeError, match="closed"):
        next(events)


def test_extra_metadata_is_sent_on_every_call(server: ServerThread) -> None:
    # The key given as plain metadata, with an uppercase name that gRPC would refuse.
    with Client(server.target, metadata=[("Authorization", f"Bearer {TENANT_KEY}")]) as client:
        assert client.list_models()
        assert isinstance(next(iter(client.generate("hello"))), Decision)


def test_credentials_make_a_tls_channel(server: ServerThread) -> None:
    # The test server speaks plaintext, so a TLS client fails its handshake.
    tls = grpc.ssl_channel_credentials()
    client = Client(server.target, TENANT_KEY, credentials=tls, timeout_s=5)
    with client, pytest.raises(Unavailable, match=r"(?i)handshake"):
        client.list_models()
