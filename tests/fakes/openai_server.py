"""A loopback stand-in for an OpenAI-compatible chat completions server, on its real wire format.

POST /v1/chat/completions answers with a stream as OpenAI does: `data: {...}` lines of
`chat.completion.chunk` objects (the role first, one chunk per text piece, a chunk with an empty
delta and the `finish_reason`), then, when the request set `stream_options.include_usage`, a
usage chunk with `choices: []`, and `data: [DONE]`. Errors before a stream are OpenAI's JSON body
(`{"error": {"message", "type", "param", "code"}}`); an error inside an open stream is a
`data: {"error": {...}}` chunk followed by `data: [DONE]`, which is what vLLM and OpenAI send
(the openai SDK raises on any chunk that carries an `error` key).

An `Answer` with `calls` streams them after its text as OpenAI does: per call, a chunk whose
`delta.tool_calls[0]` has the call's `index`, `id`, `type` and `function.name` with empty
arguments, then one chunk per fragment of the arguments carrying only the `index` and
`function.arguments`; the finish_reason (set `finish_reason="tool_calls"`) comes after them.

Behaviour names parallel `tests.fakes.anthropic_server`'s so a test can swap one fake for the
other, and `base_url` already ends in `/v1`, as the openai SDK expects:

    async with FakeOpenAI([HttpError(429, "requests", code="rate_limit_exceeded")]) as fake:
        provider = OpenAIProvider(api_key="test", base_url=fake.base_url)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes import http_server
from tests.fakes.http_server import Hang, LoopbackServer, Responder, Streamed, StreamedCall


@dataclass(frozen=True, kw_only=True)
class _Streamed(Streamed):
    model: str = "gpt-fake"


@dataclass(frozen=True, kw_only=True)
class Answer(_Streamed):
    """A normal streamed answer: text chunks, the finish reason, usage (if asked for), [DONE].

    OpenAI sends `finish_reason` in a chunk of its own with an empty delta; vLLM and some others
    put it on the chunk carrying the last text (`finish_with_last_text=True`). With
    `finish_reason=None` no chunk carries one, as when a proxy ends a stream early but cleanly.
    """

    output_tokens: int = 5
    finish_reason: str | None = "stop"
    finish_with_last_text: bool = False
    # False: ignore stream_options.include_usage, as some Ollama and LM Studio builds do.
    report_usage: bool = True
    # Per text chunk, the log-probability of each of its tokens, sent (as OpenAI does) only when
    # the request set `logprobs: true`. None: the server ignores that flag (`logprobs: null`).
    logprobs: Sequence[Sequence[float]] | None = None
    calls: Sequence[StreamedCall] = ()  # tool calls after the text


@dataclass(frozen=True, kw_only=True)
class StreamError(_Streamed):
    """A 200 stream that sends its chunks and then a `data: {"error": ...}` chunk.

    OpenAI sends `code: null` with `type: server_error`; vLLM sends the HTTP status as `code`
    (e.g. 500 with `type: InternalServerError`).
    """

    error_type: str = "server_error"
    message: str = "The server had an error while processing your request."
    code: str | int | None = None


@dataclass(frozen=True, kw_only=True)
class Drop(_Streamed):
    """A 200 stream that sends its chunks and then closes the connection mid-body."""


@dataclass(frozen=True, kw_only=True)
class Malformed(_Streamed):
    """A 200 stream that sends its chunks and then a `data:` line that is not JSON (a garbling
    proxy, a truncated write), then `[DONE]`."""

    data: str = "{not json"


@dataclass(frozen=True)
class HttpError(http_server.HttpError):
    """An error status with OpenAI's JSON error body; `code` is e.g. "rate_limit_exceeded"."""

    code: str | None = None


_Stream = Answer | StreamError | Drop | Malformed
Behaviour = _Stream | http_server.HttpError | Hang


