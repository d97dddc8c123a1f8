"""What runs around every fareway.v1 handler: its server span, authentication, then the body.

Health and reflection pass through untouched. The caller reaches the handler through
`auth.current_principal`; the span ends with the call's gRPC status code.

gRPC decodes a request before any handler or interceptor code runs, and a body that does not
decode would fail there: UNKNOWN with an internal class name, a traceback in the log, and
before the key is checked. So each fareway.v1 handler's deserializer is wrapped to never raise:
a body over `max_request_bytes`, or one that does not decode, becomes an `Undecodable` marker,
and the wrapped handler authenticates first, then refuses the marker as INVALID_ARGUMENT on
the field "body" with one line in the log.

A large body (over LARGE_BODY_BYTES) is not parsed by the deserializer at all: the handler
parses it after authentication (an unknown caller costs no parse) and in a turn of the event
loop of its own, so that receiving, parsing and decoding a multi-megabyte request are separate
steps between which other callers' small requests are served.

Those steps still use the event loop, and callers that send large requests back to back could
keep it busy all the time, so large requests take turns through one `FairShare`: one step at a
time, and after a step that took t, the next starts t later. Large requests then use at most
half of the event loop, whatever their number; small ones are served in the other half. The
parse takes its turn here; the handler finds the same FairShare in `large_request` for its
own steps (decoding and routing), and None for a small request.

Generate and Complete also take a slot of the process's `Admission` (`server.admission`) for
their whole run, right after authentication and before a large body is parsed, the request
routed or anything held in the ledger: a server at `server.max_streams` refuses them at once
with ServerBusy. The
Admission is the process's, handed in by `start_server`, so it outlives configuration reloads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Error as ProtobufError
from opentelemetry.trace import Span

from fareway.core.clock import Clock
from fareway.core.errors import FarewayError, InvalidRequest, ServerBusy
from fareway.routing.echo import echo
from fareway.server.admission import BOUNDED_METHODS, Admission
from fareway.server.auth import KeyRing, current_principal
from fareway.server.status import abort
from fareway.telemetry import names
from fareway.telemetry.tracing import Tracing, mark_failed

log = logging.getLogger(__name__)

PROTECTED_PREFIX = "/fareway.v1."
LIMIT_SETTING = "server.max_request_bytes"
# Parsing this many bytes takes a few hundred microseconds; larger bodies get a turn of their own.
LARGE_BODY_BYTES = 256 * 1024

Deserializer = Callable[[bytes], Any]


class FairShare:
    """Turns for CPU-heavy steps of large requests: one at a time, and at most half the time
    (after a step that took t, the turn is held t longer), timed and held with the injected
    clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Run the body as one step, in its turn."""
        async with self._lock:
            await asyncio.sleep(0)  # a turn of the event loop of its own, even when uncontended
            started = self._clock.monotonic()
            try:
                yield
            finally:
                await self._clock.sleep(max(0.0, self._clock.monotonic() - started))


# In a handler whose request body was large (over LARGE_BODY_BYTES): the FairShare its steps
# take turns through. None for other requests.
large_request: ContextVar[FairShare | None] = ContextVar("fareway_large_request", default=None)


@dataclass(frozen=True)
class Undecodable:
    """What a wrapped deserializer returns for a body it refuses: why, in one line."""

    problem: str  # what the caller is told, after the field name "body"
    cause: str = ""  # for the log only (the parser's own words)


@dataclass(frozen=True)
class _Deferred:
    """A large body, to be parsed by the handler (see the module docstring)."""

    raw: bytes
    parse: Deserializer  # never raises: the message, or an Undecodable


class RequestInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Traces and authenticates fareway.v1 calls, admits streams through `admission`, and
    refuses bodies that are too large or do not decode (after authentication).
    `max_request_bytes` None leaves the size to gRPC; `admission` None bounds no stream."""

    def __init__(
        self,
        keys: KeyRing,
        clock: Clock,
        tracing: Tracing,
        *,
        max_request_bytes: int | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._tracing = tracing
        self._max_request_bytes = max_request_bytes
        self._admission = admission
        self._fair_share = FairShare(clock)
        # Per method: (the registered handler, the handler that wraps it).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(PROTECTED_PREFIX):
            return handler
        # gRPC asks for every call; the registered handler is the same object each time, so
        # its wrapped twin is built once (and again only if the handler changes).
        known = self._wrapped.get(details.method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(details.method, handler)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        deserializer = self._tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _tolerant(self, deserializer: Deserializer | None) -> Deserializer:
        """`deserializer`, except that it returns an Undecodable instead of raising, and
        refuses a body over the size limit before parsing it."""
        limit = self._max_request_bytes
        # The generated deserializers are `<Message>.FromString`: name the message they expect.
        descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
        expected = getattr(descriptor, "full_name", "serialized request message")

        def parse(raw: bytes) -> Any:
            if deserializer is None:
                return raw
            try:
                return deserializer(raw)
            except ProtobufError as error:
                return Undecodable(f"does not decode as a {expected}", cause=str(error))

        def deserialize(raw: bytes) -> Any:
            if limit is not None and len(raw) > limit:
                return Undecodable(
                    f"the request is {len(raw)} bytes, above the limit of {limit} bytes "
                    f"({LIMIT_SETTING})"
                )
            return _Deferred(raw, parse) if len(raw) > LARGE_BODY_BYTES else parse(raw)

        return deserialize

    def _wrap_unary(
        self, method: str, behaviour: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Any]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with self._call_span(method, context):
                await self._authenticate(context)
                with await self._admit(method, context):
                    return await behaviour(await self._request(method, request, context), context)

        return wrapped

    def _wrap_stream(
        self, method: str, behaviour: Callable[..., Awaitable[None]]
    ) -> Callable[..., Any]:
        # fareway's streaming handlers write with context.write (see RouterService.Generate),
        # so the wrapper is a coroutine too and cancellation reaches the handler's frames.
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> None:
            with self._call_span(method, context):
                await self._authenticate(context)
                with await self._admit(method, context):
                    await behaviour(await self._request(method, request, context), context)

        return wrapped

    @contextmanager
    def _call_span(self, method: str, context: grpc.aio.ServicerContext) -> Iterator[Span]:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        with self._tracing.server_span(method, metadata) as span:
            try:
                yield span
            except BaseException as error:
                code = _status_of(error, context)
                span.set_attribute(names.RPC_GRPC_STATUS_CODE, code.value[0])
                mark_failed(span, code.name, context.details() or type(error).__name__)
                raise
            span.set_attribute(names.RPC_GRPC_STATUS_CODE, grpc.StatusCode.OK.value[0])

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        try:
            current_principal.set(self._keys.authenticate(context.invocation_metadata()))
        except FarewayError as error:
            await abort(context, error, self._clock.now())

    async def _admit(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> AbstractContextManager[object]:
        """The call's slot, to hold for its whole run (nothing for calls that take none);
        refuses the call with ServerBusy when the process has no slot free."""
        if self._admission is None or method not in BOUNDED_METHODS:
            return nullcontext()
        try:
            # No await between taking the slot and the caller's `with`: a cancellation cannot
            # fall in between and leak it.
            return self._admission.admit()
        except ServerBusy as error:
            await abort(context, error, self._clock.now())

    async def _request(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """The handler's request: a large body parsed now, in a turn of the event loop of its
        own; a body that is too large or does not decode refused."""
        if isinstance(request, _Deferred):
            large_request.set(self._fair_share)
            async with self._fair_share.turn():  # the receive had its turn; the parse takes one
                request = request.parse(request.raw)
        if not isinstance(request, Undecodable):
            return request
        # One line, no traceback: a bad body is the caller's mistake, not the server's.
        cause = f" ({echo(request.cause, 200)})" if request.cause else ""
        log.info("refused the body of a call to %s: %s%s", method, request.problem, cause)
        await abort(context, InvalidRequest.single("body", request.problem), self._clock.now())


def _status_of(error: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
