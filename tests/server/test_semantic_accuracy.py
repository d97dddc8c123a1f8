"""Semantic routing through the real server on the labelled set (issue 10's acceptance): at
least 90% of tests/data/routing_queries.yaml reaches the right tier, and at least 85% of each
tier's queries does.

The set was written apart from the routes' examples (none is an example or a rewording of one):
other words, other programming languages, other domains, with and without payloads. The
threshold was chosen on another set (bench/embedders.py's 64 queries), never on this one.

The configuration is the embedded default, whose `semantic` strategy this measures.
`fareway route` is run against the same server to show what a person sees: the route, its
similarity, the nearest example.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from fareway.budgets.memory import MemoryLedger
from fareway.config.loader import load_config
from fareway.config.schema import FarewayConfig
from fareway.core.clock import ManualClock
from fareway.routing.strategies.semantic import MARGIN_SIGNAL, SIMILARITY_SIGNAL, SemanticConfig
from fareway.v1 import router_pb2
from tests.server.harness import Harness, HarnessFactory, metadata, user_request

QUERIES = Path(__file__).parents[1] / "data" / "routing_queries.yaml"
DEMO_KEY = "fareway-demo-key"
AUTH = metadata(DEMO_KEY)
ENV = {"FAREWAY_DEMO_KEY": DEMO_KEY}  # and no provider keys: the default catalog is simulated
TARGET = 0.9  # of the whole set: the seed asks for over 90% routing accuracy
TIER_FLOOR = 0.85  # of each tier's queries, so that no tier is given up for the others


def served_config() -> FarewayConfig:
    """The embedded default, which carries the semantic strategy."""
    return load_config()


def labelled() -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = yaml.safe_load(QUERIES.read_text("utf-8"))["queries"]
    return queries


async def start(serve: HarnessFactory) -> Harness:
    clock = ManualClock()
    harness: Harness = await serve(
        served_config(), clock=clock, env=ENV, ledger=MemoryLedger(clock)
    )
    return harness


def test_the_labelled_set_is_large_varied_and_apart_from_the_examples() -> None:
    queries = labelled()
    section = served_config().strategies["semantic"]
    assert isinstance(section, SemanticConfig)
    routes = section.routes
    examples = {e.lower() for r in routes.values() for e in r.examples}

    assert len(queries) >= 60
    assert Counter(q["route"] for q in queries).most_common()[-1][1] >= 15
    assert {q["tier"] for q in queries} == {"fast", "balanced", "powerful"}
    assert all(routes[q["route"]].target == q["tier"] for q in queries)
    assert not [q["text"] for q in queries if q["text"].strip().lower() in examples]
    with_payload = [q for q in queries if "\n" in q["text"].strip() or '"' in q["text"]]
    assert len(with_payload) >= 10


async def test_semantic_sends_at_least_90_percent_of_the_labelled_set_to_the_right_tier(
    serve: HarnessFactory,
) -> None:
    harness = await start(serve)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses = []
    for query in labelled():
        request = user_request(query["text"], strategy="semantic")
        decision: router_pb2.RouteDecision = await harness.router.Route(request, metadata=AUTH)
        assert decision.strategy == "semantic"
        assert {SIMILARITY_SIGNAL, MARGIN_SIGNAL} <= set(decision.signals)
        total[query["tier"]] += 1
        if decision.tier == query["tier"]:
            right[query["tier"]] += 1
        else:
            misses.append(f"{query['tier']} -> {decision.tier}: {query['text'][:60]!r}")

    overall = sum(right.values()) / sum(total.values())
    per_tier = {tier: right[tier] / total[tier] for tier in total}
    report = f"overall {overall:.3f}, per tier {per_tier}; misses: {misses}"
    print(report)  # the figures docs/ROUTING.md reports, with `pytest -s`
    assert overall >= TARGET, report
    assert min(per_tier.values()) >= TIER_FLOOR, report


async def test_the_decision_names_the_route_and_its_nearest_example(serve: HarnessFactory) -> None:
    harness = await start(serve)
    text = "Write a Go function that merges two sorted slices"

    decision = await harness.router.Route(user_request(text, strategy="semantic"), metadata=AUTH)

    assert decision.tier == "balanced"
    assert decision.reason.startswith("semantic route 'code' (similarity ")
    assert 'nearest example "' in decision.reason
    assert decision.reason.endswith("), so the balanced tier")
    assert decision.signals[SIMILARITY_SIGNAL] >= 0.16
    assert 0 < decision.signals[MARGIN_SIGNAL] <= decision.signals[SIMILARITY_SIGNAL]
    assert len(decision.candidates) == 3  # every model ranked, none dropped


async def test_fareway_route_shows_the_route_its_similarity_and_nearest_example(
    serve: HarnessFactory,
) -> None:
    harness = await start(serve)
    command = [sys.executable, "-m", "fareway.cli.main", "route", "--strategy", "semantic"]
    target = f"127.0.0.1:{harness.running.port}"
    text = "Extract the names and phone numbers from this contact list"

    process = await asyncio.create_subprocess_exec(
        *command, text, "--target", target, "--api-key", DEMO_KEY,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, err.decode()
    printed = out.decode()
    assert "model:     claude-haiku-4-5 (anthropic, fast tier)" in printed
    assert "why:       semantic route 'extraction' (similarity 0." in printed
    assert 'nearest example "' in printed
    assert "signals:   semantic.margin=0." in printed
    assert ", semantic.similarity=0." in printed
