"""The local embedders side by side: load time, milliseconds per query, and nearest-route
accuracy on the four routes of issue 10, so that the default is chosen on accuracy per ms.

Routes (each with 15 example utterances, below): code -> balanced, analysis -> powerful,
extraction -> fast, classification -> fast. The test queries (64, below) are not among the
examples: other words, other programming languages, other domains, and some with a long
payload to classify or extract from. A query goes to the route of its most similar example
(cosine similarity, as the `semantic` strategy does); route accuracy counts the right route,
tier accuracy the right tier (extraction and classification share `fast`). Two other ways of
scoring a route from its examples are measured beside the nearest example (`SCORINGS`).

Latency is one query at a time, the way `Route` embeds: each test query in turn, cycled to
`--queries` calls after a warm-up, median and p99 of the wall time of `embed([query])`.
Accuracy per ms divides route accuracy by the median.

    .venv/bin/python bench/embedders.py
    .venv/bin/python bench/embedders.py --queries 1000 --misses
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fareway.routing.embedders import ExampleIndex
from fareway.routing.embedders.minilm import load_minilm
from fareway.routing.embedders.wordllama import load_wordllama
from fareway.routing.embedding import Embedder, Vectors

TIERS = {"code": "balanced", "analysis": "powerful", "extraction": "fast", "classification": "fast"}

EXAMPLES: dict[str, list[str]] = {
    "code": [
        "Write a Python function that reverses a linked list",
        "Fix the bug in this JavaScript code",
        "Implement binary search in Java",
        "Refactor this class to use dependency injection",
        "Write a SQL query that joins orders and customers",
        "Why does my C++ program segfault when I free this pointer?",
        "Add unit tests for this function",
        "Convert this loop into a list comprehension",
        "Write a bash script that renames every file in a folder",
        "Explain what this regular expression matches",
        "Optimize this function, it is too slow",
        "Write a REST endpoint in Go that returns JSON",
        "How do I read a CSV file with pandas?",
        "This TypeScript code does not compile, what is wrong?",
        "Implement an LRU cache class",
    ],
    "analysis": [
        "Analyze the trade-offs between microservices and a monolith for our team",
        "Compare the economic policies of the two candidates and their likely effects",
        "What are the strategic risks of entering the European market next year?",
        "Evaluate the strengths and weaknesses of this business plan",
        "Why did the Roman Empire decline? Weigh the main explanations",
        "Assess the long-term impact of remote work on city centers",
        "Critique the methodology of this study and its conclusions",
        "Design a scalable architecture for a global chat application",
        "Discuss the ethical implications of facial recognition in policing",
        "Think through the pros and cons of raising prices by 10 percent",
        "Explain the causes of the 2008 financial crisis in depth",
        "Develop a migration strategy from our on-premise data center to the cloud",
        "Reason step by step about whether this investment is worth it",
        "What would happen to inflation if interest rates were cut sharply?",
        "Write a detailed analysis of the competitive landscape for electric cars",
    ],
    "extraction": [
        "Extract all the email addresses from this text",
        "Pull the dates and amounts out of this invoice",
        "List every person and company mentioned in this article",
        "Get the phone numbers from the following message",
        "Extract the product name, price and quantity as JSON",
        "Find all the URLs in this document",
        "Which cities are mentioned in this paragraph?",
        "Parse the address into street, city and postal code",
        "Return the names of the authors of this paper",
        "Extract the key fields from this resume: name, email, years of experience",
        "Pick out the ingredients from this recipe",
        "Give me the order number and tracking code from this email",
        "Identify the dates of every meeting in these notes",
        "Extract the table of results from this report as CSV",
        "What is the total amount due on this bill?",
    ],
    "classification": [
        "Classify the sentiment of this review as positive or negative",
        "Is this email spam or not spam?",
        "Label this support ticket as billing, technical or account",
        "Categorize this news headline into politics, sports, business or tech",
        "Is this tweet toxic? Answer yes or no",
        "What language is this sentence written in?",
        "Tag this product description with its category",
        "Decide whether this comment is a question, a complaint or praise",
        "Rate the urgency of this message: low, medium or high",
        "Is the tone of this message formal or informal?",
        "Sort these customer messages by intent",
        "Does this review mention shipping problems? Answer true or false",
        "Classify this transaction as fraudulent or legitimate",
        "Which department should handle this request?",
        "Detect the emotion in this sentence: joy, anger, sadness or fear",
    ],
}

REVIEW = (
    "I ordered the blender three weeks ago and it arrived with a cracked lid, the customer "
    "service line kept me on hold for forty minutes and then hung up, and when the replacement "
    "finally came it was the wrong color and louder than a jet engine."
)
MEMO = (
    "From: Dana Whitfield <dana.w@northwind.example>, sent 14 March 2026. Please confirm the "
    "shipment of 240 units to our Rotterdam warehouse, PO 88-1932, invoiced at EUR 18,400, and "
    "copy Marcus Lee (marcus.lee@northwind.example, +31 20 555 0192) on the reply."
)
SNIPPET = (
    "def total(items):\n    s = 0\n    for i in range(len(items)):\n        s += items[i].price\n"
    "    return s"
)

TEST_QUERIES: dict[str, list[str]] = {
    "code": [
        "Write a Rust function that parses a TOML file into a struct",
        "My Kotlin coroutine never completes, can you debug it?",
        "How do I center a div with CSS grid?",
        "Create a Dockerfile for a Node.js app",
        "Turn this recursive Haskell function into a tail-recursive one",
        "Write a PostgreSQL migration that adds an index on user_id",
        "Implement Dijkstra's shortest path algorithm in C#",
        "Generate pytest fixtures for a Flask app with a test database",
        "Why is my React component re-rendering on every keystroke?",
        "Port this MATLAB script to NumPy",
        "Write a Terraform module for an S3 bucket with versioning",
        "Make this Swift view model thread safe",
        f"Rewrite this to use sum() and a generator:\n{SNIPPET}",
        "Write a Ruby method that validates an ISBN",
        "What does the borrow checker error E0502 mean in my code?",
        "Scaffold a gRPC service in Python with one unary method",
    ],
    "analysis": [
        "Should a mid-size bank build its own payments platform or buy one? Weigh it carefully",
        "What are the geopolitical consequences of a shipping blockade in the Strait of Malacca?",
        "Evaluate whether our startup should pivot from B2C to B2B given flat growth",
        "Examine the arguments for and against a universal basic income",
        "Assess how rising sea levels will affect coastal real estate over 30 years",
        "Compare event sourcing with a CRUD database for an accounting system, with trade-offs",
        "Why did Nokia lose the smartphone market? Give a thorough explanation",
        "Propose and justify a pricing model for a developer tools company",
        "How will aging populations reshape healthcare budgets in Japan and Italy?",
        "Critically review the evidence that minimum wage increases reduce employment",
        "Plan a multi-region disaster recovery strategy and explain the risks of each option",
        "What are the second-order effects of banning short-term rentals in a tourist city?",
        "Interpret these quarterly results and tell me what they say about the company's future",
        "Judge the merits of nuclear power versus wind for a small island nation",
        "Break down the root causes of our rising customer churn and what to do about it",
        "Appraise the long-run risks of lending to a government with a large deficit",
    ],
    "extraction": [
        "Grab every IBAN from the text below",
        f"Extract the sender, the date, the PO number and the amount from this: {MEMO}",
        "Pull out all hashtags and mentions from these tweets",
        "What medications and doses are listed in this discharge summary?",
        "List the flight numbers and departure times in this itinerary",
        f"Find the email addresses and phone numbers in this note: {MEMO}",
        "Get the version numbers of every dependency named in this changelog",
        "Which companies and acquisition prices appear in this press release?",
        "Capture the invoice number, VAT amount and due date as key-value pairs",
        "Scrape the headings out of this markdown file",
        "Retrieve the license plate numbers mentioned in the police report",
        "Return the start and end dates of each contract clause",
        "Identify the ticker symbols mentioned in this earnings call transcript",
        "Extract the GPS coordinates from these log lines",
        f"From the following, list every person's name: {MEMO}",
        "Copy out the error codes that appear in this stack trace",
    ],
    "classification": [
        f"Classify the sentiment of this review as positive or negative: '{REVIEW}'",
        "Is this SMS a phishing attempt? Reply yes or no",
        f"Is this review angry, neutral or happy? {REVIEW}",
        "Assign one of these topics to the article: health, finance, travel",
        "Decide if this job posting is for an engineering or a sales role",
        "Mark each bug report as a duplicate or new",
        "Which genre is this movie synopsis: comedy, horror or drama?",
        "Determine whether this contract clause is standard or unusual",
        "Is this image caption appropriate for children? Answer safe or unsafe",
        f"Label the customer's intent (refund, exchange or complaint): {REVIEW}",
        "Bucket these expenses into travel, meals or software",
        "Does this chat message violate our harassment policy?",
        "Tell me if this headline is clickbait",
        "Categorize the priority of this incident as P1, P2 or P3",
        "Is this a Spanish or a Portuguese sentence?",
        "Which of our five product lines does this feedback concern?",
    ],
}
QUERIES = [(query, route) for route, queries in TEST_QUERIES.items() for query in queries]


SCORINGS = ("nearest", "top3", "centroid")
"""How a query's score for a route is made from its similarities to the route's examples: the
best one (what issue 10 describes), the mean of the best three, or the similarity to the
normalized mean of the route's example vectors."""


