"""Anthropic through the official SDK's Messages API, its stream read as raw events (F12).

The SDK builds and sends the request (`stream=True`), authenticates it, and turns an error
status into its exceptions, which `_translate` maps to fareway's; a 200 body is read with
`providers.sse` and each event's JSON looked at as dicts, only the fields used here. The SDK's
`messages.stream()` helper, used before, built a pydantic object per event and rebuilt a snapshot
of the whole message on each (re-parsing partial tool input): more than half the CPU a stream cost
(bench/provider_stream.py). `ping` events and events with no name or no data are skipped, as
the SDK skips them; an `error` event inside the open stream is classified exactly as an error
status with the same body would be (`overloaded_error` is Overloaded, and so on). Anything that
is not the wire format (data that is not JSON, an event of the wrong shape) is a
MalformedResponse.

Usage comes from the stream itself: `message_start` carries the input tokens and
`message_delta` the cumulative output tokens, so a stream cut short still reports what it used.

Tools: the call's tools go out as `tools` (`input_schema`) and its choice as `tool_choice`.
The conversation is translated block for block: an assistant turn's calls become `tool_use`
blocks (their arguments parsed back into the `input` object), and the TOOL turns that answer
them, which Anthropic wants as `tool_result` blocks of one user message, are gathered into one;
a user turn right after them joins that message as a text block, because Anthropic wants the
roles to alternate. A text-only conversation is sent exactly as before tools existed: string
content, one message a turn. In the stream, a `tool_use` content block opens a call,
`input_json_delta` events carry its input in fragments, and `content_block_stop` closes it:
only then is one complete `ToolUse` yielded (`providers.tool_calls`).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncGenerator

import anthropic
import httpx2
from anthropic.types import (
    Base64ImageSourceParam,
    ContentBlockParam,
    MessageParam,
    ToolChoiceParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)

from fareway.core.content import Message, Role, Text, Tool, ToolCall, ToolChoice, ToolChoiceMode
from fareway.core.errors import ProviderError
from fareway.providers import errors, sse
from fareway.providers.base import (
    Finish,
    ProviderCall,
    ProviderEvent,
    TextChunk,
    ToolUse,
    UsageReport,
)
from fareway.providers.tool_calls import PendingCall


class AnthropicProvider:
    """Streams from the Anthropic Messages API (or anything that speaks it at `base_url`)."""

    genai_name = "anthropic"
    simulated = False

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 600.0,
        name: str = "anthropic",
    ) -> None:
        self.name = name
        # fareway does its own retries and fallbacks across models, so the SDK must not retry.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
        self.server_address = self._client.base_url.host

    async def stream(self, call: ProviderCall) -> AsyncGenerator[ProviderEvent, None]:
        """Yield text, complete tool calls and usage as the stream delivers them; raise
        ProviderError on failure."""
        model = call.model.id
        input_tokens = 0
        response_id = response_model = stop_reason = ""
        pending: dict[int, PendingCall] = {}  # tool calls still streaming, by content block
        cut: ProviderError | None = None  # a call that did not parse, until the stop reason
        try:
            # Anthropic reports no log-probabilities: `call.logprobs` is ignored here.
            # Leaving these blocks, normally or through `aclose()` at a `yield`, closes the
            # response and with it the upstream connection.
            async with (
                self._client.messages.with_streaming_response.create(
                    model=call.model.provider_model_id,
                    max_tokens=call.max_tokens,
                    messages=_messages(call.messages),
                    system=call.system or anthropic.omit,
                    tools=[_tool(t) for t in call.tools] if call.tools else anthropic.omit,
                    tool_choice=_tool_choice(call.tool_choice, bool(call.tools)),
                    stream=True,
                    timeout=call.timeout_s if call.timeout_s is not None else anthropic.not_given,
                ) as raw,
                contextlib.aclosing(sse.events(raw.http_response)) as events,
            ):
                async for name, data in events:
                    if name == "ping" or not name or not data:
                        continue
                    if name == "error":
                        raise _stream_error(data, raw.http_response, model)
                    event = json.loads(data)
                    kind = event["type"]
                    if kind == "content_block_delta":
                        delta = event["delta"]
                        if delta["type"] == "text_delta":
                            yield TextChunk(delta["text"])
                        elif delta["type"] == "input_json_delta":
                            # A fragment for a block that is no open tool call: KeyError,
                            # malformed.
                            pending[event["index"]].fragments.append(delta["partial_json"])
                    elif kind == "message_start":
                        message = event["message"]
                        response_id, response_model = message["id"], message["model"]
                        usage = message["usage"]
                        input_tokens = usage["input_tokens"]
                        yield UsageReport(input_tokens, usage["output_tokens"])
                    elif kind == "content_block_start":
                        block = event["content_block"]
                        if block["type"] == "tool_use":
                            pending[event["index"]] = PendingCall(block["id"], block["name"])
                    elif kind == "content_block_stop" and event["index"] in pending:
                        try:
                            yield ToolUse(pending.pop(event["index"]).complete(model))
                        except ProviderError as error:
                            # Only the stop reason, which comes later, tells a call cut by
                            # max_tokens (dropped, see tool_calls.py) from a broken one.
                            cut = error
                    elif kind == "message_delta":
                        stop_reason = event["delta"].get("stop_reason") or ""
                        yield UsageReport(input_tokens, event["usage"]["output_tokens"])
        except (anthropic.APIError, httpx2.RequestError) as exc:
            # The SDK wraps transport errors only while sending; once the stream is open, a read
            # timeout or a dropped connection surfaces as the raw httpx2 error.
            raise _translate(exc, model) from exc
        except errors.MALFORMED_STREAM_ERRORS as exc:
            raise errors.malformed_stream(exc, model) from exc
        if cut is not None and stop_reason != "max_tokens":
            raise cut
        yield Finish(stop_reason or "end_turn", response_id, response_model)

    async def aclose(self) -> None:
        """Close the SDK's connection pool."""
        await self._client.close()


