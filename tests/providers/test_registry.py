"""Building providers from configuration: a missing key is a start-up error that names it."""

from __future__ import annotations

import pytest

from fareway.core.clock import ManualClock
from fareway.core.errors import StartupError
from fareway.providers.registry import AnthropicConfig


def test_a_required_key_that_is_not_set_names_the_provider_and_the_variable() -> None:
    config = AnthropicConfig(
        type="anthropic", api_key_env="ACME_ANTHROPIC_KEY", simulate_without_key=False
    )
    with pytest.raises(StartupError) as caught:
        config.build("acme-anthropic", ManualClock(), {}, {})
    assert "providers.acme-anthropic" in str(caught.value)
    assert "$ACME_ANTHROPIC_KEY" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_without_a_key_the_default_serves_simulated_models() -> None:
    provider = AnthropicConfig(type="anthropic").build("anthropic", ManualClock(), {}, {})
    assert provider.simulated
