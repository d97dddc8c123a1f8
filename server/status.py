"""The one place where fareway errors become gRPC statuses, with google.rpc rich details.

A status travels in the call's trailers, twice over: the message as `grpc-message`
(percent-encoded, so up to three bytes a byte) and the whole `google.rpc.Status`, message and
details, as `grpc-status-details-bin` (base64). gRPC clients refuse trailers above 8 KB by
default and report that as RESOURCE_EXHAUSTED, which would turn a caller's mistake into
something that looks like a spent budget. So whatever the error holds, the message is cut to
MAX_MESSAGE_BYTES, every string in a detail to MAX_DETAIL_TEXT_BYTES, and field violations stop
at MAX_VIOLATIONS_BYTES with one more saying how many were left out: about 5 KB on the wire at
worst. Values the caller sent are already short where they are echoed (`routing.echo`); these
bounds are the backstop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from fareway.core.errors import (
    AllCandidatesFailed,
    BudgetExceeded,
    FarewayError,
    FieldViolation,
    InvalidRequest,
    LedgerUnavailable,
    NoModelFits,
    PermissionDenied,
    ProviderError,
    RateLimitExceeded,
    ServerBusy,
    StreamBroken,
    Unauthenticated,
)
from fareway.routing.echo import ELLIPSIS

ERROR_DOMAIN = "fareway.dev"
# What a caller refused for an unreachable ledger is told to wait before retrying.
LEDGER_RETRY_S = 1.0
# The QuotaFailure subject of a refusal for load (`server.admission`): a server-wide limit.
SERVER_BUSY_SUBJECT = "server:max_streams"
MAX_MESSAGE_BYTES = 512
MAX_DETAIL_TEXT_BYTES = 256
MAX_VIOLATIONS_BYTES = 1536


def to_grpc_status(error: FarewayError, now: datetime) -> grpc.Status:
    """The status (code, one-line message, details in trailers) a caller receives for `error`."""
    code, details = _classify(error, now)
    message = status_pb2.Status(code=code, message=clip(str(error), MAX_MESSAGE_BYTES))
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        message.details.append(packed)
    return rpc_status.to_status(message)


def _classify(error: FarewayError, now: datetime) -> tuple[int, list[Message]]:
    if isinstance(error, InvalidRequest):
        return code_pb2.INVALID_ARGUMENT, [_bad_request(error.violations)]
    if isinstance(error, Unauthenticated):
        return code_pb2.UNAUTHENTICATED, []
    if isinstance(error, PermissionDenied):
        return code_pb2.PERMISSION_DENIED, []
    if isinstance(error, BudgetExceeded):
        details: list[Message] = [_quota_failure(f"tenant:{error.tenant}", str(error))]
        if error.resets_at is not None:
            details.append(_retry_info((error.resets_at - now).total_seconds()))
        return code_pb2.RESOURCE_EXHAUSTED, details
    if isinstance(error, RateLimitExceeded):
        return code_pb2.RESOURCE_EXHAUSTED, [
            _quota_failure(f"tenant:{error.tenant}:{error.limit}", str(error)),
            _retry_info(error.retry_after_s),
        ]
    if isinstance(error, ServerBusy):
        # A QuotaFailure, so that clients do not take it for gRPC's own size refusal.
        return code_pb2.RESOURCE_EXHAUSTED, [
            _quota_failure(SERVER_BUSY_SUBJECT, str(error)),
            _retry_info(error.retry_after_s),
        ]
    if isinstance(error, NoModelFits):
        return code_pb2.RESOURCE_EXHAUSTED, [_quota_failure("request:max_cost_micros", str(error))]
    if isinstance(error, AllCandidatesFailed):
        return code_pb2.UNAVAILABLE, _provider_details(error.last)
    if isinstance(error, StreamBroken):
        return code_pb2.ABORTED, _provider_details(error.cause)
    if isinstance(error, ProviderError):
        return code_pb2.UNAVAILABLE, _provider_details(error)
    if isinstance(error, LedgerUnavailable):
        return code_pb2.UNAVAILABLE, [_retry_info(LEDGER_RETRY_S)]
    return code_pb2.INTERNAL, []


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 (on a character boundary), with an
    ellipsis when it was cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - len(ELLIPSIS.encode())].decode(errors="ignore") + ELLIPSIS


def _bad_request(violations: Sequence[FieldViolation]) -> error_details_pb2.BadRequest:
    """Every violation while they fit in MAX_VIOLATIONS_BYTES, then one saying how many more."""
    bad = error_details_pb2.BadRequest()
    for shown, violation in enumerate(violations):
        entry = error_details_pb2.BadRequest.FieldViolation(
            field=clip(violation.field, MAX_DETAIL_TEXT_BYTES),
            description=clip(violation.description, MAX_DETAIL_TEXT_BYTES),
        )
        if bad.ByteSize() + entry.ByteSize() > MAX_VIOLATIONS_BYTES:
            left = len(violations) - shown
            bad.field_violations.add(
                field="request", description=f"{left} more violations not shown"
            )
            break
        bad.field_violations.append(entry)
    return bad


def _quota_failure(subject: str, description: str) -> error_details_pb2.QuotaFailure:
    violation = error_details_pb2.QuotaFailure.Violation(
        subject=clip(subject, MAX_DETAIL_TEXT_BYTES),
        description=clip(description, MAX_DETAIL_TEXT_BYTES),
    )
    return error_details_pb2.QuotaFailure(violations=[violation])


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(0, int(seconds * 1e9)))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _provider_details(error: ProviderError) -> list[Message]:
    info = error_details_pb2.ErrorInfo(
        reason=error.kind.upper(),
        domain=ERROR_DOMAIN,
        metadata={
            "model": clip(error.model, MAX_DETAIL_TEXT_BYTES),
            "error": clip(str(error), MAX_DETAIL_TEXT_BYTES),
        },
    )
    details: list[Message] = [info]
    if error.retry_after_s is not None:
        details.append(_retry_info(error.retry_after_s))
    return details


async def abort(context: grpc.aio.ServicerContext, error: FarewayError, now: datetime) -> NoReturn:
    """End the call with `error`'s status. Never returns: grpc's `abort` raises."""
    status = to_grpc_status(error, now)
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("grpc.aio ServicerContext.abort returned")
