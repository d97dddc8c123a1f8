"""The default configuration's catalog and router, assembled as `server.runtime` does."""

from collections.abc import Callable
from typing import Any

import pytest

from fareway.config.loader import load_config
from fareway.config.schema import FarewayConfig
from fareway.core.content import Message
from fareway.routing.catalog import Catalog
from fareway.routing.embedders import EmbedderPool
from fareway.routing.request import Hints, RouteRequest
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategy import Strategy, StrategyContext

MakeRequest = Callable[..., RouteRequest]


@pytest.fixture(scope="session")
def default_config() -> FarewayConfig:
    return load_config()


@pytest.fixture
def catalog(default_config: FarewayConfig) -> Catalog:
    return Catalog((m.spec() for m in default_config.models), default_config.tiers)


@pytest.fixture(scope="session")
def embedders() -> EmbedderPool:
    """One pool for the session: each embedder loads once."""
    return EmbedderPool()


@pytest.fixture
def router(default_config: FarewayConfig, catalog: Catalog, embedders: EmbedderPool) -> Router:
    strategies: dict[str, Strategy] = {}
    context = StrategyContext(catalog, embedder=embedders.get, strategy=strategies.__getitem__)
    strategies.update({n: s.build(n, context) for n, s in default_config.strategies.items()})
    return Router(catalog, strategies)


@pytest.fixture
def policy() -> TenantPolicy:
    """A tenant routed by `rules`, which these tests pin down; the served default (semantic)
    is measured on its own (tests/routing/test_semantic.py, tests/server)."""
    return TenantPolicy(strategy="rules")


@pytest.fixture
def make_request() -> MakeRequest:
    """`make_request(text, max_tokens=..., system=..., tenant=..., **hints)`."""

    def make(
        text: str = "What is the capital of France?",
        *,
        max_tokens: int = 1024,
        system: str = "",
        tenant: str = "demo",
        **hints: Any,
    ) -> RouteRequest:
        return RouteRequest(
            messages=(Message.user(text),),
            max_tokens=max_tokens,
            tenant=tenant,
            request_id="req-1",
            system=system,
            hints=Hints(**hints),
        )

    return make
