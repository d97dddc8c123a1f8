"""Who is calling: API keys (stored as SHA-256 hashes) mapped to tenants or to the admin role.

`server.interceptor` authenticates every fareway.v1 call before its handler runs and hands the
caller to the handler through `current_principal`. Health and reflection stay open.

The embedded default accepts two public demo keys. `guard_demo_keys` refuses to serve them on
anything but a loopback address: they are printed in the README, so on a network they would
let anyone spend, or raise any tenant's caps with the admin one.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fareway.config.schema import FarewayConfig, KeySettings, sha256_hex
from fareway.core.errors import StartupError, Unauthenticated

log = logging.getLogger(__name__)

# The public demo keys of the embedded default, each with the variable that replaces it there.
DEMO_KEYS = {"fareway-demo-key": "FAREWAY_DEMO_KEY", "fareway-admin-key": "FAREWAY_ADMIN_KEY"}
ALLOW_DEMO_KEYS_FLAG = "--allow-demo-keys-on-network"


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
        """Build from the configured hashes, letting each key's `env` variable override it.
        Raises StartupError, naming the tenant and the variable, for a key that has neither."""
        principals: dict[str, Principal] = {}
        for name, tenant in config.tenants.items():
            for key in tenant.api_keys:
                principals[_resolve(key, env, f"tenant '{name}'")] = Principal(name)
        for key in config.admin_keys:
            principals[_resolve(key, env, "admin key")] = Principal("", is_admin=True)
        return cls(principals)

    def replace_keys(self, other: KeyRing) -> None:
        """Accept `other`'s keys from now on, in place: the interceptor holds this object, and
        a configuration reload changes who may call without rebuilding it."""
        self._by_hash = dict(other._by_hash)

    def demo_keys(self) -> list[str]:
        """The public demo keys this ring accepts."""
        return [demo for demo in DEMO_KEYS if self.lookup(demo) is not None]

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


def guard_demo_keys(keys: KeyRing, host: str, *, allow_on_network: bool) -> None:
    """Refuse, with StartupError, to listen on `host` when it is not a loopback address and
    `keys` accepts a public demo key, unless `allow_on_network`; otherwise warn that they are
    accepted."""
    accepted = keys.demo_keys()
    if not accepted:
        return
    if not is_loopback(host) and not allow_on_network:
        variables = " and ".join(DEMO_KEYS[demo] for demo in accepted)
        raise StartupError(
            f"refusing to listen on {host}: the public demo keys {', '.join(accepted)} are "
            f"accepted and anyone could use them; set {variables} to your own keys (or give "
            f"--config a file with your keys' sha256), or pass {ALLOW_DEMO_KEYS_FLAG} for a "
            "demo on a trusted network"
        )
    for demo in accepted:
        log.warning("the public demo key '%s' is accepted; replace it for real use", demo)


def is_loopback(host: str) -> bool:
    """Whether `host` reaches only this machine: localhost, 127.0.0.0/8 or ::1. The wildcard
    addresses (0.0.0.0, ::) and every other name are a network."""
    bare = host.strip("[]")
    if bare.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _resolve(key: KeySettings, env: Mapping[str, str], owner: str) -> str:
    if key.env and env.get(key.env):
        return sha256_hex(env[key.env])
    if key.sha256 is None:
        raise StartupError(
            f"{owner}: API key variable ${key.env} is not set and the key has no sha256; "
            "set the variable or configure the key's sha256"
        )
    return key.sha256
