"""Configuration (F13): the embedded default, and errors that name file:line and the field."""

from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from fareway.budgets.ledger import Limit, OnExceed
from fareway.budgets.windows import Window
from fareway.config.loader import ConfigError, load_config, parse_config
from fareway.core.errors import StartupError
from fareway.routing.decision import CascadeMode, ConfidenceSource
from fareway.routing.strategies.cascade import CascadeConfig
from fareway.routing.strategies.rules import RulesConfig

NAME = "fareway.yaml"
DEFAULT = resources.files("fareway.config").joinpath("default.yaml").read_text(encoding="utf-8")


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line containing `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def edited(old: str, new: str, text: str = DEFAULT) -> str:
    assert text.count(old) == 1, f"{old!r} must appear exactly once"
    return text.replace(old, new)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, NAME)
    return str(caught.value)


# -- the embedded default -----------------------------------------------------------------------


def test_embedded_default_loads() -> None:
    config = load_config()

    assert config.tiers == ("fast", "balanced", "powerful")
    assert [(m.id, m.tier) for m in config.models] == [
        ("claude-haiku-4-5", "fast"),
        ("claude-sonnet-4-6", "balanced"),
        ("claude-opus-4-6", "powerful"),
    ]
    assert [(m.input_usd_per_mtok, m.output_usd_per_mtok) for m in config.models] == [
        (Decimal(1), Decimal(5)),
        (Decimal(3), Decimal(15)),
        (Decimal(5), Decimal(25)),
    ]
    assert config.default_strategy == "learned"
    assert isinstance(config.strategies["rules"], RulesConfig)
    assert config.strategies["rules"].default_tier == "balanced"
    assert set(config.tenants) == {"demo"}
    assert config.problems() == []


def test_default_demo_tenant_budget() -> None:
    demo = load_config().tenants["demo"]

    assert [limit.limit() for limit in demo.budget] == [
        Limit(Window.DAY, 10_000_000, 0.8, OnExceed.REJECT),
        Limit(Window.MONTH, 100_000_000, 0.8, OnExceed.REJECT),
    ]
    assert demo.latency_target_ms == 2000
    assert demo.allowed_models is None


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text(edited("port: 50051", "port: 6000"), encoding="utf-8")

    assert load_config(path).server.port == 6000


# -- errors -------------------------------------------------------------------------------------


def test_type_error_names_file_line_and_field() -> None:
    text = edited("port: 50051", "port: abc")

    message = error_of(text)

    assert message.startswith(f"{NAME}:{line_of(text, 'port: abc')}: server.port: ")
    assert "integer" in message


def test_errors_from_a_file_name_its_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = edited("port: 50051", "port: abc")
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value).startswith(f"{path}:{line_of(text, 'port: abc')}: server.port:")


def test_unknown_model_tier() -> None:
    text = edited("    tier: balanced\n", "    tier: medium\n")

    message = error_of(text)

    assert (
        f"{NAME}:{line_of(text, 'tier: medium')}: models.1.tier: unknown tier 'medium'" in message
    )
    assert "known: fast, balanced, powerful" in message


def test_unknown_model_provider() -> None:
    text = edited(
        "provider: anthropic\n    provider_model_id: claude-opus-4-6",
        "provider: openai\n    provider_model_id: claude-opus-4-6",
    )

    message = error_of(text)

    line = line_of(text, "provider: openai")
    assert f"{NAME}:{line}: models.2.provider: unknown provider 'openai'" in message
    assert "known: anthropic" in message


def test_unknown_strategy_type_lists_the_known_ones() -> None:
    text = edited("type: rules", "type: oracle")

    message = error_of(text)

    assert f"{NAME}:{line_of(text, 'type: oracle')}: strategies.rules:" in message
    assert "'semantic'" in message
    assert "'rules'" in message


def test_a_classifier_must_take_its_routes_from_a_semantic_strategy() -> None:
    text = edited("routes_from: semantic", "routes_from: rules")

    message = error_of(text)

    assert (
        f"{NAME}:{line_of(text, 'routes_from: rules')}: strategies.classifier.routes_from: "
        "'rules' is a rules strategy; it must be semantic"
    ) in message


def test_unknown_provider_type_lists_the_known_ones() -> None:
    text = edited("type: anthropic", "type: bedrock")

    message = error_of(text)

    assert f"{NAME}:{line_of(text, 'type: bedrock')}: providers.anthropic:" in message
    assert "'anthropic'" in message
    assert "'sim'" in message


def test_unknown_default_strategy() -> None:
    text = edited("default_strategy: learned", "default_strategy: oracle")

    message = error_of(text)

    line = line_of(text, "default_strategy: oracle")
    assert f"{NAME}:{line}: default_strategy: unknown strategy 'oracle'; known: rules" in message


def test_duplicated_model_id() -> None:
    text = edited("- id: claude-opus-4-6", "- id: claude-haiku-4-5")

    message = error_of(text)

    second = line_of(text, "- id: claude-haiku-4-5", occurrence=2)
    assert f"{NAME}:{second}: models.2.id: model id 'claude-haiku-4-5' appears twice" in message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("  grace_s: 10", "  grace_s: 10\n  workers: 4", "server.workers"),
        ("    quality: 0.95", "    quality: 0.95\n    colour: blue", "models.2.colour"),
        ("latency_target_ms: 2000", "latency_target_ms: 2000\n    vip: true", "tenants.demo.vip"),
        ("default_strategy: learned", "default_strategy: learned\nrouting: rules", "routing"),
    ],
)
def test_unknown_keys_are_refused(old: str, new: str, field: str) -> None:
    text = edited(old, new)
    added = new.splitlines()[-1].strip()

    message = error_of(text)

    assert f"{NAME}:{line_of(text, added)}: {field}: Extra inputs are not permitted" in message


def test_error_inside_a_strategy_names_the_real_field_and_line() -> None:
    # Pydantic puts the union tag ("rules") in its error paths; it must not leak into the
    # field, nor lead the line lookup into the strategy's `rules:` list.
    text = edited("default_tier: balanced", "default_tier: [balanced]")

    message = error_of(text)

    line = line_of(text, "default_tier: [balanced]")
    assert message.startswith(f"{NAME}:{line}: strategies.rules.default_tier: ")


def test_error_inside_a_rule_names_its_index() -> None:
    text = edited("min_words: 101", "min_words: many")

    message = error_of(text)

    line = line_of(text, "min_words: many")
    assert message.startswith(f"{NAME}:{line}: strategies.rules.rules.3.when.min_words: ")


def test_unknown_tier_in_a_rule() -> None:
    text = edited("tier: fast\n      - name: complex", "tier: quick\n      - name: complex")

    message = error_of(text)

    line = line_of(text, "tier: quick")
    assert f"{NAME}:{line}: strategies.rules.rules.1.tier: unknown tier 'quick'" in message


def test_price_finer_than_a_micro_usd_is_refused_with_its_line() -> None:
    text = edited("input_usd_per_mtok: 3.00", "input_usd_per_mtok: 3.0000001")

    message = error_of(text)

    line = line_of(text, "3.0000001")
    assert message.startswith(f"{NAME}:{line}: models.1.input_usd_per_mtok: ")
    assert "micro-USD" in message


def test_invalid_yaml_names_the_line() -> None:
    text = edited("tiers: [fast, balanced, powerful]", "tiers: [fast, balanced, powerful")

    message = error_of(text)

    assert message.startswith(f"{NAME}:")
    assert "not valid YAML" in message
    line = int(message.split(":")[1])
    # Where the list opens, or where the parser noticed it never closed.
    assert line in (line_of(text, "tiers: [fast"), line_of(text, "providers:"))


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    assert "expected a mapping at the top level" in error_of(text)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(path) in str(caught.value)
    assert "cannot read" in str(caught.value)


def test_missing_required_section_names_it() -> None:
    start = DEFAULT.index("tenants:")
    end = DEFAULT.index("admin_keys:")
    text = DEFAULT[:start] + DEFAULT[end:]

    message = error_of(text)

    assert f"{NAME}:" in message
    assert "tenants: Field required" in message


def test_every_schema_problem_is_reported() -> None:
    text = edited("port: 50051", "port: abc")
    text = edited("quality: 0.70", "quality: 7", text)
    text = edited("  grace_s: 10", "  grace_s: 10\n  workers: 4", text)

    lines = error_of(text).splitlines()

    assert len(lines) == 3
    assert any(f":{line_of(text, 'port: abc')}: server.port:" in x for x in lines)
    assert any(f":{line_of(text, 'quality: 7')}: models.0.quality:" in x for x in lines)
    assert any(f":{line_of(text, 'workers: 4')}: server.workers:" in x for x in lines)


def test_every_cross_reference_problem_is_reported() -> None:
    text = edited("    tier: balanced\n", "    tier: medium\n")
    text = edited("- id: claude-opus-4-6", "- id: claude-haiku-4-5", text)
    text = edited("default_strategy: learned", "default_strategy: oracle", text)

    lines = error_of(text).splitlines()

    assert len(lines) == 4  # the duplicated id is reported at both places
    assert sum("models.1.tier: unknown tier 'medium'" in x for x in lines) == 1
    assert sum("appears twice" in x for x in lines) == 2
    assert sum("default_strategy: unknown strategy 'oracle'" in x for x in lines) == 1


def test_invalid_yaml_is_one_line_naming_the_file_not_a_placeholder() -> None:
    text = edited("tiers: [fast, balanced, powerful]", "tiers: [fast, balanced, powerful")

    message = error_of(text)

    assert "<unicode string>" not in message
    assert len(message.splitlines()) == 1
    assert f"(while parsing a flow sequence at line {line_of(text, 'tiers: [fast')})" in message


def test_a_tab_is_refused_with_its_line() -> None:
    text = edited("  grace_s: 10", "\tgrace_s: 10")

    message = error_of(text)

    assert message.startswith(f"{NAME}:{line_of(text, 'grace_s: 10')}: not valid YAML: ")
    assert "'\\t'" in message


def test_an_unprintable_character_is_refused_with_its_line() -> None:
    text = edited("default_strategy: learned", "default_strategy: learned\x07")

    message = error_of(text)

    assert message.startswith(f"{NAME}:{line_of(text, 'default_strategy')}: not valid YAML: ")
    assert "#x0007" in message


def test_a_duplicated_key_is_refused_with_both_lines() -> None:
    text = edited("  grace_s: 10", "  grace_s: 10\n  port: 6000")

    message = error_of(text)

    first, second = line_of(text, "port: 50051"), line_of(text, "port: 6000")
    assert message == f"{NAME}:{second}: key 'port' appears twice (first on line {first})"


def test_every_duplicated_key_is_reported_at_any_depth() -> None:
    text = edited("    quality: 0.95", "    quality: 0.95\n    quality: 0.5")
    text = edited(
        "default_strategy: learned", "default_strategy: learned\ndefault_strategy: x", text
    )

    lines = error_of(text).splitlines()

    assert lines == [
        f"{NAME}:{line_of(text, 'quality: 0.5')}: key 'quality' appears twice "
        f"(first on line {line_of(text, 'quality: 0.95')})",
        f"{NAME}:{line_of(text, 'default_strategy: x')}: key 'default_strategy' appears twice "
        f"(first on line {line_of(text, 'default_strategy: learned')})",
    ]


def test_the_same_key_in_different_mappings_is_fine() -> None:
    # Every model has an `id`, every section may have a `type`: only repeats within one
    # mapping are mistakes. Aliases reuse a mapping without repeating its keys.
    text = edited("admin_keys:", "x-sim: &sim {ttft_ms: 0}\nadmin_keys:")

    with pytest.raises(ConfigError) as caught:
        parse_config(text, NAME)

    assert "appears twice" not in str(caught.value)
    assert "x-sim: Extra inputs are not permitted" in str(caught.value)


def test_a_config_error_is_a_startup_error() -> None:
    assert issubclass(ConfigError, StartupError)


def test_a_file_that_is_not_utf8_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# caf\xe9\n".encode("latin-1") + DEFAULT.encode())

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value) == f"{path}: not UTF-8 text (byte 5 cannot be decoded)"


# -- cascades and hedging -----------------------------------------------------------------------


def test_the_default_has_a_buffered_cascade_strategy_and_hedging_on() -> None:
    config = load_config()

    cascade = config.strategies["cascade"]
    assert isinstance(cascade, CascadeConfig)
    assert (cascade.threshold, cascade.max_escalations, cascade.mode) == (
        0.8,
        2,
        CascadeMode.BUFFERED,
    )
    assert cascade.confidence is ConfidenceSource.SELF_ASSESSMENT
    assert config.hedging.enabled is True
    demo = config.tenants["demo"]
    assert (demo.hedging, demo.cascade.threshold, demo.cascade.mode) == (None, None, None)


def test_a_tenant_may_override_the_cascade_and_hedging() -> None:
    text = edited(
        "latency_target_ms: 2000",
        "latency_target_ms: 2000\n    hedging: false\n"
        "    cascade: {threshold: 0.6, mode: speculative}",
    )

    demo = parse_config(text, NAME).tenants["demo"]

    assert demo.hedging is False
    assert (demo.cascade.threshold, demo.cascade.mode) == (0.6, CascadeMode.SPECULATIVE)


@pytest.mark.parametrize(
    ("old", "new", "field", "says"),
    [
        ("    threshold: 0.8", "    threshold: 1.2", "strategies.cascade.threshold", "less than"),
        (
            "    max_escalations: 2",
            "    max_escalations: -1",
            "strategies.cascade.max_escalations",
            "greater than or equal to 0",
        ),
        ("    mode: buffered", "    mode: eager", "strategies.cascade.mode", "'speculative'"),
        (
            "    mode: buffered",
            "    mode: buffered\n    confidence: vibes",
            "strategies.cascade.confidence",
            "'logprobs'",
        ),
        ("  enabled: true\n\ntenants", "  enabled: maybe\n\ntenants", "hedging.enabled", "bool"),
        (
            "latency_target_ms: 2000",
            "latency_target_ms: 2000\n    hedging: sometimes",
            "tenants.demo.hedging",
            "bool",
        ),
        (
            "latency_target_ms: 2000",
            "latency_target_ms: 2000\n    cascade: {threshold: -0.5}",
            "tenants.demo.cascade.threshold",
            "greater than or equal to 0",
        ),
        (
            "latency_target_ms: 2000",
            "latency_target_ms: 2000\n    cascade: {mode: eager}",
            "tenants.demo.cascade.mode",
            "'buffered' or 'speculative'",
        ),
        (
            "latency_target_ms: 2000",
            "latency_target_ms: 2000\n    cascade: {levels: 3}",
            "tenants.demo.cascade.levels",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_cascade_and_hedging_errors_name_the_line_and_the_field(
    old: str, new: str, field: str, says: str
) -> None:
    text = edited(old, new)
    bad = new.replace("\n\ntenants", "").splitlines()[-1].strip()

    message = error_of(text)

    assert message.startswith(f"{NAME}:{line_of(text, bad)}: {field}: "), message
    assert says in message
