"""The SDK-backed providers and their loopback fakes, behind one adapter for the contract suite.

An `Upstream` says how to build its provider at a fake's `base_url`, how to script each
behaviour the contract needs in that fake's own vocabulary, and how to read the essentials back
out of a recorded request body. `test_provider_contract.py` runs every test against each one;
`test_anthropic.py` and `test_openai.py` pick one and test only what their protocol alone does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fareway.budgets.pricing import Price
from fareway.core.content import Message, Tool, ToolChoice
from fareway.providers.anthropic import AnthropicProvider
from fareway.providers.base import Provider, ProviderCall, ProviderEvent
from fareway.providers.openai import OpenAIProvider
from fareway.routing.catalog import ModelSpec
from tests.fakes import anthropic_server, openai_server
from tests.fakes.http_server import HttpError, Streamed

API_KEY = "sk-test-key"
STALL_S = 3600.0  # "forever": the fake wakes as soon as the client hangs up

# The failures an upstream reports, by what they mean rather than by any one API's words.
ErrorKind = Literal[
    "rate_limited", "overloaded", "server_error", "unauthorized", "bad_request", "not_found"
]
StreamErrorKind = Literal["rate_limited", "overloaded", "server_error"]


# The tools the providers' tool tests offer: one with an input schema, one without (no input).
WEATHER = Tool(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = Tool("get_time", "The time now.")


@dataclass(frozen=True)
class Sent:
    """What a request body asked for, whichever API's shape it has."""

    model: str
    max_tokens: int | None
    system: str | None  # None: no system prompt was sent
    messages: list[dict[str, Any]]  # the conversation, without the system prompt
    stream: bool


@dataclass(frozen=True)
class Upstream:
    """One provider and its fake, and the contract's behaviours in that fake's vocabulary."""

    name: str
    model: ModelSpec
    endpoint: str  # the path the provider posts to
    fake_cls: type[anthropic_server.FakeAnthropic] | type[openai_server.FakeOpenAI]
    build: Callable[..., Provider]  # (api_key=, base_url=)
    answer_cls: Callable[..., Streamed]
    stream_error_cls: Callable[..., Streamed]
    drop_cls: Callable[..., Streamed]
    at_limit: Mapping[str, Any]  # the answer's fields for a stop at max_tokens
    http_errors: Mapping[ErrorKind, HttpError]
    stream_errors: Mapping[StreamErrorKind, Mapping[str, Any]]  # stream_error_cls fields
    read_body: Callable[[Any], Sent]
    first_response_id: str  # the id the fake gives its first answer

    def provider(self, base_url: str) -> Provider:
        return self.build(api_key=API_KEY, base_url=base_url)

    def call(
        self,
        *,
        system: str = "",
        messages: tuple[Message, ...] = (Message.user("hi"),),
        max_tokens: int = 256,
        timeout_s: float | None = None,
    ) -> ProviderCall:
        """A call to this upstream's model; tests override only what they look at."""
        return ProviderCall(self.model, system, messages, max_tokens, timeout_s)

    def tool_call(
        self,
        messages: tuple[Message, ...] = (Message.user("Weather in Paris?"),),
        choice: ToolChoice | None = None,
    ) -> ProviderCall:
        """A call offering the model WEATHER and CLOCK, with `choice`."""
        return dataclasses.replace(
            self.call(messages=messages), tools=(WEATHER, CLOCK), tool_choice=choice
        )

    def answer(
        self, chunks: Sequence[str] = ("Hello", ", world"), *, at_limit: bool = False, **fields: Any
    ) -> Streamed:
        """A normal answer; `at_limit`: it stops because it reached max_tokens."""
        return self.answer_cls(chunks=chunks, **(self.at_limit if at_limit else {}), **fields)

    def http_error(self, kind: ErrorKind, retry_after: str | None = None) -> HttpError:
        return dataclasses.replace(self.http_errors[kind], retry_after=retry_after)

    def stream_error(self, kind: StreamErrorKind, chunks: Sequence[str]) -> Streamed:
        """A 200 stream that sends `chunks` and then reports `kind` inside the stream."""
        return self.stream_error_cls(chunks=chunks, **self.stream_errors[kind])

    def drop(self, chunks: Sequence[str]) -> Streamed:
        """A 200 stream that sends `chunks` and then closes the connection mid-body."""
        return self.drop_cls(chunks=chunks)


