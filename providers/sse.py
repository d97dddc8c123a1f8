"""Server-sent events read straight off the SDK's HTTP response: shared by the SDK providers.

The SDKs still build and send each request, authenticate it, and turn an error status into
their exceptions; only a 200 body is read here. Their own stream objects build a pydantic object
for every event (and anthropic's `messages.stream()` helper also rebuilds a snapshot of the whole
message, partial tool input parsed again, on each one), which issue 13's profile found to be a
quarter of the server's CPU. A provider instead gets each event as two strings, its name and its
data, and `json.loads` the data itself, reading as dicts only the few fields it needs
(bench/provider_stream.py measures the difference).

`Decoder` follows the SSE specification's parsing for what these APIs send: lines end in LF,
CRLF or a lone CR (a CR that ends a network chunk waits for the next one, which may start with
its LF); a line starting with ':' is a comment; `event:` names the event and `data:` lines are
joined with LF; a blank line dispatches the event when it has data, and an unterminated event at
the end of the body is dropped. `id:` and `retry:` are ignored: nothing here reconnects.
Undecodable UTF-8 raises `UnicodeDecodeError`, a ValueError, which the providers report as a
malformed response (`errors.MALFORMED_STREAM_ERRORS`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

import httpx2

Event = tuple[str, str]
"""An event's name ("" when it has none) and its data, its `data:` lines joined."""

DRAIN_S = 0.1  # how long to read what follows a stream's end sentinel, as the openai SDK does


class Decoder:
    """Bytes in as they arrive, complete events out; state only for one response."""

    __slots__ = ("_data", "_name", "_pending")

    def __init__(self) -> None:
        self._pending = b""  # the bytes after the last complete line
        self._name = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[Event]:
        """The events that `chunk` completes, in order, as they are parsed."""
        buffer = self._pending + chunk if self._pending else chunk
        # A trailing CR may be the first half of a CRLF split between chunks: keep it back, or
        # the LF would read as a blank line and dispatch the event early.
        stop = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
        end = max(buffer.rfind(b"\n", 0, stop), buffer.rfind(b"\r", 0, stop)) + 1
        self._pending = buffer[end:]
        if not end:
            return
        complete = buffer[:end]
        try:
            # Complete lines only, decoded at once: UTF-8 never puts a CR or LF byte inside a
            # character.
            text = complete.decode()
        except UnicodeDecodeError as exc:
            # The events before the undecodable line still come out, as they would from a
            # reader decoding line by line; then the error.
            good = max(complete.rfind(b"\n", 0, exc.start), complete.rfind(b"\r", 0, exc.start))
            yield from self._text(complete[: good + 1].decode())
            raise
        yield from self._text(text)

    def end(self) -> Iterator[Event]:
        """The body ended: the event a held-back CR completes, if it does."""
        if self._pending.endswith(b"\r"):
            yield from self.feed(b"\n")

    def _text(self, text: str) -> Iterator[Event]:
        """The events of whole lines of text (it ends with a line end, or is empty)."""
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        data = self._data
        for line in text.split("\n")[:-1]:  # [-1]: "" after the last line end
            if not line:
                if data:
                    yield self._name, "\n".join(data)
                    data.clear()
                self._name = ""
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                data.append(value)
            elif field == "event":
                self._name = value
            # "" (a comment), "id", "retry" and unknown fields are ignored


async def events(
    response: httpx2.Response, *, done: str | None = None
) -> AsyncGenerator[Event, None]:
    """Each event of `response`'s body as it arrives; raises the httpx2 errors reading does.

    With `done` (OpenAI's "[DONE]"), an event whose data starts with it ends the stream: what
    follows it is read and dropped for at most `DRAIN_S`, so that an HTTP/1.1 connection goes
    back to the pool instead of being closed with its body unread. Close the iterator (or the
    response) to stop early.
    """
    decoder = Decoder()
    chunks = response.aiter_bytes()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            if done is not None and event[1].startswith(done):
                await _drain(chunks)
                return
            yield event
    for event in decoder.end():
        if done is not None and event[1].startswith(done):
            return
        yield event


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    # The answer is complete: failing to read its tail must not turn it into an error.
    with contextlib.suppress(httpx2.RequestError, httpx2.StreamError, TimeoutError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in chunks:
                pass