def _messages(messages: tuple[Message, ...]) -> list[MessageParam]:
    """The conversation in Anthropic's shape: TOOL turns in a row, and a user turn after them,
    become one user message of `tool_result` (and text) blocks; every other turn is a message."""
    out: list[MessageParam] = []
    results: list[ContentBlockParam] | None = None  # the open user message of tool results
    for message in messages:
        result = message.tool_result
        if result is not None:
            block: ToolResultBlockParam = {
                "type": "tool_result",
                "tool_use_id": result.call_id,
                "content": result.content,
            }
            if results is None:
                results = []
                out.append({"role": "user", "content": results})
            results.append(block)
        elif message.role is Role.USER and results is not None:
            results.extend(_user_blocks(message))
            results = None
        else:
            out.append(_message(message))
            results = None
    return out


def _message(message: Message) -> MessageParam:
    """A user or assistant turn; string content unless the turn called tools."""
    if message.role is Role.USER:
        if not message.images:
            return {"role": "user", "content": message.text}
        return {"role": "user", "content": _user_blocks(message)}
    if not message.tool_calls:
        return {"role": "assistant", "content": message.text}
    blocks: list[ContentBlockParam] = []
    for block in message.blocks:
        if isinstance(block, Text) and block.text:  # Anthropic rejects empty text blocks
            blocks.append({"type": "text", "text": block.text})
        elif isinstance(block, ToolCall):
            use: ToolUseBlockParam = {
                "type": "tool_use",
                "id": block.id,
                "name": block.name,
                "input": block.arguments(),
            }
            blocks.append(use)
    return {"role": "assistant", "content": blocks}


def _user_blocks(message: Message) -> list[ContentBlockParam]:
    """A user turn as content blocks: its images (base64, as the API takes them), its text."""
    blocks: list[ContentBlockParam] = []
    for image in message.images:
        data = base64.b64encode(image.data).decode("ascii")
        source: Base64ImageSourceParam = {
            "type": "base64",
            "media_type": image.media_type,  # type: ignore[typeddict-item]  # checked at the edge
            "data": data,
        }
        blocks.append({"type": "image", "source": source})
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    return blocks


def _tool(tool: Tool) -> ToolParam:
    # A tool's input is always an object; Anthropic insists the schema says so.
    schema = {"type": "object"} | dict(tool.input_schema)
    return {"name": tool.name, "description": tool.description, "input_schema": schema}


def _tool_choice(choice: ToolChoice | None, has_tools: bool) -> ToolChoiceParam | anthropic.Omit:
    if choice is None or not has_tools:
        return anthropic.omit
    match choice.mode:
        case ToolChoiceMode.AUTO:
            return {"type": "auto"}
        case ToolChoiceMode.ANY:
            return {"type": "any"}
        case ToolChoiceMode.NONE:
            return {"type": "none"}
        case ToolChoiceMode.TOOL:
            return {"type": "tool", "name": choice.name}


def _translate(exc: anthropic.APIError | httpx2.RequestError, model: str) -> ProviderError:
    if isinstance(exc, httpx2.RequestError):
        return errors.transport_failure(exc, model)
    if isinstance(exc, anthropic.APIConnectionError):
        return errors.connection_failure(
            exc, model, timed_out=isinstance(exc, anthropic.APITimeoutError)
        )
    if not isinstance(exc, anthropic.APIStatusError):
        return ProviderError(errors.describe(exc), model=model)
    return _status_error(exc.status_code, errors.describe(exc), exc.body, exc.response, model)


def _stream_error(data: str, response: httpx2.Response, model: str) -> ProviderError:
    """An `error` event inside the open stream, read as the SDK reads one (its JSON, or its
    text when that is not JSON) and carrying the stream's status and headers."""
    body: object
    try:
        body = json.loads(data)
        message = f"{body}"
    except ValueError:
        body, message = data, data or f"Error code: {response.status_code}"
    return _status_error(response.status_code, message, body, response, model)


def _status_error(
    status: int, message: str, body: object, response: httpx2.Response, model: str
) -> ProviderError:
    # An `error` event inside an open stream arrives with the stream's 200 status, so the error
    # type in the body decides as much as the status code does.
    kind = _error_type(body)
    return errors.status_failure(
        status,
        message,
        model=model,
        retry_after_s=errors.retry_after_s(response.headers),
        rate_limited=kind == "rate_limit_error",
        overloaded=kind in _OVERLOAD_TYPES,
    )


_OVERLOAD_TYPES = frozenset({"overloaded_error", "api_error"})


def _error_type(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("type", ""))
    return ""
