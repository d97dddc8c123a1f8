"""The HTTP/1.1 plumbing every loopback upstream fake shares; each API's fake adds its wire format.

The provider SDKs are built on httpx2, so httpx mocks cannot intercept them; a real server on
127.0.0.1 lets tests drive the real SDKs end to end. `LoopbackServer` accepts connections, parses
each request, records it, and answers from a script of behaviours (or the default): it answers
`HttpError` and `Hang` itself, the same for every API, and hands streamed behaviours to its
subclass, which writes them through a `Responder`.

Every request is recorded with whether the client hung up before its response was complete, so
tests can check that closing a provider stream really closes the connection. Streams use chunked
transfer encoding (as the real APIs do over HTTP/1.1), so a dropped stream is a truncated body
the client can detect, and every response carries `connection: close` so an SDK never reuses a
connection the server is about to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar, Generic, Self, TypeVar


@dataclass(frozen=True, kw_only=True)
class Streamed:
    """What every scripted 200 stream shares: the text chunks sent, and their pacing."""

    chunks: Sequence[str] = ("Hello", ", world")
    input_tokens: int = 12
    first_byte_delay_s: float = 0.0  # before the status line, so it counts as time to first byte
    # After the 200 head and the API's opening events, before the first text chunk: a stall
    # with the response already open (the SDK's connect and header timeouts have passed).
    first_chunk_delay_s: float = 0.0
    chunk_delay_s: float = 0.0  # between text chunks


@dataclass(frozen=True)
class StreamedCall:
    """A tool call an answer streams: its arguments (JSON text, or anything a broken upstream
    might send) cut into `fragment_size`-character fragments, one character each by default,
    so the provider must assemble them."""

    id: str
    name: str
    arguments: str
    fragment_size: int = 1

    def fragments(self) -> list[str]:
        size = self.fragment_size
        return [self.arguments[i : i + size] for i in range(0, len(self.arguments), size)]


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


class ClientGone(Exception):
    """The client closed the connection; stop writing."""


S = TypeVar("S", bound=Streamed)
T = TypeVar("T")


class LoopbackServer(ABC, Generic[S]):
    """The server. Use as `async with Fake(...) as fake:`; `fake.base_url` is set then.

    A subclass names its endpoint and request-id header, builds its API's error body, and writes
    its streamed behaviours (the `S` type: answers, mid-stream errors, drops).
    """

    path: ClassVar[str]  # the one endpoint served, by POST
    api_root: ClassVar[str] = ""  # what an SDK's `base_url` adds after the host, e.g. "/v1"
    request_id_header: ClassVar[str]

    def __init__(
        self, behaviours: Iterable[S | HttpError | Hang], default: S | HttpError | Hang
    ) -> None:
        self._script: deque[S | HttpError | Hang] = deque(behaviours)
        self.default: S | HttpError | Hang = default
        self.requests: list[RecordedRequest] = []
        self.base_url = ""
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._closing = False

    def script(self, *behaviours: S | HttpError | Hang) -> None:
        """Queue behaviours for the next requests, in order."""
        self._script.extend(behaviours)

    @abstractmethod
    def error_body(self, error: HttpError, request_id: str) -> dict[str, Any]:
        """The API's JSON body for an error status."""

    @abstractmethod
    def unknown_route(self, path: str) -> HttpError:
        """The 404 the API answers for a path it does not serve."""

    @abstractmethod
    async def stream(self, r: Responder, behaviour: S) -> None:
        """Write a 200 stream for `behaviour`, ending with `r.end_stream()` unless it drops."""

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}{self.api_root}"
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
            request_id = f"req_fake_{len(self.requests)}"
            try:
                await self._respond(Responder(writer, record, self.request_id_header, request_id))
            except (ClientGone, ConnectionError):
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

    async def _respond(self, r: Responder) -> None:
        if (r.record.method, r.record.path) != ("POST", self.path):
            await self._error(r, self.unknown_route(r.record.path))
            return
        behaviour = self._script.popleft() if self._script else self.default
        if isinstance(behaviour, HttpError):
            await self._error(r, behaviour)
        elif isinstance(behaviour, Hang):
            await r.record._gone.wait()
        else:
            await self.stream(r, behaviour)

    async def _error(self, r: Responder, error: HttpError) -> None:
        extra = {"retry-after": error.retry_after} if error.retry_after is not None else {}
        await r.json(error.status, self.error_body(error, r.request_id), extra)


class Responder:
    """Writes one response, checking before each write that the client is still there."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        record: RecordedRequest,
        request_id_header: str,
        request_id: str,
    ) -> None:
        self._writer = writer
        self.record = record
        self._request_id_header = request_id_header
        self.request_id = request_id

    async def json(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        """A whole JSON response (used for error statuses)."""
        data = json.dumps(body).encode()
        head = self._head(status, "application/json", {"content-length": str(len(data))})
        await self._send(head + _header_lines(headers) + b"\r\n" + data)
        self.record.finished = True

    async def start_stream(self, first_byte_delay_s: float) -> None:
        """Wait, then send the 200 head of a chunked `text/event-stream` response."""
        await self.pause(first_byte_delay_s)
        head = self._head(200, "text/event-stream; charset=utf-8", {"cache-control": "no-cache"})
        await self._send(head + _header_lines({"transfer-encoding": "chunked"}) + b"\r\n")

    async def event(self, data: str, name: str | None = None) -> None:
        """One server-sent event, in one HTTP chunk."""
        text = (f"event: {name}\n" if name is not None else "") + f"data: {data}\n\n"
        encoded = text.encode()
        await self._send(b"%x\r\n%s\r\n" % (len(encoded), encoded))

    async def paced(
        self, items: Sequence[T], delay_s: float, first_delay_s: float = 0.0
    ) -> AsyncIterator[T]:
        """Yield `items` with `delay_s` between them, and `first_delay_s` before the first."""
        for i, item in enumerate(items):
            await self.pause(delay_s if i else first_delay_s)
            yield item

    async def end_stream(self) -> None:
        """The terminating chunk: the body is complete."""
        await self._send(b"0\r\n\r\n")
        self.record.finished = True

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake (and stop) as soon as the client hangs up."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.record._gone.wait(), seconds)
        if self.record._gone.is_set():
            raise ClientGone

    def _head(self, status: int, content_type: str, headers: dict[str, str]) -> bytes:
        reason = _REASONS.get(status, "Error")
        fixed = {"content-type": content_type, self._request_id_header: self.request_id}
        fixed["connection"] = "close"
        return f"HTTP/1.1 {status} {reason}\r\n".encode() + _header_lines(fixed | headers)

    async def _send(self, data: bytes) -> None:
        if self.record._gone.is_set():
            raise ClientGone
        self._writer.write(data)
        await self._writer.drain()


_REASONS = {s.value: s.phrase for s in HTTPStatus} | {529: "Overloaded"}  # 529 is Anthropic's


def _header_lines(headers: Mapping[str, str]) -> bytes:
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
