"""Who is calling: API keys (stored as SHA-256 hashes) mapped to tenants or to the admin role.

The interceptor authenticates every fareway.v1 call before its handler runs and hands the
caller to the handler through `current_principal`. Health and reflection stay open.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from fareway.config.schema import FarewayConfig, KeySettings, sha256_hex
from fareway.core.clock import Clock
from fareway.core.errors import FarewayError, Unauthenticated
from fareway.server.status import abort

log = logging.getLogger(__name__)

PROTECTED_PREFIX = "/fareway.v1."
DEMO_KEYS = ("fareway-demo-key", "fareway-admin-key")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a tenant, or the admin (tenant "")."""

    tenant: str
    is_admin: bool = False


current_principal: ContextVar[Principal] = ContextVar("fareway_principal")


class KeyRing:
    """Maps the SHA-256 of an API key to its principal."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self._by_hash = dict(principals)

    @classmethod
    def from_config(cls, config: FarewayConfig, env: Mapping[str, str]) -> KeyRing:
        """Build from the configured hashes, letting each key's `env` variable override it."""
        principals: dict[str, Principal] = {}
        for name, tenant in config.tenants.items():
            for key in tenant.api_keys:
                principals[_resolve(key, env)] = Principal(name)
        for key in config.admin_keys:
            principals[_resolve(key, env)] = Principal("", is_admin=True)
        ring = cls(principals)
        for demo in DEMO_KEYS:
            if ring.lookup(demo) is not None:
                log.warning("the public demo key '%s' is accepted; replace it for real use", demo)
        return ring

    def lookup(self, key: str) -> Principal | None:
        """The principal for a raw key, or None."""
        return self._by_hash.get(sha256_hex(key))

    def authenticate(self, metadata: Any) -> Principal:
        """The caller named by `authorization: Bearer <key>` metadata, or Unauthenticated."""
        values = [v for k, v in (metadata or ()) if k == "authorization"]
        if not values:
            raise Unauthenticated("missing 'authorization: Bearer <api-key>' metadata")
        scheme, _, key = str(values[0]).partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("authorization metadata must be 'Bearer <api-key>'")
        principal = self.lookup(key.strip())
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal


def _resolve(key: KeySettings, env: Mapping[str, str]) -> str:
    if key.env and env.get(key.env):
        return sha256_hex(env[key.env])
    if key.sha256 is None:
        raise ValueError(f"API key variable ${key.env} is not set and no sha256 is configured")
    return key.sha256


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates fareway.v1 calls and sets `current_principal` for their handlers."""

    def __init__(self, keys: KeyRing, clock: Clock) -> None:
        self._keys = keys
        self._clock = clock

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
                self._guard_unary(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._guard_stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        try:
            current_principal.set(self._keys.authenticate(context.invocation_metadata()))
        except FarewayError as error:
            await abort(context, error, self._clock.now())

    def _guard_unary(self, behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await self._authenticate(context)
            return await behaviour(request, context)

        return guarded

    def _guard_stream(
        self, behaviour: Callable[..., AsyncGenerator[Any, None]]
    ) -> Callable[..., Any]:
        async def guarded(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncGenerator[Any, None]:
            await self._authenticate(context)
            async with aclosing(behaviour(request, context)) as items:
                async for item in items:
                    yield item

        return guarded
