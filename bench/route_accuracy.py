"""Routing accuracy of every strategy of the embedded default on the labelled set
(tests/data/routing_queries.yaml: 70 requests, each with the tier its route should reach),
in-process through the router as the server builds it, with the real local embedder.

The classifier's model is replaced by one that always answers the right route name, so its
figure is the ceiling of the classifier's plumbing (route names to tiers), not a model's skill;
tests/server/test_classifier.py runs it through the real server and a loopback Anthropic fake.
The semantic strategy's figure through the real server is tests/server/test_semantic_accuracy.py.

    .venv/bin/python bench/route_accuracy.py
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from fareway.config.loader import load_config
from fareway.core.content import Message
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import AttemptUsage
from fareway.routing.embedders import EmbedderPool
from fareway.routing.request import RouteRequest
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategy import Completion, Strategy, StrategyContext

QUERIES = Path(__file__).parents[1] / "tests" / "data" / "routing_queries.yaml"
TIERS = ("fast", "balanced", "powerful")


async def main() -> None:
    queries: list[dict[str, Any]] = yaml.safe_load(QUERIES.read_text("utf-8"))["queries"]
    config = load_config()
    catalog = Catalog((m.spec() for m in config.models), config.tiers)
    right_route = {f"q{i}": q["route"] for i, q in enumerate(queries)}

    async def oracle(
        request: RouteRequest,
        model: ModelSpec,
        system: str,
        prompt: str,
        max_tokens: int,
        timeout_s: float,
    ) -> Completion:
        return Completion(right_route[request.request_id], AttemptUsage(model.id, 50, 1, 55))

    strategies: dict[str, Strategy] = {}
    context = StrategyContext(
        catalog, embedder=EmbedderPool().get, complete=oracle, strategy=strategies.__getitem__
    )
    strategies.update({n: s.build(n, context) for n, s in config.strategies.items()})
    router = Router(catalog, strategies)
    print(f"{len(queries)} labelled requests; accuracy to the right tier, and median decide time")
    for name in sorted(n for n in strategies if n != "steps"):
        right: Counter[str] = Counter()
        total: Counter[str] = Counter()
        times: list[float] = []
        for i, query in enumerate(queries):
            request = RouteRequest((Message.user(query["text"]),), 512, "demo", f"q{i}")
            started = time.perf_counter()
            decision = await router.decide(request, TenantPolicy(strategy=name))
            times.append(time.perf_counter() - started)
            total[query["tier"]] += 1
            right[query["tier"]] += decision.model.tier == query["tier"]
        times.sort()
        share = sum(right.values()) / len(queries)
        tiers = "  ".join(f"{t} {right[t]}/{total[t]}" for t in TIERS)
        print(f"{name:<11} {share:6.1%}  {tiers}  median {times[len(times) // 2] * 1000:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
