"""A loopback stand-in for the Anthropic Messages API, speaking its real HTTP/1.1 + SSE wire format.

The anthropic SDK is built on httpx2, so httpx mocks cannot intercept it; this server lets tests
drive the real SDK end to end. Each POST /v1/messages consumes the next scripted behaviour (or
the default), and every request is recorded with whether the client hung up before its response
was complete, so tests can check that closing a provider stream really closes the connection.

    async with FakeAnthropic([HttpError(429, "rate_limit_error", retry_after="7")]) as fake:
        provider = AnthropicProvider(api_key="test", base_url=fake.base_url)

Streams use chunked transfer encoding (as the real API does over HTTP/1.1), so a `Drop` is a
truncated body the client can detect, and every response carries `connection: close` so the
SDK never reuses a connection the server is about to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Self


@dataclass(frozen=True, kw_only=True)
class _Streamed:
    """What every 200 stream shares: the text chunks sent and their pacing."""

    chunks: Sequence[str] = ("Hello", ", world")
    input_tokens: int = 12
    model: str = "claude-fake"
    first_byte_delay_s: float = 0.0  # before the status line, so it counts as time to first byte
    chunk_delay_s: float = 0.0  # between text chunks


@dataclass(frozen=True, kw_only=True)
class Answer(_Streamed):
    """A normal streamed answer that ends with `message_delta` and `message_stop`."""

    output_tokens: int = 5
    stop_reason: str = "end_turn"


@dataclass(frozen=True, kw_only=True)
class StreamError(_Streamed):
    """A 200 stream that sends its chunks and then an `event: error` (as a mid-answer overload)."""

    error_type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass(frozen=True, kw_only=True)
class Drop(_Streamed):
    """A 200 stream that sends its chunks and then closes the connection mid-body."""


@dataclass(frozen=True)
class HttpError:
    """An error status with the API's JSON error body, before any stream starts."""

    status: int
    error_type: str
    message: str = "fake error"
    retry_after: str | None = None


@dataclass(frozen=True)
class Hang:
    """Read the request, then send nothing until the client gives up (for timeouts)."""


Behaviour = Answer | StreamError | Drop | HttpError | Hang


@dataclass
class RecordedRequest:
    """One request as the server saw it, and how its connection ended."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None when there was no body
    finished: bool = False  # the whole response was written
    disconnected_early: bool = False  # the client hung up before the response was complete
    _gone: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait_disconnected(self, timeout_s: float = 5.0) -> bool:
        """Wait (at most `timeout_s`) for the client to hang up early; True if it did."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gone.wait(), timeout_s)
        return self.disconnected_early


class _ClientGone(Exception):
    """The client closed the connection; stop writing."""


class FakeAnthropic:
    """The server. Use as `async with FakeAnthropic(...) as fake:`; `fake.base_url` is set then."""

    def __init__(self, behaviours: Iterable[Behaviour] = (), default: Behaviour | None = None):
        self._script: deque[Behaviour] = deque(behaviours)
        self.default: Behaviour = default if default is not None else Answer()
        self.requests: list[RecordedRequest] = []
        self.base_url = ""
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._closing = False

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        self._script.extend(behaviours)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self._closing = True
        # Abort open connections so their handlers return on their own: cancelling a handler
        # makes asyncio's stream callback log the CancelledError.
        for writer in self._handlers.values():
            writer.transport.abort()
        if self._handlers:
            _, stuck = await asyncio.wait(self._handlers, timeout=5.0)
            for task in stuck:
                task.cancel()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        try:
            record = await _read_request(reader)
            if record is None:
                return
            self.requests.append(record)
            watcher = asyncio.create_task(self._watch_for_hangup(reader, record))
            try:
                await self._respond(_Responder(writer, record, len(self.requests)))
            except (_ClientGone, ConnectionError):
                pass
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            del self._handlers[task]

    async def _watch_for_hangup(self, reader: asyncio.StreamReader, rec: RecordedRequest) -> None:
        """Read until EOF: the client sends nothing after its request, so EOF means it left."""
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
        rec.disconnected_early = not (rec.finished or self._closing)
        rec._gone.set()

    async def _respond(self, r: _Responder) -> None:
        if (r.record.method, r.record.path) != ("POST", "/v1/messages"):
            await r.error(HttpError(404, "not_found_error", f"no route {r.record.path}"))
            return
        behaviour = self._script.popleft() if self._script else self.default
        if isinstance(behaviour, HttpError):
            await r.error(behaviour)
        elif isinstance(behaviour, Hang):
            await r.record._gone.wait()
        else:
            await r.stream(behaviour)


