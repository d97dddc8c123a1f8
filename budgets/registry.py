"""The ledger registry: every ledger `type` a configuration may name, each a configuration
model that builds its ledger, as strategies (`routing.strategies`) and providers
(`providers.registry`) are registered.

A backend's module is imported in its `build`: a configuration on SQLite never imports the
Redis client.

To add a backend: write `budgets/<name>.py` implementing `budgets.ledger.Ledger`, add a config
model here with a `Literal` type and a `build`, and add it to `LedgerConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.budgets.ledger import Ledger
from fareway.core.clock import Clock


class _Common(BaseModel):
    """What every ledger takes."""

    model_config = ConfigDict(extra="forbid")

    # How long a hold outlives a replica that crashed before settling it.
    hold_ttl_s: float = Field(900.0, gt=0)
    # How often a streaming call records its usage so far in its hold (and refreshes the
    # hold's expiry): a crash loses at most this much of a stream's charges.
    checkpoint_interval_s: float = Field(1.0, gt=0)


class MemoryLedgerConfig(_Common):
    """`type: memory`: one process, lost on restart."""

    type: Literal["memory"]

    def build(self, clock: Clock, env: Mapping[str, str]) -> Ledger:
        """The ledger this configuration describes."""
        from fareway.budgets.memory import MemoryLedger

        return MemoryLedger(clock, self.hold_ttl_s)


class SqliteLedgerConfig(_Common):
    """`type: sqlite`: one file, durable; replicas on one host may share it."""

    type: Literal["sqlite"] = "sqlite"
    path: str = "fareway-ledger.db"  # relative to the working directory

    def build(self, clock: Clock, env: Mapping[str, str]) -> Ledger:
        """The ledger this configuration describes."""
        from fareway.budgets.sqlite import SqliteLedger

        return SqliteLedger(self.path, clock, self.hold_ttl_s)


class RedisLedgerConfig(_Common):
    """`type: redis`: replicas anywhere share it."""

    type: Literal["redis"]
    url: str = "redis://127.0.0.1:6379/0"
    url_env: str = "FAREWAY_REDIS_URL"  # this variable, when set, replaces `url`
    prefix: str = "fareway"  # key prefix, so several deployments can share a server

    def build(self, clock: Clock, env: Mapping[str, str]) -> Ledger:
        """The ledger this configuration describes."""
        from fareway.budgets.redis import RedisLedger

        return RedisLedger(env.get(self.url_env) or self.url, clock, self.hold_ttl_s, self.prefix)


class PostgresLedgerConfig(_Common):
    """`type: postgres`: replicas anywhere share it, durably, in a PostgreSQL database."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["postgres"]
    url: str = "postgresql://127.0.0.1:5432/fareway"
    url_env: str = "FAREWAY_POSTGRES_URL"  # this variable, when set, replaces `url`
    # The PostgreSQL schema the ledger's tables live in (created at start), so several
    # deployments can share a database. (`schema` in the file; the name is BaseModel's.)
    db_schema: str = Field("fareway", alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Connections per process; a call waits for a free one rather than failing.
    pool_size: int = Field(10, ge=1)

    def build(self, clock: Clock, env: Mapping[str, str]) -> Ledger:
        """The ledger this configuration describes."""
        from fareway.budgets.postgres import PostgresLedger

        return PostgresLedger(
            env.get(self.url_env) or self.url,
            clock,
            self.hold_ttl_s,
            schema=self.db_schema,
            pool_size=self.pool_size,
        )


LedgerConfig = Annotated[
    MemoryLedgerConfig | SqliteLedgerConfig | RedisLedgerConfig | PostgresLedgerConfig,
    Field(discriminator="type"),
]
