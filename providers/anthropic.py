"""Anthropic through the official SDK's Messages streaming API (F12).

Usage comes from the stream itself: `message_start` carries the input tokens and
`message_delta` the cumulative output tokens, so a stream cut short still reports what it used.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anthropic
import httpx2
from anthropic.types import MessageParam

from fareway.core.content import Message, Role
from fareway.core.errors import ProviderError
from fareway.providers import errors
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, UsageReport


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
        """Yield text and usage as the stream delivers them; raise ProviderError on failure."""
        input_tokens = 0
        response_id = response_model = ""
        try:
            # Anthropic reports no log-probabilities: `call.logprobs` is ignored here.
            async with self._client.messages.stream(
                model=call.model.provider_model_id,
                max_tokens=call.max_tokens,
                messages=[_message(m) for m in call.messages],
                system=call.system or anthropic.omit,
                timeout=call.timeout_s if call.timeout_s is not None else anthropic.not_given,
            ) as stream:
                stop_reason = ""
                async for event in stream:
                    if event.type == "message_start":
                        response_id = event.message.id
                        response_model = event.message.model
                        input_tokens = event.message.usage.input_tokens
                        yield UsageReport(input_tokens, event.message.usage.output_tokens)
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield TextChunk(event.delta.text)
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason or ""
                        yield UsageReport(input_tokens, event.usage.output_tokens)
                yield Finish(stop_reason or "end_turn", response_id, response_model)
        except (anthropic.APIError, httpx2.RequestError) as exc:
            # The SDK wraps transport errors only while sending; once the stream is open, a read
            # timeout or a dropped connection surfaces as the raw httpx2 error.
            raise _translate(exc, call.model.id) from exc
        except errors.MALFORMED_STREAM_ERRORS as exc:
            raise errors.malformed_stream(exc, call.model.id) from exc

    async def aclose(self) -> None:
        """Close the SDK's connection pool."""
        await self._client.close()


def _message(message: Message) -> MessageParam:
    if message.role is Role.USER:
        return {"role": "user", "content": message.text}
    return {"role": "assistant", "content": message.text}


def _translate(exc: anthropic.APIError | httpx2.RequestError, model: str) -> ProviderError:
    if isinstance(exc, httpx2.RequestError):
        return errors.transport_failure(exc, model)
    if isinstance(exc, anthropic.APIConnectionError):
        return errors.connection_failure(
            exc, model, timed_out=isinstance(exc, anthropic.APITimeoutError)
        )
    if not isinstance(exc, anthropic.APIStatusError):
        return ProviderError(errors.describe(exc), model=model)
    # An `error` event inside an open stream arrives with the stream's 200 status, so the error
    # type in the body decides as much as the status code does.
    kind = _error_type(exc)
    return errors.status_failure(
        exc.status_code,
        errors.describe(exc),
        model=model,
        retry_after_s=errors.retry_after_s(exc.response.headers),
        rate_limited=kind == "rate_limit_error",
        overloaded=kind in _OVERLOAD_TYPES,
    )


_OVERLOAD_TYPES = frozenset({"overloaded_error", "api_error"})


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("type", ""))
    return ""
