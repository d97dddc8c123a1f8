"""`from_rpc_error`: the class for each status code, and the rich details read off the trailer.

The end-to-end tests (test_client_sync.py, test_client_aio.py) raise these from a real server;
here the trailer is built by hand, to reach what a fareway server never sends."""

from __future__ import annotations

import pickle
from datetime import timedelta

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from fareway.client import (
    Aborted,
    DeadlineExceeded,
    FarewayError,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    ServerBusy,
    TransportLimitExceeded,
    Unauthenticated,
    Unavailable,
    UnexpectedStatus,
    from_rpc_error,
)


class FailedCall(grpc.RpcError):  # type: ignore[misc]
    """What grpc raises for a failed call: an RpcError that also answers as a grpc.Call."""

    def __init__(
        self, code: grpc.StatusCode, message: str, trailers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        self._code, self._message, self._trailers = code, message, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


def failed(code: grpc.StatusCode, *details: Message) -> FailedCall:
    status = status_pb2.Status(code=code.value[0], message="what to fix")
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    trailers = (("x-other", b"1"), ("grpc-status-details-bin", status.SerializeToString()))
    return FailedCall(code, "what to fix", trailers)


def retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromTimedelta(timedelta(seconds=seconds))
    return error_details_pb2.RetryInfo(retry_delay=delay)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, TransportLimitExceeded),  # no QuotaFailure
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.ABORTED, Aborted),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.INTERNAL, UnexpectedStatus),
        (grpc.StatusCode.UNIMPLEMENTED, UnexpectedStatus),
    ],
)
def test_each_code_has_its_class(code: grpc.StatusCode, kind: type[FarewayError]) -> None:
    error = from_rpc_error(FailedCall(code, "what to fix"))

    assert type(error) is kind
    assert isinstance(error, FarewayError)
    assert (error.code, error.message, error.details) == (code, "what to fix", ())
    assert str(error) == f"{code.name}: what to fix"
    assert error.retry_after is None


def test_bad_request_becomes_field_violations() -> None:
    Violation = error_details_pb2.BadRequest.FieldViolation
    bad = error_details_pb2.BadRequest(
        field_violations=[
            Violation(field="max_tokens", description="must be greater than 0"),
            Violation(field="messages", description="must not be empty"),
            Violation(field="messages", description="must end with a user turn"),
        ]
    )
    error = from_rpc_error(failed(grpc.StatusCode.INVALID_ARGUMENT, bad))

    assert isinstance(error, InvalidArgument)
    assert error.field_violations == {
        "max_tokens": "must be greater than 0",
        "messages": "must not be empty; must end with a user turn",
    }
    assert error.details == (bad,)


def test_quota_failure_and_retry_info_become_violations_and_retry_after() -> None:
    quota = error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(subject="tenant:acme", description="day cap")
        ]
    )
    error = from_rpc_error(failed(grpc.StatusCode.RESOURCE_EXHAUSTED, quota, retry_info(3600.25)))

    assert isinstance(error, ResourceExhausted)
    assert not isinstance(error, ServerBusy), "a budget refusal, not one for load"
    assert error.quota_violations == {"tenant:acme": "day cap"}
    assert error.retry_after == timedelta(hours=1, milliseconds=250)


def test_a_refusal_for_load_is_server_busy_with_its_retry_hint() -> None:
    quota = error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(
                subject="server:max_streams", description="at its limit of 256 streams"
            )
        ]
    )
    error = from_rpc_error(failed(grpc.StatusCode.RESOURCE_EXHAUSTED, quota, retry_info(0.25)))

    assert isinstance(error, ServerBusy)
    assert isinstance(error, ResourceExhausted), "callers catching ResourceExhausted see it too"
    assert error.quota_violations == {"server:max_streams": "at its limit of 256 streams"}
    assert error.retry_after == timedelta(milliseconds=250)
    assert pickle.loads(pickle.dumps(error)).retry_after == error.retry_after


def test_resource_exhausted_without_quota_failure_is_a_transport_limit() -> None:
    # What grpc itself reports when a reply's trailers are over the client's metadata limit.
    stream_removed = FailedCall(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Stream removed (received metadata size exceeds hard limit (18510 vs. 16384))",
    )
    too_large = from_rpc_error(stream_removed)
    with_retry_only = from_rpc_error(failed(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_info(1)))

    for error in (too_large, with_retry_only):
        assert isinstance(error, TransportLimitExceeded)
        assert not isinstance(error, ResourceExhausted), "not a budget refusal"
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "metadata size" in too_large.message


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED])
def test_error_info_becomes_reason_and_metadata(code: grpc.StatusCode) -> None:
    info = error_details_pb2.ErrorInfo(
        reason="RATE_LIMITED", domain="fareway.dev", metadata={"model": "fast-1"}
    )
    error = from_rpc_error(failed(code, info, retry_info(7)))

    assert isinstance(error, Unavailable | Aborted)
    assert (error.reason, error.domain, error.metadata) == (
        "RATE_LIMITED",
        "fareway.dev",
        {"model": "fast-1"},
    )
    assert error.retry_after == timedelta(seconds=7)


def test_without_error_info_the_reason_is_empty() -> None:
    error = from_rpc_error(FailedCall(grpc.StatusCode.UNAVAILABLE, "failed to connect"))

    assert isinstance(error, Unavailable)
    assert (error.reason, error.domain, error.metadata) == ("", "", {})


def test_unknown_details_stay_packed_and_a_broken_trailer_is_ignored() -> None:
    unknown = status_pb2.Status(code=5)  # a type this client does not unpack
    error = from_rpc_error(failed(grpc.StatusCode.INTERNAL, unknown))
    (packed,) = error.details
    assert isinstance(packed, any_pb2.Any)
    assert packed.Is(status_pb2.Status.DESCRIPTOR)

    broken = FailedCall(
        grpc.StatusCode.INTERNAL, "oops", (("grpc-status-details-bin", b"\xff\xff"),)
    )
    assert from_rpc_error(broken).details == ()


def test_a_bare_rpc_error_is_unknown() -> None:
    error = from_rpc_error(grpc.RpcError())

    assert isinstance(error, UnexpectedStatus)
    assert (error.code, error.message) == (grpc.StatusCode.UNKNOWN, "")


def test_errors_survive_pickling() -> None:
    info = error_details_pb2.ErrorInfo(reason="OVERLOADED", metadata={"model": "fast-1"})
    error = from_rpc_error(failed(grpc.StatusCode.UNAVAILABLE, info))

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is Unavailable
    assert (copy.code, copy.message, copy.details, str(copy)) == (
        error.code,
        error.message,
        error.details,
        str(error),
    )
