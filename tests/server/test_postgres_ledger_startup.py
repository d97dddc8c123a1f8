"""A PostgreSQL ledger that cannot be reached at start is a one-line StartupError naming the
server (with no password), as for the other backends (test_ledger_startup.py)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from fareway.budgets.registry import LedgerConfig
from fareway.config.schema import FarewayConfig
from fareway.core.clock import ManualClock
from fareway.core.errors import StartupError
from fareway.server.runtime import build_runtime
from tests.budgets.redis_process import free_port
from tests.server.harness import ENV, make_config


def with_ledger(**settings: object) -> FarewayConfig:
    ledger = TypeAdapter(LedgerConfig).validate_python(settings)
    return make_config().model_copy(update={"ledger": ledger})


async def test_postgres_on_a_closed_port_names_the_address() -> None:
    port = free_port()
    config = with_ledger(
        type="postgres", url=f"postgresql://fareway:hunter2@127.0.0.1:{port}/money"
    )

    with pytest.raises(StartupError) as caught:
        await build_runtime(config, ManualClock(), {**ENV, "FAREWAY_POSTGRES_URL": ""})

    message = str(caught.value)
    assert message.startswith(f"ledger (postgres): postgres at 127.0.0.1:{port}/money: ")
    assert "hunter2" not in message
    assert "\n" not in message


async def test_the_environment_variable_names_the_server_at_start() -> None:
    port = free_port()
    config = with_ledger(type="postgres")

    with pytest.raises(StartupError) as caught:
        await build_runtime(
            config,
            ManualClock(),
            {**ENV, "FAREWAY_POSTGRES_URL": f"postgresql://127.0.0.1:{port}/env"},
        )

    assert str(caught.value).startswith(f"ledger (postgres): postgres at 127.0.0.1:{port}/env: ")
