"""Rule-based routing (F2) with the default rule set, checked against the seed article."""

import pytest

from fareway.routing.catalog import Catalog
from fareway.routing.features import extract_features
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategies.rules import RulesConfig
from fareway.routing.strategy import StrategyContext

# Longer than the 100 words above which the article sends a query to the powerful tier.
LONG_QUESTION = "Here is the incident timeline from last night. " * 13 + "What happened?"
assert len(LONG_QUESTION.split()) > 100

ARTICLE_EXAMPLES = [
    ("classify this: spam or not?", "fast"),
    ("extract all email addresses from this text", "fast"),
    ("analyze the strategic implications of moving our support team offshore", "powerful"),
    ("Compare and contrast REST and gRPC for internal services.", "powerful"),
    ("Walk me through this proof step by step.", "powerful"),
    ("Design a rate limiter for a multi-region API.", "powerful"),
    (LONG_QUESTION, "powerful"),
    ("How do I reset my password in the mobile app?", "balanced"),
]

# The article's task table: intent classification and entity extraction -> small model,
# simple Q&A with context -> medium, multi-step reasoning and complex analysis -> large.
LABELLED = [
    # intent classification
    ("classify this: spam or not?", "fast"),
    ("Is this review positive or negative?", "fast"),
    ("Label the intent: 'cancel my subscription please'", "fast"),
    ("What is the sentiment of this tweet?", "fast"),
    ("Categorize this ticket: billing, shipping, or other.", "fast"),
    ("True or false: the meeting is on Monday.", "fast"),
    ("Yes or no: is this message a question?", "fast"),
    ("Classify the language of this sentence.", "fast"),
    # entity extraction (the last two are the article's own semantic-routing examples)
    ("extract all email addresses from this text", "fast"),
    ("Extract the invoice number and total.", "fast"),
    ("Extract every phone number from the email below.", "fast"),
    ("what is the company name mentioned here", "fast"),
    ("list all the dates in this document", "fast"),
    # simple Q&A with context
    ("What is the capital of Australia?", "balanced"),
    ("How do I reset my password in the mobile app?", "balanced"),
    ("Summarize this paragraph in two sentences.", "balanced"),
    ("What does HTTP status 404 mean?", "balanced"),
    ("According to the passage above, when was the bridge completed?", "balanced"),
    ("Translate 'good morning, see you tomorrow' into Spanish.", "balanced"),
    ("Who wrote Pride and Prejudice, and when was it published?", "balanced"),
    ("Based on the order history above, when did this customer last buy shoes?", "balanced"),
    ("Write a short thank-you note to a colleague who covered my shift.", "balanced"),
    # multi-step reasoning
    ("Solve this step by step: a train at 60 mph covers 150 miles; how long?", "powerful"),
    ("Explain why the 2008 financial crisis spread so quickly to European banks.", "powerful"),
    ("Design a database schema for a multi-tenant billing system.", "powerful"),
    ("If Alice is older than Bob and Bob is older than Carol, who is youngest?", "powerful"),
    # complex analysis and synthesis
    ("analyze the strategic implications of acquiring our main competitor", "powerful"),
    ("Compare and contrast microservices and a modular monolith for a small team.", "powerful"),
    ("What are the implications of raising interest rates on housing supply?", "powerful"),
    ("Provide a comprehensive review of the risks in this supplier contract.", "powerful"),
    ("Synthesize the findings of these three studies into one recommendation.", "powerful"),
    ("Analyse the key trends in this quarterly sales data.", "powerful"),
    (LONG_QUESTION, "powerful"),
]


@pytest.mark.parametrize(("query", "tier"), ARTICLE_EXAMPLES)
async def test_article_examples_land_on_their_tier(
    router: Router, policy: TenantPolicy, make_request, query: str, tier: str
) -> None:
    decision = await router.decide(make_request(query), policy)

    assert decision.strategy == "rules"
    assert decision.model.tier == tier, decision.reason


async def test_accuracy_on_the_labelled_table_reaches_the_article_target(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    misrouted = []
    for query, expected in LABELLED:
        decision = await router.decide(make_request(query), policy)
        if decision.model.tier != expected:
            misrouted.append(f"{query[:60]!r}: {decision.model.tier}, wanted {expected}")

    accuracy = 1 - len(misrouted) / len(LABELLED)
    assert accuracy >= 0.9, f"accuracy {accuracy:.1%}; misrouted:\n" + "\n".join(misrouted)


@pytest.mark.parametrize(
    ("query", "rule", "index", "why"),
    [
        ("classify this: spam or not?", "simple-classification", 0, "keyword 'classify'"),
        ("Please analyze this churn data.", "complex-reasoning", 1, "keyword 'analyze'"),
        (LONG_QUESTION, "long-prompt", 2, "(at least 101)"),
    ],
)
async def test_reason_names_the_rule_and_signals_its_index(
    router: Router, policy: TenantPolicy, make_request, query: str, rule: str, index: int, why: str
) -> None:
    decision = await router.decide(make_request(query), policy)

    assert f"rule '{rule}'" in decision.reason
    assert why in decision.reason
    assert decision.signals["rules.matched_index"] == index


async def test_no_match_falls_to_the_default_tier_and_says_so(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    decision = await router.decide(make_request("What is the capital of Peru?"), policy)

    assert decision.model.tier == "balanced"
    assert "no rule matched" in decision.reason
    assert "default balanced tier" in decision.reason
    assert decision.signals["rules.matched_index"] == -1


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ("classify this: spam or not?", ["fast", "balanced", "powerful"]),
        ("What is the capital of Peru?", ["balanced", "powerful", "fast"]),
        ("Please analyze this churn data.", ["powerful", "balanced", "fast"]),
    ],
)
async def test_ranking_is_target_tier_then_stronger_then_weaker(
    router: Router, policy: TenantPolicy, make_request, query: str, order: list[str]
) -> None:
    decision = await router.decide(make_request(query), policy)

    assert [c.model.tier for c in decision.ranked] == order
    scores = [c.score for c in decision.ranked]
    assert scores[0] > scores[-1]
    assert scores == sorted(scores, reverse=True)


