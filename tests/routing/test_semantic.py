"""Semantic routing (F3) on a deterministic bag-of-words embedder: scores, threshold, default
route, signals and reason, what is embedded and how often, and configuration problems."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

import numpy as np
import pytest

from fareway.config.loader import ConfigError, load_config, parse_config
from fareway.routing.catalog import Catalog
from fareway.routing.embedders import DEFAULT_EMBEDDER
from fareway.routing.embedding import Embedder, Vectors
from fareway.routing.features import extract_features
from fareway.routing.strategies.semantic import (
    EMBED_CHARS,
    MARGIN_SIGNAL,
    SIMILARITY_SIGNAL,
    SemanticConfig,
    SemanticStrategy,
)
from fareway.routing.strategy import AcceptsAnyHints, Ranking, StrategyContext, rank_towards
from tests.routing.conftest import MakeRequest

T = TypeVar("T")
DEFAULT = resources.files("fareway.config").joinpath("default.yaml").read_text(encoding="utf-8")
DIMENSIONS = 256
WORD = re.compile(r"[a-z]+")

ROUTES: dict[str, Any] = {
    "code": {"target": "balanced", "examples": ["write a python function", "fix this bug"]},
    "analysis": {"target": "powerful", "examples": ["weigh the strategic risks"]},
    "extraction": {"target": "fast", "examples": ["list every email address"]},
}


class BagOfWords:
    """An `Embedder` whose vector counts each word in a hashed slot: texts sharing words are
    similar, texts sharing none have similarity 0. Records what it embeds, and refuses to run
    unless `run_cpu` below is running it."""

    name = "bow"
    dimensions = DIMENSIONS

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.inside_run_cpu = False

    def embed(self, texts: Sequence[str]) -> Vectors:
        assert self.inside_run_cpu, "embedding must go through run_cpu"
        self.calls.append(tuple(texts))
        rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                rows[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        out: Vectors = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
        return out


class Rig:
    """A semantic strategy over the default catalog and a fresh bag-of-words embedder."""

    def __init__(self, catalog: Catalog, **settings: Any) -> None:
        self.embedder = BagOfWords()
        self.asked: list[str] = []
        self.cpu_runs = 0
        config = SemanticConfig.model_validate(
            {"type": "semantic", "routes": ROUTES, "default": "analysis", "threshold": 0.3}
            | {"embedder": "wordllama"}
            | settings
        )
        context = StrategyContext(
            catalog,
            embedder=self.embedder_for,
            run_cpu=self.run_cpu,
            strategy=lambda name: self.others[name],
        )
        self.others: dict[str, Any] = {}
        self.strategy: SemanticStrategy = config.build("semantic", context)

    def embedder_for(self, name: str) -> Embedder:
        self.asked.append(name)
        return self.embedder

    async def run_cpu(self, work: Callable[[], T]) -> T:
        self.cpu_runs += 1
        self.embedder.inside_run_cpu = True
        try:
            return work()
        finally:
            self.embedder.inside_run_cpu = False

    async def rank(self, make_request: MakeRequest, text: str) -> Any:
        request = make_request(text)
        return await self.strategy.rank(request, extract_features(request), self.catalog_models)

    @property
    def catalog_models(self) -> Any:
        return self.strategy._catalog.models


async def test_the_nearest_route_leads_and_every_model_is_ranked(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog)

    ranking = await rig.rank(make_request, "please write a python function for me")

    assert [s.model.tier for s in ranking.ranked] == ["balanced", "powerful", "fast"]
    assert {s.model.id for s in ranking.ranked} == {m.id for m in catalog.models}
    assert ranking.reason.startswith("semantic route 'code' (similarity ")
    assert 'nearest example "write a python function"), so the balanced tier' in ranking.reason


async def test_signals_are_the_best_score_and_its_margin_over_the_second(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog)

    ranking = await rig.rank(make_request, "write a python function")

    # The query is code's first example (cosine 1). Code's two examples share no word, so their
    # unit vectors are orthogonal and the centroid is their sum over sqrt(2): cosine 1/sqrt(2).
    # No other route shares a word with the query: their scores are 0.
    code = (1 + 1 / np.sqrt(2)) / 2
    assert ranking.signals[SIMILARITY_SIGNAL] == pytest.approx(code, abs=1e-5)
    assert ranking.signals[MARGIN_SIGNAL] == pytest.approx(code, abs=1e-5)
    assert "(similarity 0.85, " in ranking.reason


async def test_a_request_between_two_routes_has_no_margin(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    routes = {
        "code": {"target": "balanced", "examples": ["alpha beta"]},
        "analysis": {"target": "powerful", "examples": ["gamma delta"]},
    }
    rig = Rig(catalog, routes=routes, threshold=0.0)

    ranking = await rig.rank(make_request, "alpha gamma")

    assert ranking.signals[SIMILARITY_SIGNAL] == pytest.approx(0.5, abs=1e-5)
    assert ranking.signals[MARGIN_SIGNAL] == pytest.approx(0.0, abs=1e-5)


async def test_below_the_threshold_the_default_route_answers_and_says_so(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog, threshold=0.9)

    ranking = await rig.rank(make_request, "could you fix the bug in my code")

    assert ranking.ranked[0].model.tier == "powerful"
    assert ranking.reason.startswith("no semantic route reached the threshold 0.90 (best 'code'")
    assert 'nearest example "fix this bug"' in ranking.reason
    assert ranking.reason.endswith("so the default route 'analysis' and the powerful tier")
    assert 0 < ranking.signals[SIMILARITY_SIGNAL] < 0.9


class Difficulty(AcceptsAnyHints):
    """Stands in for a `learned` strategy: always the fast tier, with a signal of its own."""

    name = "difficulty"

    async def rank(self, request: Any, features: Any, eligible: Any, tenant: Any = None) -> Any:
        ranked = rank_towards(self.catalog, "fast", eligible)
        return Ranking(ranked, "difficulty says easy", {"learned.strong_score": 0.1})

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog


async def test_below_the_threshold_the_otherwise_strategy_decides(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog, otherwise="difficulty")
    rig.others["difficulty"] = Difficulty(catalog)

    unmatched = await rig.rank(make_request, "tell me a joke about cats")
    matched = await rig.rank(make_request, "write a python function")

    assert unmatched.ranked[0].model.tier == "fast"  # not the default route's powerful
    assert unmatched.reason.startswith("no semantic route reached the threshold 0.30")
    assert unmatched.reason.endswith("so difficulty: difficulty says easy")
    assert unmatched.signals["learned.strong_score"] == 0.1
    assert SIMILARITY_SIGNAL in unmatched.signals
    assert matched.ranked[0].model.tier == "balanced"  # a clear intent still routes by it
    assert "learned.strong_score" not in matched.signals


async def test_a_route_may_target_a_model(catalog: Catalog, make_request: MakeRequest) -> None:
    routes = ROUTES | {"extraction": {"target": "claude-sonnet-4-6", "examples": ["list emails"]}}
    rig = Rig(catalog, routes=routes)

    ranking = await rig.rank(make_request, "list the emails")

    assert ranking.ranked[0].model.id == "claude-sonnet-4-6"
    assert ranking.reason.endswith("so model claude-sonnet-4-6")
    assert len(ranking.ranked) == len(catalog.models)


async def test_examples_are_embedded_once_and_each_request_once_off_the_event_loop(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog)

    for text in ("fix this bug", "weigh the risks", "list every address"):
        await rig.rank(make_request, text)

    examples = [e for r in ROUTES.values() for e in r["examples"]]
    assert rig.embedder.calls == [
        tuple(examples),
        ("fix this bug",),
        ("weigh the risks",),
        ("list every address",),
    ]
    assert rig.asked == ["wordllama"]  # the configured embedder, looked up once
    assert rig.cpu_runs == 4  # the examples, then one query per request


async def test_only_the_instruction_is_embedded_not_its_payload(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog)
    review = " ".join(["the pasta was cold but the python function was great"] * 5)

    ranking = await rig.rank(make_request, f"List every email address in this: '{review}'")

    assert rig.embedder.calls[-1] == ("List every email address in this",)
    assert ranking.ranked[0].model.tier == "fast"


async def test_a_long_instruction_is_embedded_by_its_head_and_tail(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog)
    middle = "lorem ipsum dolor " * 200_000  # 3.6 MB with no payload marker
    text = f"weigh the strategic risks of this plan. {middle} Be thorough."

    await rig.rank(make_request, text)

    (embedded,) = rig.embedder.calls[-1]
    assert len(embedded) <= EMBED_CHARS + 1
    assert embedded.startswith("weigh the strategic risks")
    assert embedded.endswith("Be thorough.")


async def test_a_turn_that_is_all_payload_embeds_its_head(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog)
    text = "```python\ndef f():\n    return 1\n```"

    await rig.rank(make_request, text)

    assert rig.embedder.calls[-1] == (text,)


async def test_without_an_embedder_named_the_default_one_is_used(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    rig = Rig(catalog, embedder="")

    await rig.rank(make_request, "fix this bug")

    assert rig.asked == [DEFAULT_EMBEDDER]


# -- configuration ------------------------------------------------------------------------------

SECTION = """
  meaning:
    type: semantic
    embedder: {embedder}
    threshold: 0.2
    default: {default}
    routes:
      code:
        target: {target}
        examples: [write a function, fix this bug]
      extraction:
        target: fast
        examples: {examples}
