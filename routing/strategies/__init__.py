"""The strategy registry: every strategy type a configuration may name, one module each.

To add a strategy: write `routing/strategies/<name>.py` with a pydantic config model whose
`type` is a `Literal`, with `build(name, context)` returning the strategy from its
configuration and what the server provides (`routing.strategy.StrategyContext`) and
`problems(tiers, models)` checking its references, then add the config model to
`StrategyConfig` below. Configuration loading rejects any other `type`, naming the known ones.
A strategy that builds on another names it in a `routes_from`-style field, which
`config.schema` checks names a strategy of the right type (`uses()`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from fareway.routing.strategies.cascade import CascadeConfig
from fareway.routing.strategies.classifier import ClassifierConfig
from fareway.routing.strategies.cost import CostConfig
from fareway.routing.strategies.learned import LearnedConfig
from fareway.routing.strategies.rules import RulesConfig
from fareway.routing.strategies.semantic import SemanticConfig
from fareway.routing.strategies.steps import PerStepConfig

StrategyConfig = Annotated[
    RulesConfig
    | PerStepConfig
    | CostConfig
    | CascadeConfig
    | SemanticConfig
    | ClassifierConfig
    | LearnedConfig,
    Field(discriminator="type"),
]