async def test_keywords_match_case_insensitively(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    decision = await router.decide(make_request("CLASSIFY THIS: SPAM OR NOT?"), policy)

    assert decision.model.tier == "fast"


@pytest.mark.parametrize(("words", "tier"), [(9, "fast"), (10, "balanced")])
async def test_classification_rule_only_applies_below_ten_words(
    router: Router, policy: TenantPolicy, make_request, words: int, tier: str
) -> None:
    query = " ".join(["classify"] + ["word"] * (words - 1))

    decision = await router.decide(make_request(query), policy)

    assert decision.model.tier == tier


@pytest.mark.parametrize(("words", "tier"), [(100, "balanced"), (101, "powerful")])
async def test_long_prompt_rule_applies_above_one_hundred_words(
    router: Router, policy: TenantPolicy, make_request, words: int, tier: str
) -> None:
    decision = await router.decide(make_request(" ".join(["word"] * words)), policy)

    assert decision.model.tier == tier


async def test_first_matching_rule_wins(router: Router, policy: TenantPolicy, make_request) -> None:
    # Short and a classification (rule 0), but also "step by step" (rule 1): rule 0 wins.
    decision = await router.decide(make_request("Classify this step by step."), policy)

    assert decision.model.tier == "fast"
    assert decision.signals["rules.matched_index"] == 0


async def test_rules_look_at_the_last_user_turn_only(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    request = make_request("Thanks! Now what is the capital of Peru?", system="Analyze deeply.")

    decision = await router.decide(request, policy)

    assert decision.model.tier == "balanced"


async def test_target_tier_not_allowed_falls_back_to_the_nearest_stronger(
    router: Router, make_request
) -> None:
    no_haiku = TenantPolicy("rules", frozenset({"claude-sonnet-4-6", "claude-opus-4-6"}))

    decision = await router.decide(make_request("classify this: spam or not?"), no_haiku)

    assert [c.model.id for c in decision.ranked] == ["claude-sonnet-4-6", "claude-opus-4-6"]


def _custom_rules(rules: list[dict]) -> RulesConfig:
    return RulesConfig.model_validate({"type": "rules", "default_tier": "balanced", "rules": rules})


@pytest.mark.parametrize(
    ("when", "matching", "not_matching"),
    [
        (
            {"has_code": True},
            {"text": "Why does this fail?\n```\nx = 1 / 0\n```"},
            {"text": "Why does my code fail?"},
        ),
        (
            {"step_types": ["planning"]},
            {"text": "next?", "step_type": "planning"},
            {"text": "next?", "step_type": "summarization"},
        ),
        (
            {"labels": {"team": "legal"}},
            {"text": "Review this.", "labels": {"team": "legal"}},
            {"text": "Review this.", "labels": {"team": "sales"}},
        ),
        (
            {"min_tokens": 1000},
            {"text": "Summarize.", "system": "context " * 500},
            {"text": "Summarize.", "system": "context"},
        ),
    ],
)
async def test_configurable_conditions(
    catalog: Catalog, make_request, when: dict, matching: dict, not_matching: dict
) -> None:
    strategy = _custom_rules([{"name": "custom", "when": when, "tier": "powerful"}]).build(
        "custom", StrategyContext(catalog)
    )

    async def tier_for(fields: dict) -> str:
        fields = dict(fields)
        request = make_request(fields.pop("text"), **fields)
        ranking = await strategy.rank(request, extract_features(request), catalog.models)
        return ranking.ranked[0].model.tier

    assert await tier_for(matching) == "powerful"
    assert await tier_for(not_matching) == "balanced"


async def test_a_rule_may_name_a_model(catalog: Catalog, make_request) -> None:
    config = _custom_rules(
        [{"name": "to-opus", "when": {"any_keywords": ["poem"]}, "model": "claude-opus-4-6"}]
    )
    strategy = config.build("rules", StrategyContext(catalog))
    request = make_request("Write a poem about routers.")

    ranking = await strategy.rank(request, extract_features(request), catalog.models)

    assert ranking.ranked[0].model.id == "claude-opus-4-6"
    assert "rule 'to-opus'" in ranking.reason
    assert "claude-opus-4-6" in ranking.reason