@dataclass(frozen=True)
class Result:
    name: str
    load_s: float
    examples_ms: float  # embedding the 60 examples in one call
    median_ms: float
    p99_ms: float
    cpu_ms: float  # CPU time of the whole process per call, all threads: robust to neighbours
    route_accuracy: dict[str, float]  # by scoring
    tier_accuracy: dict[str, float]
    misses: list[tuple[str, str, str, str]]  # nearest scoring: query, expected, got, example


def route_scores(
    index: ExampleIndex, labels: Sequence[str], query: Vectors
) -> dict[str, dict[str, float]]:
    scores = index.scores(query)
    by_route: dict[str, dict[str, float]] = {s: {} for s in SCORINGS}
    for route in EXAMPLES:
        rows = np.array([i for i, label in enumerate(labels) if label == route])
        mine = scores[rows]
        centroid = index.vectors[rows].mean(axis=0)
        by_route["nearest"][route] = float(mine.max())
        by_route["top3"][route] = float(np.sort(mine)[-3:].mean())
        by_route["centroid"][route] = float(centroid @ query / np.linalg.norm(centroid))
    return by_route


def measure(name: str, load: Callable[[], Embedder], calls: int) -> Result:
    started = time.perf_counter()
    embedder = load()
    load_s = time.perf_counter() - started
    labels = [route for route, texts in EXAMPLES.items() for _ in texts]
    examples = [text for texts in EXAMPLES.values() for text in texts]
    started = time.perf_counter()
    index = ExampleIndex(embedder, examples)
    examples_ms = (time.perf_counter() - started) * 1000
    right_route = dict.fromkeys(SCORINGS, 0)
    right_tier = dict.fromkeys(SCORINGS, 0)
    misses = []
    for query, expected in QUERIES:
        vector = embedder.embed([query])[0]
        for scoring, scores in route_scores(index, labels, vector).items():
            got = max(scores, key=lambda route: scores[route])
            right_route[scoring] += got == expected
            right_tier[scoring] += TIERS[got] == TIERS[expected]
            if scoring == "nearest" and got != expected:
                misses.append((query, expected, got, index.nearest(vector).example))
    texts = [q for q, _ in QUERIES]
    for text in texts[:20]:  # warm-up
        embedder.embed([text])
    timings = []
    cpu_started = time.process_time()
    for i in range(calls):
        text = texts[i % len(texts)]
        started = time.perf_counter()
        embedder.embed([text])
        timings.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / calls
    timings.sort()
    return Result(
        name,
        load_s,
        examples_ms,
        statistics.median(timings),
        timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        cpu_ms,
        {s: n / len(QUERIES) for s, n in right_route.items()},
        {s: n / len(QUERIES) for s, n in right_tier.items()},
        misses,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=500, help="timed single-query calls")
    parser.add_argument("--misses", action="store_true", help="print each misrouted query")
    args = parser.parse_args()
    assert not {q for q, _ in QUERIES} & {t for ts in EXAMPLES.values() for t in ts}
    candidates: list[tuple[str, Callable[[], Embedder]]] = [
        ("wordllama", load_wordllama),
        ("minilm (1 thread)", lambda: load_minilm(threads=1)),
        ("minilm (2 threads)", lambda: load_minilm(threads=2)),
    ]
    print(
        f"# {platform.node()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{sum(map(len, EXAMPLES.values()))} examples, {len(QUERIES)} test queries, "
        f"{args.queries} timed calls"
    )
    results = [measure(name, load, args.queries) for name, load in candidates]
    print("\n| embedder | load s | 60 examples ms | median ms | p99 ms | CPU ms / query |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.name} | {r.load_s:.2f} | {r.examples_ms:.1f} | {r.median_ms:.3f} "
            f"| {r.p99_ms:.3f} | {r.cpu_ms:.3f} |"
        )
    print("\nroute accuracy (tier accuracy), and route accuracy per median ms, by scoring:\n")
    print(
        "| embedder | "
        + " | ".join(SCORINGS)
        + " | "
        + " | ".join(f"{s} / ms" for s in SCORINGS)
        + " |"
    )
    print("|---|" + "---:|" * (2 * len(SCORINGS)))
    for r in results:
        accuracy = " | ".join(
            f"{r.route_accuracy[s]:.1%} ({r.tier_accuracy[s]:.1%})" for s in SCORINGS
        )
        per_ms = " | ".join(f"{r.route_accuracy[s] / r.median_ms:.2f}" for s in SCORINGS)
        print(f"| {r.name} | {accuracy} | {per_ms} |")
    if args.misses:
        for r in results:
            print(f"\n## {r.name}: {len(r.misses)} misrouted by the nearest example")
            for query, expected, got, nearest in r.misses:
                print(f"- [{expected} -> {got}] {query[:90]!r}  (nearest: {nearest!r})")


if __name__ == "__main__":
    main()
