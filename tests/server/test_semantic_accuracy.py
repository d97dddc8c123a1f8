"""Semantic routing through the real server on the labelled set (issue 10's acceptance): at
least 90% of tests/data/routing_queries.yaml reaches the right tier, and at least 85% of each
tier's queries does.

The set was written apart from the routes' examples (none is an example or a rewording of one):
other words, other programming languages, other domains, with and without payloads. The
threshold was chosen on another set (bench/embedders.py's 64 queries), never on this one.

The configuration is the embedded default plus the semantic block below (`served_config`, the
one place to change when the block moves into config/default.yaml). `fareway route` is run
against the same server to show what a person sees: the route, its similarity, the nearest
example.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fareway.budgets.memory import MemoryLedger
from fareway.config.loader import parse_config
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

SEMANTIC_BLOCK = """\
  # Routing by meaning: each route's examples are embedded once by a local embedder (no
  # network); a request's instruction (without pasted material: code blocks, long quotes, text
  # after an introducing colon; at most 512 characters) is scored against each route (the mean
  # of its similarity to the route's nearest example and to the examples' centroid) and goes to
  # the best route's target, or to the default route's when no score reaches the threshold.
  # The threshold belongs to the embedder (wordllama | minilm): change one, re-measure the other
  # (routing/strategies/semantic.py). Signals: semantic.similarity, semantic.margin.
  semantic:
    type: semantic
    embedder: wordllama
    threshold: 0.16
    default: analysis
    routes:
      code:
        target: balanced
        examples:
          - write a function that sorts a list
          - debug this Python code
          - explain what this regex does
          - how do I implement authentication in FastAPI
          - fix the compile error in my program
          - my script crashes with a null pointer exception, why
          - implement a linked list class with insert and delete
          - write a shell script that backs up a directory every night
          - optimize this database query, it takes forever
          - what's the difference between an interface and an abstract class
          - how do I read a CSV file line by line in JavaScript
          - refactor this method to remove the duplicated code
          - generate test cases that cover the edge cases of this function
          - why does my async code deadlock
          - convert this code from Ruby to C#
          - set up a CI pipeline that runs the linter and the tests
          - help me write a regular expression that matches IPv4 addresses
          - this loop is off by one, where is the bug
          - how do I install a package and pin its version
          - create a REST endpoint that returns the list of users from the database
          - write the Kubernetes manifest for this service
          - rewrite this snippet so it is more idiomatic
          - what does this compiler error mean
          - write the infrastructure configuration for a load balancer in the cloud
          - center an element vertically with flexbox in CSS
          - my Spring Boot app fails to start with a bean creation error
          - write a Makefile target that builds the docs
          - what is the time complexity of this algorithm
          - npm install fails with a peer dependency conflict
          - write a Swift struct that decodes this JSON payload
          - configure nginx as a reverse proxy for my app
          - how do I parse command line arguments in Rust
          - write a stored procedure that archives old rows
          - my goroutines leak when the channel is never closed
          - generate a type-safe API client from this OpenAPI spec
      analysis:
        target: powerful
        examples:
          - analyze the key trends in this data
          - what are the strategic implications of this decision
          - compare these two approaches
          - explain why the project failed and what we should learn from it
          - what are the risks and benefits of expanding into a new market
          - evaluate this business plan and point out its weaknesses
          - synthesize these research findings into a recommendation
          - what factors explain the decline in sales this year
          - should we build this ourselves or buy a vendor product? think it through
          - assess the long-term consequences of this policy
          - compare and contrast the two candidates' economic programs
          - provide a comprehensive review of our security posture
          - reason step by step about which option is best and why
          - what are the implications of this ruling for similar cases
          - critically examine the assumptions behind this forecast
          - design a strategy to reduce customer acquisition cost
          - interpret these results and tell me what they mean for the business
          - what are the arguments on both sides of this debate
          - how would a drought affect food prices and farm incomes in the region
          - investigate the possible causes of this problem and rank them by likelihood
          - weigh the options carefully and recommend one
          - what would happen to our margins if we doubled our prices
      extraction:
        target: fast
        examples:
          - extract all email addresses from this text
          - what is the company name mentioned here
          - list all the dates in this document
          - find every amount of money in this report
          - pull the customer's name and order number out of this email
          - which cities are mentioned in the passage
          - return the title and author of this article as JSON
          - get all the product codes from the list below
          - what is the total on this receipt
          - who are the speakers in this transcript
          - parse the shipping address from this message
          - identify the start date and the end date in this agreement
          - extract the key fields from this form into a table
          - what is the reference number in this letter
          - what tools does this manual say I need
          - list the file names that appear in this output
          - what version number is stated in the release notes
          - find the error codes that appear in this log
          - list every name and amount that appears in this statement
          - pull the key facts out of this press release as bullet points
      classification:
        target: fast
        examples:
          - classify this text as positive, negative or neutral
          - flag the messages that look like phishing
          - label the sentiment of this comment
          - which category does this product belong to
          - is this message a complaint or a compliment
          - categorize these articles by topic
          - yes or no, is this question about billing
          - true or false, this statement is an opinion
          - is this sentence grammatical, yes or no
          - tag each review with one of the given labels
          - does this message need a reply today, yes or no
          - route this customer email to sales, support or legal
          - determine whether this comment is toxic
          - what kind of document is this, invoice, contract or letter
          - choose the best matching intent for this chat message
          - score this search result as relevant or irrelevant
          - is this image caption appropriate for children
          - assign a priority label to this bug report
          - which of the following options best describes this text
          - put each item into one of the groups listed
          - decide whether this post is a question or an announcement
          - answer with one word, relevant or not relevant
          - mark each line as valid or invalid
          - what type of request is this message
"""


def served_config() -> FarewayConfig:
    """The embedded default with the semantic strategy block added under `strategies`."""
    default = resources.files("fareway.config").joinpath("default.yaml").read_text("utf-8")
    assert default.count("\nstrategies:\n") == 1
    text = default.replace("\nstrategies:\n", "\nstrategies:\n" + SEMANTIC_BLOCK, 1)
    return parse_config(text, "<embedded default.yaml + semantic>")


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