"""


def config_text(
    embedder: str = "wordllama",
    default: str = "code",
    target: str = "balanced",
    examples: str = "[list the emails]",
) -> str:
    section = SECTION.format(embedder=embedder, default=default, target=target, examples=examples)
    return DEFAULT.replace("\nstrategies:\n", "\nstrategies:" + section, 1)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "fareway.yaml")
    return str(caught.value)


def test_a_valid_section_loads_and_builds_without_embedding(catalog: Catalog) -> None:
    config = parse_config(config_text(), "fareway.yaml")

    section = config.strategies["meaning"]
    assert isinstance(section, SemanticConfig)
    assert section.routes["extraction"].examples == ("list the emails",)
    # Building asks for no embedder: the default context has none, and that is fine until use.
    section.build("meaning", StrategyContext(catalog))


def test_an_unknown_target_names_its_route_and_the_known_ones() -> None:
    message = error_of(config_text(target="medium"))

    assert "strategies.meaning.routes.code.target: unknown tier or model 'medium'" in message
    assert "known: fast, balanced, powerful" in message


def test_the_default_must_be_a_route() -> None:
    message = error_of(config_text(default="general"))

    assert "strategies.meaning.default: unknown route 'general'; known: code, extraction" in (
        message
    )


def test_a_route_needs_an_example_and_no_blank_one() -> None:
    assert "strategies.meaning.routes.extraction.examples" in error_of(config_text(examples="[]"))
    blank = error_of(config_text(examples="['list the emails', '  ']"))
    assert "strategies.meaning.routes.extraction.examples.1: an example is blank" in blank


def test_an_unknown_embedder_names_the_known_ones() -> None:
    message = error_of(config_text(embedder="bert"))

    assert "strategies.meaning.embedder: unknown embedder 'bert'; known: minilm, wordllama" in (
        message
    )


def test_problems_carry_the_line_of_the_field() -> None:
    text = config_text(target="medium")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "target: medium" in t)

    assert f"fareway.yaml:{line}: strategies.meaning.routes.code.target" in error_of(text)


def test_otherwise_must_name_a_learned_strategy() -> None:
    text = config_text().replace(
        "    threshold: 0.2\n", "    threshold: 0.2\n    otherwise: rules\n", 1
    )
    assert "'rules' is a rules strategy; it must be learned" in error_of(text)


def test_the_embedded_default_still_loads() -> None:
    load_config()


def test_the_routes_are_readable_for_the_classifier(catalog: Catalog) -> None:
    strategy = Rig(catalog).strategy

    assert strategy.route_targets == {
        "code": "balanced",
        "analysis": "powerful",
        "extraction": "fast",
    }
    assert strategy.route_examples["code"] == ("write a python function", "fix this bug")
    assert strategy.default_route == "analysis"
