"""What runs around every fareway.v1 handler: its server span, then authentication.

Health and reflection pass through untouched. The caller reaches the handler through
`auth.current_principal`; the span ends with the call's gRPC status code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.trace import Span

from fareway.core.clock import Clock
from fareway.core.errors import FarewayError
from fareway.server.auth import KeyRing, current_principal
from fareway.server.status import abort
from fareway.telemetry import names
from fareway.telemetry.tracing import Tracing, mark_failed

PROTECTED_PREFIX = "/fareway.v1."


class RequestInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Traces and authenticates fareway.v1 calls."""

    def __init__(self, keys: KeyRing, clock: Clock, tracing: Tracing) -> None:
        self._keys = keys
        self._clock = clock
        self._tracing = tracing

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(PROTECTED_PREFIX):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(details.method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(details.method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _wrap_unary(
        self, method: str, behaviour: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Any]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with self._call_span(method, context):
                await self._authenticate(context)
                return await behaviour(request, context)

        return wrapped

    def _wrap_stream(
        self, method: str, behaviour: Callable[..., Awaitable[None]]
    ) -> Callable[..., Any]:
        # fareway's streaming handlers write with context.write (see RouterService.Generate),
        # so the wrapper is a coroutine too and cancellation reaches the handler's frames.
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> None:
            with self._call_span(method, context):
                await self._authenticate(context)
                await behaviour(request, context)

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


def _status_of(error: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