class _Responder:
    """Writes one response, checking before each write that the client is still there."""

    def __init__(self, writer: asyncio.StreamWriter, record: RecordedRequest, number: int):
        self._writer = writer
        self.record = record
        self._request_id = f"req_fake_{number}"

    async def error(self, error: HttpError) -> None:
        detail = {"type": error.error_type, "message": error.message}
        body = json.dumps({"type": "error", "error": detail, "request_id": self._request_id})
        extra = {"retry-after": error.retry_after} if error.retry_after is not None else {}
        head = self._head(error.status, "application/json", {"content-length": str(len(body))})
        await self._send(head + _header_lines(extra) + b"\r\n" + body.encode())
        self.record.finished = True

    async def stream(self, b: Answer | StreamError | Drop) -> None:
        await self._pause(b.first_byte_delay_s)
        head = self._head(200, "text/event-stream; charset=utf-8", {"cache-control": "no-cache"})
        await self._send(head + _header_lines({"transfer-encoding": "chunked"}) + b"\r\n")
        await self._event("message_start", _message_start(b, f"msg_{self._request_id}"))
        await self._event("content_block_start", {"index": 0, "content_block": _EMPTY_TEXT})
        await self._event("ping", {})
        for i, text in enumerate(b.chunks):
            if i:
                await self._pause(b.chunk_delay_s)
            delta = {"type": "text_delta", "text": text}
            await self._event("content_block_delta", {"index": 0, "delta": delta})
        if isinstance(b, Drop):
            return  # no terminating chunk: the caller closes the socket mid-body
        if isinstance(b, StreamError):
            await self._event("error", {"error": {"type": b.error_type, "message": b.message}})
        else:
            await self._event("content_block_stop", {"index": 0})
            stop = {"stop_reason": b.stop_reason, "stop_sequence": None}
            await self._event("message_delta", {"delta": stop, "usage": _usage(b.output_tokens)})
            await self._event("message_stop", {})
        await self._send(b"0\r\n\r\n")
        self.record.finished = True

    def _head(self, status: int, content_type: str, headers: dict[str, str]) -> bytes:
        reason = _REASONS.get(status, "Error")
        fixed = {"content-type": content_type, "request-id": self._request_id}
        fixed["connection"] = "close"
        return f"HTTP/1.1 {status} {reason}\r\n".encode() + _header_lines(fixed | headers)

    async def _event(self, name: str, payload: dict[str, Any]) -> None:
        data = f"event: {name}\ndata: {json.dumps({'type': name} | payload)}\n\n".encode()
        await self._send(b"%x\r\n%s\r\n" % (len(data), data))

    async def _send(self, data: bytes) -> None:
        if self.record._gone.is_set():
            raise _ClientGone
        self._writer.write(data)
        await self._writer.drain()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake (and stop) as soon as the client hangs up."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.record._gone.wait(), seconds)
        if self.record._gone.is_set():
            raise _ClientGone


_EMPTY_TEXT = {"type": "text", "text": ""}
_REASONS = {s.value: s.phrase for s in HTTPStatus} | {529: "Overloaded"}  # 529 is Anthropic's


def _message_start(b: _Streamed, message_id: str) -> dict[str, Any]:
    """The `message_start` payload: an empty assistant message carrying the input tokens."""
    message: dict[str, Any] = {"id": message_id, "type": "message", "role": "assistant"}
    message |= {"content": [], "model": b.model, "stop_reason": None, "stop_sequence": None}
    return {"message": message | {"usage": _usage(1, b.input_tokens)}}


def _usage(output_tokens: int, input_tokens: int | None = None) -> dict[str, int]:
    """Usage as the API reports it: `message_delta` carries only the cumulative output count."""
    counts = {"output_tokens": output_tokens}
    return counts if input_tokens is None else {"input_tokens": input_tokens} | counts


def _header_lines(headers: dict[str, str]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("latin-1")


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    """Parse one request (head and Content-Length body); None if the client left first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        method, path, _ = head.decode("latin-1").split("\r\n", 1)[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return RecordedRequest(method, path, headers, json.loads(raw) if raw else None)
