"""A loopback stand-in for the Anthropic Messages API, speaking its real HTTP/1.1 + SSE wire format.

Each POST /v1/messages consumes the next scripted behaviour (or the default); the HTTP plumbing,
request recording and `HttpError`/`Hang` handling live in `tests.fakes.http_server`.

An `Answer` with `calls` streams them as the API does after its text: per call a
`content_block_start` of a `tool_use` block (id, name, empty input), an empty `input_json_delta`
and then one per fragment of the arguments, and a `content_block_stop`. A tool-only answer has no
text block, as with `tool_choice` any.

    async with FakeAnthropic([HttpError(429, "rate_limit_error", retry_after="7")]) as fake:
        provider = AnthropicProvider(api_key="test", base_url=fake.base_url)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.http_server import (
    Hang,
    HttpError,
    LoopbackServer,
    Responder,
    Streamed,
    StreamedCall,
)


@dataclass(frozen=True, kw_only=True)
class _Streamed(Streamed):
    model: str = "claude-fake"


@dataclass(frozen=True, kw_only=True)
class Answer(_Streamed):
    """A normal streamed answer that ends with `message_delta` and `message_stop`."""

    output_tokens: int = 5
    stop_reason: str = "end_turn"
    calls: Sequence[StreamedCall] = ()  # tool_use blocks after the text


@dataclass(frozen=True, kw_only=True)
class StreamError(_Streamed):
    """A 200 stream that sends its chunks and then an `event: error` (as a mid-answer overload)."""

    error_type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass(frozen=True, kw_only=True)
class Drop(_Streamed):
    """A 200 stream that sends its chunks and then closes the connection mid-body."""


@dataclass(frozen=True, kw_only=True)
class Malformed(_Streamed):
    """A 200 stream that sends its chunks and then a `content_block_delta` whose data is not
    JSON (a garbling proxy, a truncated write), then ends the body normally."""

    data: str = "{not json"


_Stream = Answer | StreamError | Drop | Malformed
Behaviour = _Stream | HttpError | Hang


class FakeAnthropic(LoopbackServer[_Stream]):
    """The server. Use as `async with FakeAnthropic(...) as fake:`; `fake.base_url` is set then."""

    path = "/v1/messages"
    request_id_header = "request-id"

    def __init__(self, behaviours: Iterable[Behaviour] = (), default: Behaviour | None = None):
        super().__init__(behaviours, default if default is not None else Answer())

    def error_body(self, error: HttpError, request_id: str) -> dict[str, Any]:
        detail = {"type": error.error_type, "message": error.message}
        return {"type": "error", "error": detail, "request_id": request_id}

    def unknown_route(self, path: str) -> HttpError:
        return HttpError(404, "not_found_error", f"no route {path}")

    async def stream(self, r: Responder, b: _Stream) -> None:
        calls = b.calls if isinstance(b, Answer) else ()
        has_text = bool(b.chunks) or not calls
        await r.start_stream(b.first_byte_delay_s)
        await _event(r, "message_start", _message_start(b, f"msg_{r.request_id}"))
        if has_text:
            await _event(r, "content_block_start", {"index": 0, "content_block": _EMPTY_TEXT})
        await _event(r, "ping", {})
        async for text in r.paced(b.chunks, b.chunk_delay_s, b.first_chunk_delay_s):
            delta = {"type": "text_delta", "text": text}
            await _event(r, "content_block_delta", {"index": 0, "delta": delta})
        if isinstance(b, Drop):
            return  # no terminating chunk: the server closes the socket mid-body
        if isinstance(b, Malformed):
            await r.event(b.data, "content_block_delta")
        elif isinstance(b, StreamError):
            await _event(r, "error", {"error": {"type": b.error_type, "message": b.message}})
        else:
            if has_text:
                await _event(r, "content_block_stop", {"index": 0})
            for index, call in enumerate(calls, start=int(has_text)):
                await _tool_use(r, index, call)
            stop = {"stop_reason": b.stop_reason, "stop_sequence": None}
            await _event(r, "message_delta", {"delta": stop, "usage": _usage(b.output_tokens)})
            await _event(r, "message_stop", {})
        await r.end_stream()


_EMPTY_TEXT = {"type": "text", "text": ""}


async def _tool_use(r: Responder, index: int, call: StreamedCall) -> None:
    """One tool_use content block, its input streamed as `input_json_delta` fragments (the API
    opens with an empty one)."""
    block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
    await _event(r, "content_block_start", {"index": index, "content_block": block})
    for fragment in ["", *call.fragments()]:
        delta = {"type": "input_json_delta", "partial_json": fragment}
        await _event(r, "content_block_delta", {"index": index, "delta": delta})
    await _event(r, "content_block_stop", {"index": index})


async def _event(r: Responder, name: str, payload: dict[str, Any]) -> None:
    """A Messages API event: its name on the `event:` line and again as the payload's `type`."""
    await r.event(json.dumps({"type": name} | payload), name)


def _message_start(b: _Streamed, message_id: str) -> dict[str, Any]:
    """The `message_start` payload: an empty assistant message carrying the input tokens."""
    message: dict[str, Any] = {"id": message_id, "type": "message", "role": "assistant"}
    message |= {"content": [], "model": b.model, "stop_reason": None, "stop_sequence": None}
    return {"message": message | {"usage": _usage(1, b.input_tokens)}}


def _usage(output_tokens: int, input_tokens: int | None = None) -> dict[str, int]:
    """Usage as the API reports it: `message_delta` carries only the cumulative output count."""
    counts = {"output_tokens": output_tokens}
    return counts if input_tokens is None else {"input_tokens": input_tokens} | counts
