"""HTTP failures to fareway's provider error kinds, shared by the SDK-backed providers (F10).

Fallbacks and the circuit breaker decide by error kind, so an upstream that fails the same way
must raise the same `ProviderError` whichever SDK reached it. Each provider module still knows
its own SDK's exception classes and error-body vocabulary; what they share lives here: the raw
httpx2 transport errors (both SDKs are built on httpx2), the status-code classification, and
reading `Retry-After`.
"""

from __future__ import annotations

import math

import httpx2

from fareway.core.errors import (
    MalformedResponse,
    Overloaded,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)


def describe(exc: Exception) -> str:
    """The message an error carries, or its class name when it has none."""
    return str(exc) or type(exc).__name__


def connection_failure(exc: Exception, model: str, *, timed_out: bool) -> ProviderError:
    """The upstream did not answer in time, or could not be reached or read from at all."""
    if timed_out:
        return ProviderTimeout(describe(exc), model=model)
    return ProviderUnreachable(describe(exc), model=model)


def transport_failure(exc: httpx2.RequestError, model: str) -> ProviderError:
    """A raw httpx2 error: what an SDK lets through unwrapped once a stream is open."""
    if isinstance(exc, httpx2.TransportError):  # timeouts included
        return connection_failure(exc, model, timed_out=isinstance(exc, httpx2.TimeoutException))
    return ProviderError(describe(exc), model=model)  # a body that cannot be decoded, redirects


def status_failure(
    status: int | None,
    message: str,
    *,
    model: str,
    retry_after_s: float | None = None,
    rate_limited: bool = False,
    overloaded: bool = False,
) -> ProviderError:
    """An error the upstream reported: an HTTP status, or an error inside an open stream.

    `status` is None or below 400 when the error arrived inside a 200 stream; that is the
    upstream failing mid-answer, not a refusal of the request. `rate_limited` and `overloaded`
    carry what the provider's error body says, which decides as much as the status does.
    """
    if status == 429 or rate_limited:
        return RateLimited(message, model=model, retry_after_s=retry_after_s)
    if status is None or status >= 500 or status < 400 or overloaded:
        return Overloaded(message, model=model, retry_after_s=retry_after_s)
    return ProviderRejected(message, model=model)


# What a response that is not the API's wire format raises as the SDKs read it: a `data:` line
# that is not JSON (`json.JSONDecodeError`, a ValueError), or JSON of the wrong shape, which the
# SDKs build into objects without validating and which then fails where it is read (a
# TypeError, AttributeError, KeyError or IndexError, in the SDK's stream helpers or ours).
MALFORMED_STREAM_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError)


def malformed_stream(exc: Exception, model: str) -> ProviderError:
    """The upstream sent something that is not the API's wire format: a provider failure like
    any other (fallback before the first token, ABORTED after it, counted by the breaker),
    never an internal error of fareway's."""
    return MalformedResponse(
        f"malformed response from the upstream: {type(exc).__name__}: {describe(exc)}",
        model=model,
    )


def malformed_tool_call(name: str, call_id: str, reason: str, model: str) -> ProviderError:
    """The upstream streamed a tool call that cannot be run (its argument fragments do not make
    a JSON object, say): a malformed response, naming the tool and the call."""
    return MalformedResponse(
        f"malformed tool call from the upstream: {name or '?'} ({call_id or 'no id'}): {reason}",
        model=model,
    )


def retry_after_s(headers: httpx2.Headers) -> float | None:
    """`Retry-After` in seconds, when it is a number of seconds (None otherwise)."""
    value = headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None
