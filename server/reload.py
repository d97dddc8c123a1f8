"""Configuration reload (SIGHUP): a new configuration for new calls, the old one for calls in
flight.

`Serving` holds the runtime new calls get. Every fareway.v1 call takes the current runtime
when it starts (`Serving.call`) and keeps it to its end, so a stream in flight finishes on the
catalog, router, providers and generation it started with, and a call never mixes two
configurations. A reload assembles a complete new runtime around the same ledger, telemetry
and latency record, then swaps it in with no await in between: calls see either the old
configuration or the new one. The key ring is changed in place (the interceptor holds it).
A retired runtime's providers are closed once its last call ends, or at shutdown.

`Reloader.reload` refuses a configuration that does not load, validate or build, logging one
line and keeping the running one. What only a restart can change (the listening address and
limits, the ledger, telemetry, switching TLS on or off) keeps its running value and is logged
as needing a restart; a TLS certificate and CA are re-read, so rotating them needs no restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fareway.budgets.ledger import Ledger
from fareway.config.loader import ConfigError, load_config
from fareway.config.schema import FarewayConfig, ServerSettings
from fareway.core.errors import LedgerUnavailable, StartupError
from fareway.providers.base import Provider
from fareway.server.auth import KeyRing, guard_demo_keys
from fareway.server.runtime import Runtime, assemble_runtime, build_providers
from fareway.server.tls import ServerTls, TlsMaterial, read_tls

log = logging.getLogger(__name__)

# Server settings fixed when the port was opened: the address and gRPC's message limits.
_LISTENING_FIELDS = ("host", "port", "max_message_bytes", "max_request_bytes")


class Serving:
    """The runtime new calls get, and the retired runtimes that calls in flight still use."""

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime
        self._calls: dict[int, int] = {}  # id(runtime) -> calls in flight on it
        self._retired: list[Runtime] = []
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def retired(self) -> int:
        """How many replaced runtimes calls in flight still use."""
        return len(self._retired)

    @contextmanager
    def call(self) -> Iterator[Runtime]:
        """The runtime for one call, from its start to its end."""
        runtime = self.current
        key = id(runtime)
        self._calls[key] = self._calls.get(key, 0) + 1
        try:
            yield runtime
        finally:
            self._calls[key] -= 1
            if not self._calls[key]:
                del self._calls[key]
                self._close_idle()

    def swap(self, runtime: Runtime) -> None:
        """Give new calls `runtime`; the previous one serves its calls in flight to their end."""
        self._retired.append(self.current)
        self.current = runtime
        self._close_idle()

    async def aclose(self) -> None:
        """At shutdown, once the server has stopped: close every runtime."""
        retired, self._retired = self._retired, []
        for runtime in retired:
            self._closing.add(asyncio.create_task(_close_providers(runtime.providers)))
        await asyncio.gather(*self._closing)
        await self.current.aclose()

    def _close_idle(self) -> None:
        idle = [r for r in self._retired if id(r) not in self._calls]
        for runtime in idle:
            self._retired.remove(runtime)
            task = asyncio.create_task(_close_providers(runtime.providers))
            self._closing.add(task)  # awaited by aclose unless it finished before
            task.add_done_callback(self._closing.discard)


class PerCallServicer:
    """A servicer whose every method runs on the runtime that is current when the call starts:
    `build(runtime)` makes the real servicer (RouterService, BudgetService), once a runtime.
    Register it with the generated `add_*Servicer_to_server`, which looks the methods up by
    name. The methods are coroutines (fareway's streaming handlers use `context.write`)."""

    def __init__(self, serving: Serving, build: Callable[[Runtime], object]) -> None:
        self._serving = serving
        self._build = build
        self._latest: tuple[Runtime, object] | None = None

    def __getattr__(self, method: str) -> Callable[[Any, Any], Awaitable[Any]]:
        if method.startswith("_"):  # not an RPC: copy, pickle and friends probe for these
            raise AttributeError(method)

        async def handle(request: Any, context: Any) -> Any:
            with self._serving.call() as runtime:
                return await getattr(self._servicer(runtime), method)(request, context)

        return handle

    def _servicer(self, runtime: Runtime) -> object:
        if self._latest is None or self._latest[0] is not runtime:
            self._latest = (runtime, self._build(runtime))
        return self._latest[1]


@dataclass
class Reloader:
    """Re-reads `config_path` (None: the embedded default) into `serving`. `host` is the
    address being served (the public demo keys stay refused on a network), `tls` the server's
    credentials when it serves TLS."""

    serving: Serving
    config_path: str | None
    env: Mapping[str, str]
    host: str
    tls: ServerTls | None = None
    allow_demo_keys_on_network: bool = False

    async def reload(self) -> bool:
        """Apply the configuration file to new calls; False, logged as one line, when it is
        refused and the running configuration stays."""
        old = self.serving.current
        source = self.config_path or "the embedded default"
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
            config, restart = keep_running_settings(old.config, new)
            keys = KeyRing.from_config(config, self.env)
            guard_demo_keys(keys, self.host, allow_on_network=self.allow_demo_keys_on_network)
            material = await self._read_tls(config)
            runtime = await self._assemble(old, config)
        except (ConfigError, StartupError, LedgerUnavailable, ValueError) as error:
            detail = error.detail if isinstance(error, LedgerUnavailable) else ""
            text = "; ".join((detail or str(error)).splitlines())
            log.error(
                "configuration reload from %s refused, the running one stays: %s", source, text
            )
            return False
        old.keys.replace_keys(keys)
        self.serving.swap(runtime)
        if material is not None and self.tls is not None:
            self.tls.rotate(material)
        for name in restart:
            log.warning("configuration reload: %s changed and needs a restart to apply", name)
        log.info(
            "configuration reloaded from %s: %d models, %d tenants",
            source,
            len(config.models),
            len(config.tenants),
        )
        return True

    async def _read_tls(self, config: FarewayConfig) -> TlsMaterial | None:
        if self.tls is None or config.server.tls is None:
            return None
        return await asyncio.to_thread(read_tls, config.server.tls)

    async def _assemble(self, old: Runtime, config: FarewayConfig) -> Runtime:
        """The new runtime, its tenants' budgets applied to the ledger. Its providers are closed
        again if anything fails on the way."""
        providers = build_providers(config, old.clock, self.env)
        try:
            runtime = assemble_runtime(
                config,
                old.clock,
                providers,
                old.ledger,
                old.telemetry,
                old.router.latency,
                old.keys,
                old.circuit_breaker,
                embedders=old.embedders,  # loaded models and embedded examples carry over
            )
            await runtime.router.warm_up()  # new routes are embedded before calls reach them
            await apply_budgets(old.ledger, old.config, config)
        except BaseException:
            await _close_providers(providers)
            raise
        return runtime


def keep_running_settings(
    running: FarewayConfig, new: FarewayConfig
) -> tuple[FarewayConfig, list[str]]:
    """`new` with what only a restart can change kept at its `running` value, and the names of
    those settings that `new` changes."""
    changed = [
        f"server.{name}"
        for name in _LISTENING_FIELDS
        if getattr(running.server, name) != getattr(new.server, name)
    ]
    kept: dict[str, Any] = {name: getattr(running.server, name) for name in _LISTENING_FIELDS}
    if _tls_mode(running.server) != _tls_mode(new.server):
        changed.append("server.tls (turning TLS or client certificates on or off)")
        kept["tls"] = running.server.tls
    changed += [
        name for name in ("ledger", "telemetry") if getattr(running, name) != getattr(new, name)
    ]
    server = new.server.model_copy(update=kept)
    config = new.model_copy(
        update={"server": server, "ledger": running.ledger, "telemetry": running.telemetry}
    )
    return config, changed


async def apply_budgets(ledger: Ledger, running: FarewayConfig, new: FarewayConfig) -> None:
    """Seed the ledger with `new`'s tenants (a new tenant gets its budget), and apply the
    budget or latency target of each tenant whose configured one changed: the operator edited
    it on purpose. Other tenants keep what SetBudget gave them."""
    await ledger.seed({name: tenant.seed() for name, tenant in new.tenants.items()})
    for name, tenant in new.tenants.items():
        before = running.tenants.get(name)
        if before is None:
            continue  # seeded just now
        seed = tenant.seed()
        target_changed = before.latency_target_ms != tenant.latency_target_ms
        target = seed.latency_target_ms if target_changed else None
        if before.budget != tenant.budget:
            await ledger.configure(name, seed.limits, target)
        elif target_changed:
            # Only the target changed: keep the limits the ledger has (SetBudget's, perhaps).
            state = await ledger.state(name)
            await ledger.configure(name, [s.limit for s in state.limits], target)


def _tls_mode(settings: ServerSettings) -> tuple[bool, bool]:
    """Whether the port speaks TLS, and requires client certificates."""
    tls = settings.tls
    return tls is not None, tls is not None and tls.client_ca_file is not None


async def _close_providers(providers: Mapping[str, Provider]) -> None:
    for provider in providers.values():
        try:
            await provider.aclose()
        except Exception:  # a retired provider that fails to close must not stop the others
            log.exception("closing retired provider %s failed", provider.name)
