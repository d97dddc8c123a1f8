"""The provider registry: every provider `type` a configuration may name, and how to build it.

To add a provider family: write `providers/<name>.py` implementing `base.Provider`, add a
config model here with a `Literal` type and a `build`, and add it to `ProviderConfig`.

A provider's module, and with it its SDK, is imported in its `build`, not here: loading a
configuration must not pay for SDKs it does not use (the anthropic SDK alone takes seconds to
import on a small machine).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.core.clock import Clock
from fareway.core.errors import StartupError
from fareway.providers.base import Provider
from fareway.providers.sim import SimProfile, SimProvider

log = logging.getLogger(__name__)

MaxTokensField = Literal["max_tokens", "max_completion_tokens"]
"""The request field an OpenAI-compatible server reads the answer's length limit from."""


class AnthropicConfig(BaseModel):
    """`type: anthropic`: the Messages API, at Anthropic or any server that speaks it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["anthropic"]
    api_key_env: str = "ANTHROPIC_API_KEY"
    base_url: str | None = None
    timeout_s: float = Field(600.0, gt=0)
    # How long an attempt may wait for its first token before it fails as a timeout, the next
    # candidate takes over and the model's circuit breaker counts a failure. None (default):
    # only timeout_s applies, since a long prompt on a large model can rightly take a minute.
    first_token_timeout_s: float | None = Field(None, gt=0)
    # With no key in the environment, serve this provider's models through `sim` rather than
    # refusing to start: the embedded default must run anywhere.
    simulate_without_key: bool = True

    def build(
        self, name: str, clock: Clock, profiles: Mapping[str, SimProfile], env: Mapping[str, str]
    ) -> Provider:
        """The provider, or a simulated stand-in when no key is set and that is allowed."""
        key = env.get(self.api_key_env, "")
        if key:
            from fareway.providers.anthropic import AnthropicProvider

            return AnthropicProvider(key, self.base_url, self.timeout_s, name)
        if not self.simulate_without_key:
            raise StartupError(
                f"providers.{name}: needs an API key in ${self.api_key_env}, which is not set "
                "(or set simulate_without_key: true)"
            )
        return _simulated(name, self.api_key_env, clock, profiles)


PLACEHOLDER_API_KEY = "sk-no-key-required"
"""Sent when no key is configured: local OpenAI-compatible servers ignore the key's value."""


class OpenAIConfig(BaseModel):
    """`type: openai`: chat completions at any OpenAI-compatible server (vLLM, Ollama, ...)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["openai"]
    # Required: "OpenAI-compatible" names no one server, and a silent default to OpenAI's own
    # would send a local model's traffic (and key) to the wrong place.
    base_url: str = Field(min_length=1)
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(600.0, gt=0)
    first_token_timeout_s: float | None = Field(None, gt=0)  # as AnthropicConfig's
    # `max_tokens` works everywhere but OpenAI's reasoning models (see `OpenAIProvider`).
    max_tokens_field: MaxTokensField = "max_tokens"
    # Off by default: a local server usually needs no key, so a missing key is not a reason to
    # stop serving real answers.
    simulate_without_key: bool = False

    def build(
        self, name: str, clock: Clock, profiles: Mapping[str, SimProfile], env: Mapping[str, str]
    ) -> Provider:
        """The provider; without a key, a simulated stand-in if allowed, else a placeholder key."""
        key = env.get(self.api_key_env, "")
        if not key and self.simulate_without_key:
            return _simulated(name, self.api_key_env, clock, profiles)
        if not key:
            # Ollama, vLLM and LM Studio accept any key, but the SDK insists on one. A server
            # that does check keys answers 401, which fails the call as `rejected`.
            log.warning(
                "$%s is not set: provider '%s' sends a placeholder API key to %s",
                self.api_key_env,
                name,
                self.base_url,
            )
            key = PLACEHOLDER_API_KEY
        from fareway.providers.openai import OpenAIProvider

        return OpenAIProvider(key, self.base_url, self.timeout_s, name, self.max_tokens_field)


class SimConfig(BaseModel):
    """`type: sim`: deterministic simulated models, paced by each model's `sim` profile."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["sim"]
    first_token_timeout_s: float | None = Field(None, gt=0)  # as AnthropicConfig's

    def build(
        self, name: str, clock: Clock, profiles: Mapping[str, SimProfile], env: Mapping[str, str]
    ) -> Provider:
        """A simulated provider."""
        return SimProvider(clock, profiles)


def _simulated(
    name: str, api_key_env: str, clock: Clock, profiles: Mapping[str, SimProfile]
) -> Provider:
    """The `sim` stand-in for a provider whose key is missing, announced in the log."""
    log.warning(
        "$%s is not set: provider '%s' is simulated (sim); answers are not real", api_key_env, name
    )
    return SimProvider(clock, profiles)


ProviderConfig = Annotated[AnthropicConfig | OpenAIConfig | SimConfig, Field(discriminator="type")]
