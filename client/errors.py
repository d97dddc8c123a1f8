"""The exceptions the client raises: one class per gRPC status code the fareway API uses.

    FarewayError               any failed call: .code (grpc.StatusCode), .message, .details
    ├── InvalidArgument        INVALID_ARGUMENT: malformed request or budget;
    │                          .field_violations {field: description} (google.rpc.BadRequest)
    ├── Unauthenticated        UNAUTHENTICATED: no API key, or an unknown one
    ├── PermissionDenied       PERMISSION_DENIED: a tenant key on an admin method, or another
    │                          tenant's budget
    ├── ResourceExhausted      RESOURCE_EXHAUSTED with a google.rpc.QuotaFailure: a hard
    │                          budget cap, a rate limit, or no model fits the request's cost
    │                          ceiling; .quota_violations {subject: description},
    │                          .retry_after (until the window resets)
    │   └── ServerBusy         ...on "server:max_streams": the server process is serving its
    │                          bound of concurrent streams; .retry_after (when a slot is
    │                          likely free; retry then, or on another replica)
    ├── TransportLimitExceeded RESOURCE_EXHAUSTED without a QuotaFailure: a gRPC transport
    │                          limit, not a budget (a message or its metadata larger than the
    │                          client or server accepts); retrying the same call will not help
    ├── Unavailable            UNAVAILABLE: every candidate model failed (or the server cannot
    │                          be reached); .reason, .domain, .metadata (google.rpc.ErrorInfo),
    │                          .retry_after (the provider's Retry-After)
    ├── Aborted                ABORTED: a provider failed after tokens were streamed (the
    │                          partial answer is billed); .reason, .domain, .metadata
    ├── DeadlineExceeded       DEADLINE_EXCEEDED: the call's timeout passed
    └── UnexpectedStatus       any other code (INTERNAL, UNIMPLEMENTED, CANCELLED, ...)

`.details` holds every google.rpc detail the server attached, unpacked (BadRequest,
QuotaFailure, RetryInfo, ErrorInfo, ...); `.retry_after` is a timedelta on every class, None
unless the server sent RetryInfo. `from_rpc_error` is the one place a grpc.RpcError becomes one
of these.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"

# The QuotaFailure subject of a refusal for load (the server's `server.max_streams`).
SERVER_BUSY_SUBJECT = "server:max_streams"

# The google.rpc detail types unpacked into `.details`; others stay packed as `Any`.
_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.QuotaFailure,
    error_details_pb2.RetryInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)

M = TypeVar("M", bound=Message)


class FarewayError(Exception):
    """A call failed with a non-OK gRPC status."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: tuple[Message, ...] = ()
    ) -> None:
        super().__init__(code, message, details)  # all three, so that pickling round-trips
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def detail(self, kind: type[M]) -> M | None:
        """The first detail of this google.rpc type, if the server sent one."""
        for found in self.details:
            if isinstance(found, kind):
                return found
        return None

    @property
    def retry_after(self) -> timedelta | None:
        """How long to wait before retrying, when the server said (google.rpc.RetryInfo)."""
        info = self.detail(error_details_pb2.RetryInfo)
        if info is None:
            return None
        return timedelta(microseconds=info.retry_delay.ToMicroseconds())


class InvalidArgument(FarewayError):
    """The request (or the budget to set) is malformed; see `field_violations`."""

    @property
    def field_violations(self) -> dict[str, str]:
        """Field path (for example "messages[0].role") to what is wrong with it."""
        found: dict[str, str] = {}
        bad = self.detail(error_details_pb2.BadRequest)
        for violation in bad.field_violations if bad is not None else ():
            found[violation.field] = _joined(found.get(violation.field), violation.description)
        return found


class Unauthenticated(FarewayError):
    """No API key, or one the server does not know."""


class PermissionDenied(FarewayError):
    """The key may not do this: an admin method with a tenant key, another tenant's budget."""


class ResourceExhausted(FarewayError):
    """A hard budget cap is reached, or no model fits the request's cost ceiling."""

    @property
    def quota_violations(self) -> dict[str, str]:
        """Subject (for example "tenant:acme") to what was exceeded."""
        found: dict[str, str] = {}
        quota = self.detail(error_details_pb2.QuotaFailure)
        for violation in quota.violations if quota is not None else ():
            found[violation.subject] = _joined(found.get(violation.subject), violation.description)
        return found


