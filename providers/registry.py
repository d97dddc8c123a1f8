"""The provider registry: every provider `type` a configuration may name, and how to build it.

To add a provider family: write `providers/<name>.py` implementing `base.Provider`, add a
config model here with a `Literal` type and a `build`, and add it to `ProviderConfig`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.core.clock import Clock
from fareway.providers.anthropic import AnthropicProvider
from fareway.providers.base import Provider
from fareway.providers.sim import SimProfile, SimProvider

log = logging.getLogger(__name__)


class AnthropicConfig(BaseModel):
    """`type: anthropic`: the Messages API, at Anthropic or any server that speaks it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["anthropic"]
    api_key_env: str = "ANTHROPIC_API_KEY"
    base_url: str | None = None
    timeout_s: float = Field(600.0, gt=0)
    # With no key in the environment, serve this provider's models through `sim` rather than
    # refusing to start: the embedded default must run anywhere.
    simulate_without_key: bool = True

    def build(
        self, name: str, clock: Clock, profiles: Mapping[str, SimProfile], env: Mapping[str, str]
    ) -> Provider:
        """The provider, or a simulated stand-in when no key is set and that is allowed."""
        key = env.get(self.api_key_env, "")
        if key:
            return AnthropicProvider(key, self.base_url, self.timeout_s, name)
        if not self.simulate_without_key:
            raise ValueError(f"provider '{name}' needs an API key in ${self.api_key_env}")
        log.warning(
            "$%s is not set: provider '%s' is simulated (sim); answers are not real",
            self.api_key_env,
            name,
        )
        return SimProvider(clock, profiles)


class SimConfig(BaseModel):
    """`type: sim`: deterministic simulated models, paced by each model's `sim` profile."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["sim"]

    def build(
        self, name: str, clock: Clock, profiles: Mapping[str, SimProfile], env: Mapping[str, str]
    ) -> Provider:
        """A simulated provider."""
        return SimProvider(clock, profiles)


ProviderConfig = Annotated[AnthropicConfig | SimConfig, Field(discriminator="type")]
