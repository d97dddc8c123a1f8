"""The server-sent events parser the SDK providers read their 200 bodies with (`providers.sse`),
and the providers reading bodies whose bytes are cut and spelled in every way the format allows.

The loopback fakes write each event whole, LF-terminated, in one HTTP chunk. Here `Decoder` is
fed bytes cut at every offset, and `RawUpstream` serves a body as the given pieces, each its own
HTTP chunk (which is what the client's byte iterator yields one by one), so events split across
reads, CRLF and CR line ends, comments and multi-line data reach the real SDK clients too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx2
import pytest

from fareway.core.errors import MalformedResponse, Overloaded, ProviderError, RateLimited
from fareway.providers import sse
from fareway.providers.base import Finish, Provider, ProviderEvent, TextChunk, UsageReport
from tests.providers.upstreams import ANTHROPIC, OPENAI, Upstream, collect, collect_until_error

# --- Decoder -------------------------------------------------------------------------------------

STREAM = (
    b": a comment, then an event split over two data lines\n"
    b'event: first\ndata: {"a":\ndata:  1}\n\n'
    b"id: 7\nretry: 100\nevent: ping\ndata: {}\n\n"
    b"data:no space after the colon\n\n"
    b"event: nameless-data-less\n\n"
) + "data: caf\u00e9 \u2615\n\n".encode()
EVENTS = [
    ("first", '{"a":\n 1}'),
    ("ping", "{}"),
    ("", "no space after the colon"),
    ("", "caf\u00e9 \u2615"),
]


def decode(pieces: Sequence[bytes]) -> list[sse.Event]:
    decoder = sse.Decoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + list(decoder.end())


def test_events_are_parsed_with_comments_ids_and_data_less_events_skipped() -> None:
    assert decode([STREAM]) == EVENTS


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_every_line_ending_parses_alike(ending: bytes) -> None:
    assert decode([STREAM.replace(b"\n", ending)]) == EVENTS


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_a_cut_at_any_byte_changes_nothing(ending: bytes) -> None:
    """Mid-line, mid-field-name, between CR and LF, inside a UTF-8 character: the events are
    the same however the network cuts the body, and come out as soon as they are complete."""
    body = STREAM.replace(b"\n", ending)
    for cut in range(len(body) + 1):
        assert decode([body[:cut], body[cut:]]) == EVENTS, cut
    assert decode([body[i : i + 1] for i in range(len(body))]) == EVENTS


def test_an_event_is_out_as_soon_as_its_blank_line_arrives() -> None:
    decoder = sse.Decoder()

    assert list(decoder.feed(b"event: a\ndata: x")) == []
    assert list(decoder.feed(b"\n")) == []
    assert list(decoder.feed(b"\n")) == [("a", "x")]


def test_an_unterminated_event_at_the_end_is_dropped() -> None:
    assert decode([b"data: complete\n\ndata: cut"]) == [("", "complete")]
    assert decode([b"data: complete\n\ndata: no blank line\n"]) == [("", "complete")]


def test_bytes_that_are_not_utf8_raise_a_value_error() -> None:
    """A UnicodeDecodeError, a ValueError, which the providers report as a malformed response."""
    decoder = sse.Decoder()
    events: list[sse.Event] = []

    with pytest.raises(UnicodeDecodeError):
        events.extend(decoder.feed(b"data: fine\n\ndata: \xff\xfe\n\n"))

    assert events == [("", "fine")]  # what came before the bad line still came out


async def test_events_stop_at_the_sentinel_and_read_no_further() -> None:
    pieces = [b"data: one\n\ndata: [DO", b"NE]\n\ndata: after\n\n", b"garbage \xff\n\n"]
    served: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            served.append(piece)
            yield piece

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body())

    async with (
        httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as client,
        client.stream("POST", "http://upstream/") as response,
    ):
        events = [event async for event in sse.events(response, done="[DONE]")]

    assert events == [("", "one")]
    assert served == pieces  # the rest was read, not parsed: the connection can be reused


# --- the providers over bodies cut and spelled every way -----------------------------------------


class RawUpstream:
    """A loopback HTTP/1.1 server that answers every request with a 200 SSE body sent as the
    given pieces, each its own HTTP chunk."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces = pieces
        self.base_url = ""
        self._server: asyncio.Server | None = None
        self._answering: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        # A client that stopped early leaves an answer still writing: end it here, not by
        # cancelling it at the loop's close.
        for writer in self._answering.values():
            writer.transport.abort()
        await asyncio.gather(*self._answering, return_exceptions=True)
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._answering[task] = writer
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nretry-after: 3\r\n"
                b"connection: close\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            for piece in self._pieces:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                await asyncio.sleep(0)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        writer.close()


