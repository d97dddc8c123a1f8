"""SIGHUP to a real `fareway serve` process: a good file is applied to new calls, a bad one is
refused with one log line and the server carries on with what it had."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
import yaml

from fareway.client import Window
from tests.e2e.servers import INSTANT, MODEL, Fleet, eventually, write_config

pytestmark = pytest.mark.slow

RELOAD_WITHIN_S = 30


async def test_sighup_applies_a_good_file_and_refuses_a_bad_one(
    fleet: Fleet, tmp_path: Path
) -> None:
    path = write_config(
        tmp_path / "fareway.yaml", {"type": "memory"}, {Window.DAY: 1_000_000}, INSTANT
    )
    [server] = await fleet.start(path)
    async with server.client() as client:
        assert (await client.route("hello")).model == MODEL

        config = yaml.safe_load(path.read_text())
        config["models"][0]["id"] = "sim-renamed"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        os.kill(server.process.pid, signal.SIGHUP)
        await eventually(
            lambda: client.route("hello"),
            lambda decision: decision.model == "sim-renamed",
            RELOAD_WITHIN_S,
            "the reloaded model",
        )

        path.write_text("models: [unclosed\n")
        os.kill(server.process.pid, signal.SIGHUP)
        log = await eventually(
            lambda: asyncio.to_thread(server.log),
            lambda text: "refused" in text,
            RELOAD_WITHIN_S,
            "the refusal in the log",
        )

        assert (await client.route("hello")).model == "sim-renamed", "the bad file changed nothing"
    assert server.process.returncode is None, "the server is still running"
    refusals = [line for line in log.splitlines() if "refused" in line]
    assert len(refusals) == 1, log
    assert "not valid YAML" in refusals[0]
    assert "Traceback" not in log
