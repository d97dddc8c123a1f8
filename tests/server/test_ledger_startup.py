"""A ledger that cannot be reached at start is a one-line StartupError naming the file or the
server (with no password), not a traceback; and nothing is left open behind it."""

from __future__ import annotations

from pathlib import Path

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


async def test_sqlite_path_in_a_missing_folder_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "ledger.db"

    with pytest.raises(StartupError) as caught:
        await build_runtime(with_ledger(type="sqlite", path=str(path)), ManualClock(), ENV)

    assert str(caught.value) == (
        f"ledger (sqlite): cannot open {path}: folder {tmp_path / 'nowhere'} does not exist"
    )


async def test_sqlite_path_that_is_a_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(StartupError) as caught:
        await build_runtime(with_ledger(type="sqlite", path=str(tmp_path)), ManualClock(), ENV)

    message = str(caught.value)
    assert message.startswith(f"ledger (sqlite): cannot open {tmp_path}: ")
    assert "\n" not in message


async def test_redis_on_a_closed_port_names_the_address(tmp_path: Path) -> None:
    port = free_port()
    config = with_ledger(type="redis", url=f"redis://:hunter2@127.0.0.1:{port}/3")

    with pytest.raises(StartupError) as caught:
        await build_runtime(config, ManualClock(), {**ENV, "FAREWAY_REDIS_URL": ""})

    message = str(caught.value)
    assert message.startswith(f"ledger (redis): redis at 127.0.0.1:{port}/3: ")
    assert "hunter2" not in message
    assert "\n" not in message
