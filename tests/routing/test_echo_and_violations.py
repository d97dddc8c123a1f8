"""What the router finds wrong with a request's hints, all at once, and how it quotes them."""

from __future__ import annotations

from fareway.core.errors import FieldViolation
from fareway.routing.echo import ECHO_CHARS, echo
from fareway.routing.request import Hints
from fareway.routing.router import Router, TenantPolicy


def test_echo_keeps_short_values_and_cuts_long_ones() -> None:
    assert echo("claude-haiku-4-5") == "claude-haiku-4-5"
    assert echo("m" * ECHO_CHARS) == "m" * ECHO_CHARS
    assert echo("m" * 10_000) == "m" * ECHO_CHARS + "…"


def test_echo_escapes_what_is_not_printable() -> None:
    assert echo("a\nb\x00c\u200b") == "a\\nb\\x00c\\u200b"


def test_every_hint_problem_is_reported_at_once(router: Router, policy: TenantPolicy) -> None:
    hints = Hints(
        strategy="magic",
        model="gpt-9",
        tier="ludicrous",
        required_capabilities=("tools", " ", "teleport"),
    )

    found = router.violations(hints, 10**7, policy)

    assert [v.field for v in found] == [
        "hints.strategy",
        "hints.model",
        "hints.tier",
        "max_tokens",
        "hints.required_capabilities[1]",
        "hints.required_capabilities[2]",
    ]
    assert found[4] == FieldViolation("hints.required_capabilities[1]", "must not be empty")
    assert "unknown capability 'teleport'" in found[5].description


def test_the_step_strategy_reports_an_unknown_step_type(router: Router) -> None:
    policy = TenantPolicy("rules", step_strategy="steps")

    (found,) = router.violations(Hints(step_type="x" * 5000), 100, policy)

    assert found.field == "hints.step_type"
    assert "x" * ECHO_CHARS + "…" in found.description
    assert len(found.description) < 400


def test_a_pin_wins_so_the_step_type_is_not_checked(router: Router) -> None:
    policy = TenantPolicy("rules", step_strategy="steps")
    pinned = Hints(step_type="dancing", tier="fast")

    assert router.violations(pinned, 100, policy) == []
