"""Any OpenAI-compatible chat completions endpoint (vLLM, Ollama, OpenRouter, LM Studio, ...)
through the official `openai` SDK (F12), its stream read as raw events.

The SDK builds and sends the request (`stream=True`), authenticates it, and turns an error
status into its exceptions, which `_translate` maps to fareway's; a 200 body is read with
`providers.sse` (up to `data: [DONE]`) and each chunk's JSON looked at as dicts, only the fields
used here, instead of through the SDK's stream, which builds a pydantic object per chunk
(bench/provider_stream.py measures the difference). A chunk with an `error` key is classified
as the SDK's stream would raise it (`_stream_error`); anything that is not the wire format
(data that is not JSON, a chunk of the wrong shape) is a MalformedResponse.

Usage comes from the stream itself: with `stream_options.include_usage` the server sends one last
chunk with no choices and the whole request's token counts. A stream cut before that chunk has
reported no usage, and the caller estimates it; nothing here guesses.

Finish reasons are translated to fareway's vocabulary (Anthropic's words), so callers, traces and
clients see one set of stop reasons whichever provider answered.

When a call asks for log-probabilities (a cascade judging an answer), the request sets
`logprobs: true` and each text chunk carries the `logprob` of every token OpenAI lists in that
chunk's `choices[0].logprobs.content`. Servers that ignore the flag (or send entries without a
number) give chunks with no log-probabilities; that is never a failure.

Tools: the call's tools go out as `function` tools (`parameters`) and its choice as `tool_choice`
("required" is OpenAI's word for any). An assistant turn's calls become its `tool_calls` (content
null when it said nothing), and each TOOL turn a `tool` message naming the call it answers; a
text-only conversation is sent exactly as before tools existed. In the stream, each call arrives
as `delta.tool_calls` fragments that share an `index`: the first carries the call's id and name,
the rest append to its arguments. The calls are complete when the finish_reason arrives, and only
then are they yielded, one `ToolUse` each in index order (`providers.tool_calls`). Some servers
(Ollama, older vLLM) end an answer of tool calls with "stop"; an answer that called tools is
reported as "tool_use" whichever word ended it, so callers see one rule.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartParam,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallParam,
    ChatCompletionToolChoiceOptionParam,
    ChatCompletionToolParam,
    ChatCompletionUserMessageParam,
)
from openai.types.shared_params import FunctionDefinition

from fareway.core.content import Message, Role, Tool, ToolCall, ToolChoice, ToolChoiceMode
from fareway.core.errors import ProviderError, ProviderUnreachable
from fareway.providers import errors, sse
from fareway.providers.base import (
    Finish,
    ProviderCall,
    ProviderEvent,
    TextChunk,
    ToolUse,
    UsageReport,
)
from fareway.providers.registry import MaxTokensField
from fareway.providers.tool_calls import PendingCall


class OpenAIProvider:
    """Streams from `POST {base_url}/chat/completions` on any server that speaks OpenAI's API."""

    genai_name = "openai"
    simulated = False

    def __init__(
        self,
        api_key: str,
        base_url: str,
        timeout_s: float = 600.0,
        name: str = "openai",
        max_tokens_field: MaxTokensField = "max_tokens",
    ) -> None:
        self.name = name
        # The output limit goes in the classic `max_tokens` field by default. OpenAI deprecated
        # it for `max_completion_tokens`, but `max_tokens` is the one field every compatible
        # server honours (vLLM takes both; Ollama and LM Studio read only `max_tokens`), and
        # Ollama silently ignores `max_completion_tokens`, which would leave the answer
        # unbounded and break the cost reservation made from `max_tokens` (F18). OpenAI's own
        # reasoning models reject `max_tokens`: configure `max_completion_tokens` for those.
        self._max_tokens_field = max_tokens_field
        # fareway does its own retries and fallbacks across models, so the SDK must not retry.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
        self.server_address = self._client.base_url.host

    async def stream(self, call: ProviderCall) -> AsyncGenerator[ProviderEvent, None]:
        """Yield text, complete tool calls and usage as the stream delivers them; raise
        ProviderError on failure."""
        model = call.model.id
        limit = call.max_tokens
        by_new_name = self._max_tokens_field == "max_completion_tokens"
        finish_reason = ""
        response_id = response_model = ""
        pending: dict[int, PendingCall] = {}  # tool calls still streaming, by their index
        called = False  # the answer called tools
        try:
            # Leaving these blocks, normally or through `aclose()` at a `yield`, closes the
            # response and with it the upstream connection.
            async with (
                self._client.chat.completions.with_streaming_response.create(
                    model=call.model.provider_model_id,
                    messages=_messages(call.system, call.messages),
                    max_tokens=openai.omit if by_new_name else limit,
                    max_completion_tokens=limit if by_new_name else openai.omit,
                    stream=True,
                    stream_options={"include_usage": True},
                    logprobs=True if call.logprobs else openai.omit,
                    tools=[_tool(t) for t in call.tools] if call.tools else openai.omit,
                    tool_choice=_tool_choice(call.tool_choice, bool(call.tools)),
                    timeout=call.timeout_s if call.timeout_s is not None else openai.not_given,
                ) as raw,
                contextlib.aclosing(sse.events(raw.http_response, done="[DONE]")) as events,
            ):
                async for _, data in events:
                    chunk = json.loads(data)
                    if chunk.get("error"):
                        raise _stream_error(chunk["error"], model)
                    response_id = response_id or chunk["id"]
                    response_model = response_model or chunk["model"]
                    usage = chunk.get("usage")
                    if usage is not None:
                        yield UsageReport(usage["prompt_tokens"], usage["completion_tokens"])
                    for choice in chunk["choices"]:
                        if choice["index"] != 0:
                            continue  # only one choice is asked for
                        delta = choice["delta"]
                        if content := delta.get("content"):
                            logprobs = _logprobs(choice) if call.logprobs else ()
                            yield TextChunk(content, logprobs)
                        for fragment in delta.get("tool_calls") or ():
                            _collect(pending, fragment)
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
                            for index in sorted(pending):
                                try:
                                    tool = pending.pop(index).complete(model)
                                except ProviderError:
                                    if finish_reason == "length":
                                        continue  # cut by max_tokens: dropped (tool_calls.py)
                                    raise
                                called = True
                                yield ToolUse(tool)
        except (openai.APIError, httpx2.RequestError) as exc:
            # The SDK wraps transport errors while sending; reading the open stream raises the
            # raw httpx2 ones.
            raise _translate(exc, model) from exc
        except errors.MALFORMED_STREAM_ERRORS as exc:
            raise errors.malformed_stream(exc, model) from exc
        if not finish_reason:
            # Every compatible server ends an answer with a finish_reason; a body that ends
            # cleanly without one was cut short (a proxy giving up, say), not finished.
            raise ProviderUnreachable("stream ended without a finish_reason", model=model)
        stop_reason = _STOP_REASONS.get(finish_reason, finish_reason)
        if called and finish_reason != "length":
            stop_reason = "tool_use"
        yield Finish(stop_reason, response_id, response_model)

    async def aclose(self) -> None:
        """Close the SDK's connection pool."""
        await self._client.close()


