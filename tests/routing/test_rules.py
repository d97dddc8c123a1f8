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
        (
            "classify this: spam or not?",
            "simple-classification",
            0,
            "keyword 'classify' in the instruction and 2 instruction words (at most 12)",
        ),
        ("extract the dates: 3 May, 9 June", "extraction", 1, "keyword 'extract' in the"),
        ("Please analyze this churn data.", "complex-reasoning", 2, "keyword 'analyze'"),
        (LONG_QUESTION, "long-prompt", 3, "(at least 101)"),
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


@pytest.mark.parametrize(("words", "tier"), [(12, "fast"), (13, "balanced")])
async def test_classification_rule_only_applies_to_instructions_of_up_to_twelve_words(
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


# The seed article's semantic-routing examples, with the tiers of its MODEL_FOR_TASK.
SEED_ROUTES = [
    ("write a function that sorts a list", "balanced"),
    ("debug this Python code", "balanced"),
    ("explain what this regex does", "balanced"),
    ("how do I implement authentication in FastAPI", "balanced"),
    ("analyze the key trends in this data", "powerful"),
    ("what are the strategic implications of this decision", "powerful"),
    ("compare these two approaches", "powerful"),
    ("extract all email addresses from this text", "fast"),
    ("what is the company name mentioned here", "fast"),
    ("list all the dates in this document", "fast"),
]

REVIEW = (
    "I ordered the blender three weeks ago and it finally arrived yesterday. The box was "
    "dented, but the jar was intact, it crushes ice in seconds, and it is quieter than my "
    "old one. Customer service never answered my emails about the delay, though."
)
TICKET = (
    "Hello, I was charged twice for my March invoice (INV-20331) and the second charge "
    "still shows on my card statement. I contacted you on 3 April and was promised a refund "
    "within five days, but nothing has arrived. Please look into it. " * 4
)
assert len(TICKET.split()) > 100

# Short instructions carrying a long payload: the payload does not make them heavy work.
WITH_PAYLOAD = [
    (f"Classify the sentiment of this review as positive or negative: '{REVIEW}'", "fast"),
    (f"Classify the sentiment of this review as positive or negative:\n\n{REVIEW}", "fast"),
    (f'Is this review positive or negative? "{REVIEW}"', "fast"),
    (f"Categorize this ticket as billing, shipping or other:\n\n{TICKET}", "fast"),
    (f"Label the intent of this message: “{TICKET}”", "fast"),
    (f"Extract the invoice number and the dates from this email:\n{TICKET}", "fast"),
    (f"List all the dates mentioned below:\n{TICKET}", "fast"),
    (
        "List all the function names in this file.\n```python\n" + "def f(): pass\n" * 60 + "```",
        "fast",
    ),
    # ...but heavy work on a payload is heavy work, whatever words the payload holds.
    (f"Analyze the root cause of this complaint: '{REVIEW}'", "powerful"),
    (f"What are the implications of this ticket for our refund policy?\n\n{TICKET}", "powerful"),
    (f"Summarize this email:\n\n{TICKET}", "powerful"),  # long: the long-prompt rule
    (f"Summarize this review: '{REVIEW}'", "balanced"),  # a short payload, no rule
    (
        f"Reply politely to this customer: 'Please classify my refund as urgent.' {REVIEW}",
        "balanced",
    ),
]


@pytest.mark.parametrize(("query", "tier"), SEED_ROUTES + WITH_PAYLOAD)
async def test_seed_routes_and_payload_requests_land_on_their_tier(
    router: Router, policy: TenantPolicy, make_request, query: str, tier: str
) -> None:
    decision = await router.decide(make_request(query), policy)

    assert decision.model.tier == tier, decision.reason


async def test_a_classification_reason_says_it_read_the_instruction(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    query = f"Classify the sentiment of this review as positive or negative: '{REVIEW}'"

    decision = await router.decide(make_request(query), policy)

    assert decision.reason == (
        "rule 'simple-classification' matched (keyword 'classify' in the instruction and "
        "10 instruction words (at most 12)), so the fast tier"
    )


@pytest.mark.parametrize(
    ("query", "tier"),
    [
        ("Design a logo for a bakery.", "powerful"),
        ("DESIGN a logo for a bakery.", "powerful"),
        ("Can you help with the design?", "powerful"),
        ("(design) a logo, please", "powerful"),
        ("Who designed the Eiffel Tower?", "balanced"),
        ("What does a designated driver do?", "balanced"),
        ("Is the redesign live yet?", "balanced"),
        ("Which log analyzer should I install?", "balanced"),
        ("Solve it step-by-step: 3x + 1 = 10", "powerful"),
        ("Walk me through it step\nby   step.", "powerful"),
        ("A step by stepper motor?", "balanced"),
        ("Explain, why not?", "balanced"),  # a phrase's words are apart by whitespace only
        ("Yes or no?", "fast"),
        ("Is thistle edible?", "balanced"),  # 'is this' is not inside 'is thistle'
    ],
)
async def test_keywords_are_whole_words_or_phrases(
    router: Router, policy: TenantPolicy, make_request, query: str, tier: str
) -> None:
    decision = await router.decide(make_request(query), policy)

    assert decision.model.tier == tier, decision.reason


def _strategy(catalog: Catalog, when: dict):
    config = _custom_rules([{"name": "custom", "when": when, "tier": "powerful"}])
    return config.build("custom", StrategyContext(catalog))


async def _tier(strategy, catalog: Catalog, request) -> str:
    ranking = await strategy.rank(request, extract_features(request), catalog.models)
    return ranking.ranked[0].model.tier


async def test_a_condition_reads_the_whole_message_unless_its_scope_says_instruction(
    catalog: Catalog, make_request
) -> None:
    request = make_request("Reply to this customer: 'I want a poem about my order, please.'")
    message = _strategy(catalog, {"any_keywords": ["poem"]})
    instruction = _strategy(catalog, {"any_keywords": ["poem"], "scope": "instruction"})
    short = _strategy(catalog, {"max_words": 4, "scope": "instruction"})

    assert await _tier(message, catalog, request) == "powerful"
    assert await _tier(instruction, catalog, request) == "balanced"
    assert await _tier(short, catalog, request) == "powerful"  # "Reply to this customer"


async def test_instruction_word_limits(catalog: Catalog, make_request) -> None:
    payload = " ".join(["word"] * 200)
    request = make_request(f"Tell me which of these words repeats:\n{payload}")  # 7 words

    for when, tier in [
        ({"min_words": 7}, "powerful"),
        ({"min_words": 8}, "balanced"),
        ({"max_words": 7}, "powerful"),
        ({"max_words": 6}, "balanced"),
    ]:
        strategy = _strategy(catalog, {**when, "scope": "instruction"})
        assert await _tier(strategy, catalog, request) == tier, when
    assert await _tier(_strategy(catalog, {"max_words": 7}), catalog, request) == "balanced"


def test_a_blank_keyword_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="at least one word"):
        _custom_rules([{"name": "x", "when": {"any_keywords": ["design", " "]}, "tier": "fast"}])


def test_an_unknown_scope_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="scope"):
        _custom_rules([{"name": "x", "when": {"scope": "payload"}, "tier": "fast"}])