class ServerBusy(ResourceExhausted):
    """The server process was serving its bound of concurrent streams (`server.max_streams`)
    and refused the call before doing any work: nothing was routed or billed. Retry after
    `.retry_after` (a short estimate of when a stream ends), or on another replica."""


class TransportLimitExceeded(FarewayError):
    """gRPC itself refused the call for its size (RESOURCE_EXHAUSTED with no QuotaFailure): a
    request or reply above a message size limit, or trailers above the metadata limit. Not a
    budget refusal, so it is not a ResourceExhausted; make the request smaller (or raise the
    limit) instead of waiting."""


class _ProviderFailure(FarewayError):
    """A model provider failed; google.rpc.ErrorInfo says how."""

    @property
    def reason(self) -> str:
        """The failure kind in UPPER_SNAKE_CASE (for example "RATE_LIMITED"); may be empty."""
        info = self.detail(error_details_pb2.ErrorInfo)
        return info.reason if info is not None else ""

    @property
    def domain(self) -> str:
        """Who defined `reason` (fareway's is "fareway.dev")."""
        info = self.detail(error_details_pb2.ErrorInfo)
        return info.domain if info is not None else ""

    @property
    def metadata(self) -> dict[str, str]:
        """More about the failure (fareway sends "model" and "error")."""
        info = self.detail(error_details_pb2.ErrorInfo)
        return dict(info.metadata) if info is not None else {}


class Unavailable(_ProviderFailure):
    """Every candidate failed before its first token, or the server cannot be reached."""


class Aborted(_ProviderFailure):
    """A provider failed after tokens were streamed; the partial answer is still billed."""


class DeadlineExceeded(FarewayError):
    """The call's timeout passed."""


class UnexpectedStatus(FarewayError):
    """A status code fareway's API does not document (INTERNAL, UNIMPLEMENTED, ...)."""


_BY_CODE: dict[grpc.StatusCode, type[FarewayError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_rpc_error(error: grpc.RpcError) -> FarewayError:
    """The FarewayError for a failed call (sync or asyncio), with its rich details unpacked
    from the `grpc-status-details-bin` trailer."""
    code = _call(error, "code") or grpc.StatusCode.UNKNOWN
    message = _call(error, "details") or ""
    details = _details(_call(error, "trailing_metadata") or ())
    kind = _BY_CODE.get(code, UnexpectedStatus)
    # fareway attaches a QuotaFailure to every budget, rate and ceiling refusal; gRPC's own
    # RESOURCE_EXHAUSTED (a size limit of the transport) carries none.
    if kind is ResourceExhausted:
        kind = _exhausted_kind(details)
    return kind(code, message, details)


def _exhausted_kind(details: tuple[Message, ...]) -> type[FarewayError]:
    """Which RESOURCE_EXHAUSTED: fareway's refusal for load, for budget, rate or ceiling (a
    QuotaFailure either way), or gRPC's own size limit (none)."""
    quotas = [d for d in details if isinstance(d, error_details_pb2.QuotaFailure)]
    if not quotas:
        return TransportLimitExceeded
    subjects = {v.subject for quota in quotas for v in quota.violations}
    return ServerBusy if SERVER_BUSY_SUBJECT in subjects else ResourceExhausted


def _call(error: grpc.RpcError, method: str) -> Any:
    # grpc.RpcError itself declares nothing; the errors grpc raises are also grpc.Call-like.
    accessor = getattr(error, method, None)
    return accessor() if callable(accessor) else None


def _details(trailers: Any) -> tuple[Message, ...]:
    for key, value in trailers:
        if key == DETAILS_KEY:
            try:
                status = status_pb2.Status.FromString(value)
            except DecodeError:
                return ()
            return tuple(_unpack(packed) for packed in status.details)
    return ()


def _unpack(packed: any_pb2.Any) -> Message:
    for kind in _DETAIL_TYPES:
        message = kind()
        if packed.Unpack(message):  # False, and nothing read, when the type differs
            return message
    return packed


def _joined(before: str | None, description: str) -> str:
    return description if before is None else f"{before}; {description}"