async def collect(provider: Provider, call: ProviderCall) -> list[ProviderEvent]:
    return [event async for event in provider.stream(call)]


async def collect_until_error(
    provider: Provider, call: ProviderCall, seen: list[ProviderEvent]
) -> None:
    """Append events to `seen` as they arrive, so a test can inspect them after a raise."""
    async for event in provider.stream(call):
        seen.append(event)


def _anthropic_body(body: Any) -> Sent:
    system = body.get("system")  # a top-level field
    return Sent(body["model"], body["max_tokens"], system, body["messages"], body["stream"])


def _openai_body(body: Any) -> Sent:
    messages = list(body["messages"])
    # A leading `system` message; anywhere else it stays in `messages` and fails the comparison.
    system = messages.pop(0)["content"] if messages and messages[0]["role"] == "system" else None
    return Sent(body["model"], body.get("max_tokens"), system, messages, body["stream"])


def _spec(model_id: str, provider: str, provider_model_id: str) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=provider,
        provider_model_id=provider_model_id,
        tier="small",
        price=Price(1_000_000, 5_000_000),
        context_window=32_768,
        max_output_tokens=4_096,
        capabilities=frozenset(),
        quality=0.5,
    )


ANTHROPIC = Upstream(
    name="anthropic",
    model=_spec("claude-small", "anthropic", "claude-haiku-test-20250101"),
    endpoint="/v1/messages",
    fake_cls=anthropic_server.FakeAnthropic,
    build=AnthropicProvider,
    answer_cls=anthropic_server.Answer,
    stream_error_cls=anthropic_server.StreamError,
    drop_cls=anthropic_server.Drop,
    at_limit={"stop_reason": "max_tokens"},
    http_errors={
        "rate_limited": HttpError(429, "rate_limit_error"),
        "overloaded": HttpError(529, "overloaded_error"),
        "server_error": HttpError(500, "api_error"),
        "unauthorized": HttpError(401, "authentication_error"),
        "bad_request": HttpError(400, "invalid_request_error"),
        "not_found": HttpError(404, "not_found_error"),
    },
    stream_errors={  # the `error` event's type
        "rate_limited": {"error_type": "rate_limit_error"},
        "overloaded": {"error_type": "overloaded_error"},
        "server_error": {"error_type": "api_error"},
    },
    read_body=_anthropic_body,
    first_response_id="msg_req_fake_1",  # the message id, in `message_start`
)

_openai_error = openai_server.HttpError

OPENAI = Upstream(
    name="openai",
    model=_spec("local-small", "local", "qwen-test-7b"),
    endpoint="/v1/chat/completions",
    fake_cls=openai_server.FakeOpenAI,
    build=OpenAIProvider,
    answer_cls=openai_server.Answer,
    stream_error_cls=openai_server.StreamError,
    drop_cls=openai_server.Drop,
    at_limit={"finish_reason": "length"},
    http_errors={
        "rate_limited": _openai_error(429, "requests", code="rate_limit_exceeded"),
        "overloaded": _openai_error(503, "server_error"),
        "server_error": _openai_error(500, "server_error"),
        "unauthorized": _openai_error(401, "invalid_request_error", code="invalid_api_key"),
        "bad_request": openai_server.HttpError(400, "BadRequestError"),
        "not_found": openai_server.HttpError(404, "invalid_request_error", code="model_not_found"),
    },
    stream_errors={  # the error chunk's type and code
        "rate_limited": {"error_type": "requests", "code": "rate_limit_exceeded"},
        "overloaded": {"error_type": "server_error", "code": None},  # OpenAI's
        "server_error": {"error_type": "InternalServerError", "code": 500},  # vLLM's
    },
    read_body=_openai_body,
    first_response_id="chatcmpl-req_fake_1",  # the completion id, on every chunk
)

UPSTREAMS = (ANTHROPIC, OPENAI)


async def sent(
    fake: anthropic_server.FakeAnthropic | openai_server.FakeOpenAI,
    provider: Provider,
    call: ProviderCall,
) -> dict[str, Any]:
    """The body `provider` sent upstream for `call`, once its stream was read to the end."""
    await collect(provider, call)
    body: dict[str, Any] = fake.requests[-1].body
    return body