class FakeOpenAI(LoopbackServer[_Stream]):
    """The server. Use as `async with FakeOpenAI(...) as fake:`; `fake.base_url` is set then."""

    path = "/v1/chat/completions"
    api_root = "/v1"
    request_id_header = "x-request-id"

    def __init__(self, behaviours: Iterable[Behaviour] = (), default: Behaviour | None = None):
        super().__init__(behaviours, default if default is not None else Answer())

    def error_body(self, error: http_server.HttpError, request_id: str) -> dict[str, Any]:
        code = error.code if isinstance(error, HttpError) else None
        return {"error": _error(error.error_type, error.message, code)}

    def unknown_route(self, path: str) -> HttpError:
        return HttpError(404, "invalid_request_error", f"Invalid URL (POST {path})")

    async def stream(self, r: Responder, b: _Stream) -> None:
        reports = not isinstance(b, Answer) or b.report_usage
        completion = _Completion(r, b.model, include_usage=reports and _wants_usage(r.record.body))
        finish_with_text: str | None = None
        if isinstance(b, Answer) and b.finish_with_last_text and b.chunks:
            finish_with_text = b.finish_reason
        await r.start_stream(b.first_byte_delay_s)
        await completion.chunk({"role": "assistant", "content": ""})
        pieces = list(enumerate(b.chunks))
        logprobs = b.logprobs if isinstance(b, Answer) and wants_logprobs(r.record.body) else None
        async for i, text in r.paced(pieces, b.chunk_delay_s, b.first_chunk_delay_s):
            last = i == len(b.chunks) - 1
            tokens = _token_logprobs(text, logprobs[i]) if logprobs is not None else None
            await completion.chunk({"content": text}, finish_with_text if last else None, tokens)
        if isinstance(b, Drop):
            return  # no terminating chunk: the server closes the socket mid-body
        if isinstance(b, Malformed):
            await r.event(b.data)
        elif isinstance(b, StreamError):
            await r.event(json.dumps({"error": _error(b.error_type, b.message, b.code)}))
        else:
            for index, call in enumerate(b.calls):
                await _tool_call(completion, index, call)
            if finish_with_text is None and b.finish_reason is not None:
                await completion.chunk({}, b.finish_reason)
            if completion.include_usage:
                await completion.usage(b.input_tokens, b.output_tokens)
        await r.event("[DONE]")
        await r.end_stream()


class _Completion:
    """Writes the chunks of one completion, each carrying its id, creation time and model."""

    def __init__(self, r: Responder, model: str, *, include_usage: bool) -> None:
        self._r = r
        self.include_usage = include_usage
        self._head = {
            "id": f"chatcmpl-{r.request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }

    async def chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        tokens: list[dict[str, Any]] | None = None,
    ) -> None:
        """A chunk for choice 0; with usage asked for, OpenAI sends `usage: null` on each one.
        `tokens`: the chunk's `logprobs.content` entries (None: `logprobs: null`)."""
        logprobs = {"content": tokens, "refusal": None} if tokens is not None else None
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        usage = {"usage": None} if self.include_usage else {}
        await self._r.event(json.dumps(self._head | {"choices": [choice]} | usage))

    async def usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        """The last chunk before [DONE]: no choices, the whole request's token counts."""
        counts = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        counts["total_tokens"] = prompt_tokens + completion_tokens
        await self._r.event(json.dumps(self._head | {"choices": [], "usage": counts}))


async def _tool_call(completion: _Completion, index: int, call: StreamedCall) -> None:
    """One tool call: its head (id, type, name, no arguments yet), then its argument fragments."""
    function = {"name": call.name, "arguments": ""}
    head = {"index": index, "id": call.id, "type": "function", "function": function}
    await completion.chunk({"tool_calls": [head]})
    for fragment in call.fragments():
        piece = {"index": index, "function": {"arguments": fragment}}
        await completion.chunk({"tool_calls": [piece]})


def _error(error_type: str, message: str, code: str | int | None) -> dict[str, Any]:
    return {"message": message, "type": error_type, "param": None, "code": code}


def wants_logprobs(body: Any) -> bool:
    """Whether a recorded request body asked for token log-probabilities."""
    return isinstance(body, dict) and body.get("logprobs") is True


def _token_logprobs(text: str, logprobs: Sequence[float]) -> list[dict[str, Any]]:
    """OpenAI's `logprobs.content` entries for a chunk: `text` split into one token per value
    (the last takes the remainder), each with its bytes and no alternatives."""
    size = max(1, len(text) // max(1, len(logprobs)))
    starts = [i * size for i in range(len(logprobs))]
    ends = [*starts[1:], len(text)][: len(starts)]
    return [
        {"token": text[a:b], "logprob": lp, "bytes": list(text[a:b].encode()), "top_logprobs": []}
        for a, b, lp in zip(starts, ends, logprobs, strict=True)
    ]


def _wants_usage(body: Any) -> bool:
    options = body.get("stream_options") if isinstance(body, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True
