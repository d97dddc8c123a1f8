"""The benchmarks' fake model API: a lean asyncio HTTP/1.1 server (keep-alive, chunked SSE)
that answers any path ending in `/messages` with an Anthropic Messages stream and any ending in
`/chat/completions` with an OpenAI chat-completions stream (usage in a last chunk, then
`[DONE]`). Each answer waits `ttft_s` before its first token, then sends `tokens` text deltas
`gap_s` apart, one network write each, as a model's tokens arrive. The streams are built once,
so the upstream spends as little CPU as it can: it shares the cores with what is measured.

Run as a child process by bench/overhead.py and bench/provider_stream.py (`serve_upstream`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(name: str, payload: dict[str, Any]) -> bytes:
    return _chunk(f"event: {name}\ndata: {json.dumps({'type': name} | payload)}\n\n".encode())


def anthropic_events(tokens: int) -> tuple[bytes, list[bytes], bytes]:
    """The Messages stream, precomputed: (before the first token, one per token, the end)."""
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "content": []}
    message |= {"model": "claude-bench", "stop_reason": None, "stop_sequence": None}
    message["usage"] = {"input_tokens": 12, "output_tokens": 1}
    head = (
        _sse("message_start", {"message": message})
        + _sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        + _sse("ping", {})
    )
    deltas = [
        _sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": " tok"}})
        for _ in range(tokens)
    ]
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    tail = (
        _sse("content_block_stop", {"index": 0})
        + _sse("message_delta", {"delta": stop, "usage": {"output_tokens": tokens}})
        + _sse("message_stop", {})
    )
    return head, deltas, tail


def openai_events(tokens: int) -> tuple[bytes, list[bytes], bytes]:
    """The chat-completions stream, precomputed likewise (usage in a last chunk, then [DONE])."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0}
    base["model"] = "gpt-bench"

    def data(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return _chunk(f"data: {json.dumps(base | {'choices': choices} | extra)}\n\n".encode())

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "finish_reason": finish}

    head = data([choice({"role": "assistant", "content": ""})])
    deltas = [data([choice({"content": " tok"})]) for _ in range(tokens)]
    usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens}
    tail = data([choice({}, "stop")]) + data([], usage=usage) + _chunk(b"data: [DONE]\n\n")
    return head, deltas, tail


HEADERS = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n"
)
END = b"0\r\n\r\n"


async def serve_upstream(port: int, ttft_s: float, tokens: int, gap_s: float) -> None:
    streams = {"anthropic": anthropic_events(tokens), "openai": openai_events(tokens)}

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1].split(b"?")[0]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                if not path.endswith((b"/messages", b"/chat/completions")):
                    body = b'{"error": "not found"}'
                    writer.write(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n" % len(body)
                    )
                    writer.write(body)
                    await writer.drain()
                    continue
                first, deltas, last = streams["openai" if b"chat" in path else "anthropic"]
                writer.write(HEADERS + first)
                await writer.drain()
                await asyncio.sleep(ttft_s)
                for i, delta in enumerate(deltas):
                    if i and gap_s:
                        await asyncio.sleep(gap_s)
                    writer.write(delta)
                    await writer.drain()
                writer.write(last + END)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()