_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",  # the deprecated single-function form of tool_calls
    "content_filter": "refusal",
}


def _messages(system: str, messages: tuple[Message, ...]) -> list[ChatCompletionMessageParam]:
    """The conversation, with the system prompt as a leading `system` message when there is one."""
    out: list[ChatCompletionMessageParam] = []
    if system:
        out.append({"role": "system", "content": system})
    for message in messages:
        result = message.tool_result
        if result is not None:
            out.append({"role": "tool", "tool_call_id": result.call_id, "content": result.content})
        elif message.role is Role.USER:
            out.append(_user(message))
        else:
            out.append(_assistant(message))
    return out


def _user(message: Message) -> ChatCompletionUserMessageParam:
    """A user turn: plain text, or its images (as data URLs) then its text."""
    if not message.images:
        return {"role": "user", "content": message.text}
    parts: list[ChatCompletionContentPartParam] = [
        {
            "type": "image_url",
            "image_url": {
                "url": f"data:{image.media_type};base64,"
                + base64.b64encode(image.data).decode("ascii")
            },
        }
        for image in message.images
    ]
    if message.text:
        parts.append({"type": "text", "text": message.text})
    return {"role": "user", "content": parts}


def _assistant(message: Message) -> ChatCompletionAssistantMessageParam:
    """A model's turn: its text, and the tools it called (content null when it said nothing)."""
    if not message.tool_calls:
        return {"role": "assistant", "content": message.text}
    calls = [_call(c) for c in message.tool_calls]
    return {"role": "assistant", "content": message.text or None, "tool_calls": calls}


