"""Who is calling: API keys (stored as SHA-256 hashes) mapped to tenants or to the admin role.

`server.interceptor` authenticates every fareway.v1 call before its handler runs and hands the
caller to the handler through `current_principal`. Health and reflection stay open.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fareway.config.schema import FarewayConfig, KeySettings, sha256_hex
from fareway.core.errors import Unauthenticated

log = logging.getLogger(__name__)

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