def anthropic_body(texts: Sequence[str], *, tail: bytes | None = None) -> bytes:
    """A Messages stream for `texts`; `tail` replaces what follows them (an error, say)."""

    def event(name: str, payload: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps({'type': name} | payload)}\n\n".encode()

    usage = {"input_tokens": 9, "output_tokens": 1}
    message = {"id": "msg_raw", "type": "message", "model": "claude-raw", "content": []}
    body = event("message_start", {"message": message | {"usage": usage}})
    body += event("content_block_start", {"index": 0, "content_block": {"type": "text"}})
    for text in texts:
        delta = {"type": "text_delta", "text": text}
        body += event("content_block_delta", {"index": 0, "delta": delta})
    if tail is not None:
        return body + tail
    body += event("content_block_stop", {"index": 0})
    stop: dict[str, Any] = {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}
    return body + event("message_delta", stop) + event("message_stop", {})


def openai_body(texts: Sequence[str], *, tail: bytes | None = None) -> bytes:
    """A chat-completions stream for `texts`; `tail` replaces what follows them."""

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        head = {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "model": "gpt-raw"}
        return f"data: {json.dumps(head | {'choices': choices} | extra)}\n\n".encode()

    body = b"".join(
        chunk([{"index": 0, "delta": {"content": text}, "finish_reason": None}]) for text in texts
    )
    if tail is not None:
        return body + tail
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    body += chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    return body + chunk([], usage=usage) + b"data: [DONE]\n\n"


BODIES = {"anthropic": anthropic_body, "openai": openai_body}
TEXTS = ("Hel", "lo, ", "w\u00f6rld \u2615")


@pytest.fixture(params=[ANTHROPIC, OPENAI], ids=lambda upstream: upstream.name)
def upstream(request: pytest.FixtureRequest) -> Upstream:
    assert isinstance(request.param, Upstream)
    return request.param


async def run(upstream: Upstream, pieces: Sequence[bytes]) -> list[ProviderEvent]:
    async with RawUpstream(pieces) as server:
        provider = upstream.provider(server.base_url + upstream.fake_cls.api_root)
        try:
            return await collect(provider, upstream.call())
        finally:
            await provider.aclose()


async def run_until_error(
    upstream: Upstream, pieces: Sequence[bytes], seen: list[ProviderEvent]
) -> None:
    async with RawUpstream(pieces) as server:
        provider: Provider = upstream.provider(server.base_url + upstream.fake_cls.api_root)
        try:
            await collect_until_error(provider, upstream.call(), seen)
        finally:
            await provider.aclose()


def cuts(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("size", [1, 7, 64], ids=lambda size: f"{size}-byte-reads")
@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["lf", "crlf"])
async def test_an_answer_reads_the_same_however_it_is_cut_and_spelled(
    upstream: Upstream, size: int, ending: bytes
) -> None:
    body = b": keep-alive comment\n" + BODIES[upstream.name](TEXTS)
    events = await run(upstream, cuts(body.replace(b"\n", ending), size))

    assert [e.text for e in events if isinstance(e, TextChunk)] == list(TEXTS)
    usage = [e for e in events if isinstance(e, UsageReport)]
    assert usage[-1] == UsageReport(9, 4)
    assert isinstance(events[-1], Finish)
    assert events[-1].stop_reason == "end_turn"