def _call(call: ToolCall) -> ChatCompletionMessageToolCallParam:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


def _tool(tool: Tool) -> ChatCompletionToolParam:
    # A tool's input is always an object; say so when the schema does not.
    schema = {"type": "object"} | dict(tool.input_schema)
    function: FunctionDefinition = {
        "name": tool.name,
        "description": tool.description,
        "parameters": schema,
    }
    return {"type": "function", "function": function}


def _tool_choice(
    choice: ToolChoice | None, has_tools: bool
) -> ChatCompletionToolChoiceOptionParam | openai.Omit:
    if choice is None or not has_tools:
        return openai.omit
    match choice.mode:
        case ToolChoiceMode.AUTO:
            return "auto"
        case ToolChoiceMode.ANY:
            return "required"
        case ToolChoiceMode.NONE:
            return "none"
        case ToolChoiceMode.TOOL:
            return {"type": "function", "function": {"name": choice.name}}


def _collect(pending: dict[int, PendingCall], fragment: dict[str, Any]) -> None:
    """Add one streamed fragment to the call of its index: the first brings the id and name,
    every one may bring argument text."""
    call = pending.setdefault(fragment["index"], PendingCall("", ""))
    call.id = call.id or fragment.get("id") or ""
    function = fragment.get("function")
    if function is not None:
        call.name = call.name or function.get("name") or ""
        if arguments := function.get("arguments"):
            call.fragments.append(arguments)


def _logprobs(choice: dict[str, Any]) -> tuple[float, ...]:
    """The log-probability of each token of this chunk's text, or () when the server sent none
    (or any entry without a number: a partial list would not line up with the tokens)."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content or not isinstance(content, list):
        return ()
    values = [token.get("logprob") if isinstance(token, dict) else None for token in content]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return ()
    return tuple(float(v) for v in values if v is not None)


def _translate(exc: openai.APIError | httpx2.RequestError, model: str) -> ProviderError:
    if isinstance(exc, httpx2.RequestError):
        return errors.transport_failure(exc, model)
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return errors.connection_failure(
            exc, model, timed_out=isinstance(exc, openai.APITimeoutError)
        )
    rate_limited = bool({exc.code, exc.type} & _RATE_LIMIT_WORDS)
    if isinstance(exc, openai.APIStatusError):
        retry_after = errors.retry_after_s(exc.response.headers)
        status: int | None = exc.status_code
    else:
        # An APIError with no status or headers (the SDK's stream object raises one for an
        # `error` chunk; `_stream_error` reads those here now): the status is in its `code`.
        retry_after = None
        status = _status_in_code(exc.code)
    return errors.status_failure(
        status,
        errors.describe(exc),
        model=model,
        retry_after_s=retry_after,
        rate_limited=rate_limited,
    )


def _stream_error(error: object, model: str) -> ProviderError:
    """An `error` chunk inside an open stream, read as the SDK reads one (which raised a bare
    APIError for it, with no status or headers). vLLM and OpenRouter put the HTTP status they
    mean in its `code`; OpenAI leaves it null."""
    code: str | None = None
    kind: object = None
    message: object = None
    if isinstance(error, dict):
        code = str(error["code"]) if error.get("code") is not None else None
        kind, message = error.get("type"), error.get("message")
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return errors.status_failure(
        _status_in_code(code),
        message,
        model=model,
        rate_limited=code in _RATE_LIMIT_WORDS
        or (isinstance(kind, str) and kind in _RATE_LIMIT_WORDS),
    )


# What OpenAI-compatible servers put in an error's `code` or `type` for a rate limit.
_RATE_LIMIT_WORDS = frozenset({"rate_limit_exceeded", "rate_limit_error", "RateLimitError"})


def _status_in_code(code: str | None) -> int | None:
    if code is not None and code.isdigit() and 400 <= int(code) <= 599:
        return int(code)
    return None