async def test_data_split_over_lines_is_joined(upstream: Upstream) -> None:
    """JSON allows the newline that joins two `data:` lines, so an upstream may fold one."""
    body = BODIES[upstream.name](TEXTS).replace(b'data: {"', b'data: {\ndata: "')

    events = await run(upstream, [body])

    assert [e.text for e in events if isinstance(e, TextChunk)] == list(TEXTS)
    assert isinstance(events[-1], Finish)


async def test_nothing_after_done_is_read_as_an_event() -> None:
    body = openai_body(TEXTS) + b"data: {not json\n\ndata: [DONE]\n\n"

    events = await run(OPENAI, [body])

    assert isinstance(events[-1], Finish)


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", Overloaded),
        ("api_error", Overloaded),
        ("rate_limit_error", RateLimited),
    ],
)
async def test_an_anthropic_error_event_cut_across_reads_raises_its_kind(
    error_type: str, expected: type[ProviderError]
) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": "busy"}}
    tail = b"event: error\r\ndata: " + json.dumps(error).encode() + b"\r\n\r\n"
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as caught:
        await run_until_error(ANTHROPIC, cuts(anthropic_body(TEXTS, tail=tail), 5), seen)

    assert type(caught.value) is expected
    assert caught.value.model == ANTHROPIC.model.id
    assert caught.value.retry_after_s == 3.0  # the stream's headers, as an error status's
    assert [e.text for e in seen if isinstance(e, TextChunk)] == list(TEXTS)


async def test_an_anthropic_error_event_that_is_not_json_is_still_the_upstream_failing() -> None:
    with pytest.raises(Overloaded, match="upstream fell over"):
        await run(
            ANTHROPIC, [anthropic_body(TEXTS, tail=b"event: error\ndata: upstream fell over\n\n")]
        )


async def test_an_openai_error_chunk_raises_its_kind() -> None:
    error = {"error": {"type": "requests", "code": "rate_limit_exceeded", "message": "slow down"}}
    tail = b"data: " + json.dumps(error).encode() + b"\n\ndata: [DONE]\n\n"

    with pytest.raises(RateLimited, match="slow down"):
        await run(OPENAI, cuts(openai_body(TEXTS, tail=tail), 3))


@pytest.mark.parametrize(
    "tail",
    [
        b"event: content_block_delta\ndata: {not json\n\n",
        b"event: content_block_delta\ndata: [1, 2]\n\n",
        b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": 3}\n\n',
        b"event: content_block_delta\ndata: \xff\n\n",
    ],
    ids=["not-json", "not-an-object", "wrong-shape", "not-utf8"],
)
async def test_anthropic_data_that_is_not_the_wire_format_is_malformed(tail: bytes) -> None:
    seen: list[ProviderEvent] = []

    with pytest.raises(MalformedResponse):
        await run_until_error(ANTHROPIC, [anthropic_body(TEXTS, tail=tail)], seen)

    assert [e.text for e in seen if isinstance(e, TextChunk)] == list(TEXTS)


@pytest.mark.parametrize(
    "tail",
    [
        b"data: {not json\n\n",
        b"data: [1, 2]\n\n",
        b'data: {"id": "x", "model": "m", "choices": [{"index": 0}]}\n\n',
        b"data:\n\n",
    ],
    ids=["not-json", "not-an-object", "wrong-shape", "empty"],
)
async def test_openai_data_that_is_not_the_wire_format_is_malformed(tail: bytes) -> None:
    seen: list[ProviderEvent] = []

    with pytest.raises(MalformedResponse):
        await run_until_error(OPENAI, [openai_body(TEXTS, tail=tail + b"data: [DONE]\n\n")], seen)

    assert [e.text for e in seen if isinstance(e, TextChunk)] == list(TEXTS)
