"""What real `fareway serve` processes do with their port: a second server on a port in use
exits with one line naming the address instead of sharing the port, and the Dockerfile's
command line (every interface) refuses to start while the public demo keys are accepted."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from fareway.client import AsyncClient, Unauthenticated, Window
from tests.e2e.servers import (
    FAREWAY,
    INSTANT,
    STARTUP_TIMEOUT_S,
    Fleet,
    Server,
    free_port,
    wait_until_serving,
    write_config,
)

pytestmark = pytest.mark.slow

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"
REAL_KEYS = {"FAREWAY_DEMO_KEY": "e2e-real-tenant-key", "FAREWAY_ADMIN_KEY": "e2e-real-admin-key"}


async def run_to_exit(args: list[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, str]:
    """Run a `fareway` command line that should exit by itself; its status and output."""
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def clean_environment() -> dict[str, str]:
    """This environment without any key a test must not inherit."""
    unset = ("ANTHROPIC_API_KEY", "FAREWAY_DEMO_KEY", "FAREWAY_ADMIN_KEY")
    return {k: v for k, v in os.environ.items() if k not in unset}


async def test_a_second_server_on_a_port_in_use_exits_naming_the_address(
    fleet: Fleet, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "fareway.yaml", {"type": "memory"}, {Window.DAY: 10}, INSTANT)
    [first] = await fleet.start(config)
    port = first.target.rpartition(":")[2]

    status, output = await run_to_exit(
        [*FAREWAY, "serve", "--config", str(config), "--port", port],
        tmp_path,
        fleet._environment(),
    )

    assert status != 0
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in output
    await wait_until_serving(first)  # the first one is unaffected


def dockerfile_command() -> list[str]:
    """The image's CMD, with `fareway` run from this checkout."""
    [line] = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    command: list[str] = json.loads(line.removeprefix("CMD "))
    assert command[0] == "fareway"
    return [*FAREWAY, *command[1:]]


async def test_the_docker_command_refuses_to_start_with_the_demo_keys(tmp_path: Path) -> None:
    command = dockerfile_command()
    assert command[-2:] == ["--host", "0.0.0.0"], "the image serves every interface"

    status, output = await run_to_exit(
        [*command, "--port", str(free_port())], tmp_path, clean_environment()
    )

    assert status != 0
    for named in ("fareway-demo-key", "fareway-admin-key", "FAREWAY_DEMO_KEY", "FAREWAY_ADMIN_KEY"):
        assert named in output
    created = await asyncio.to_thread(lambda: list(tmp_path.iterdir()))
    assert not created, "no ledger file was created"


async def test_the_docker_command_serves_with_real_keys(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *dockerfile_command(),
            "--port",
            str(port),
            cwd=tmp_path,
            env={**clean_environment(), **REAL_KEYS},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    server = Server("docker-cmd", process, f"127.0.0.1:{port}", log_path)
    try:
        await wait_until_serving(server)
        for key in ("fareway-demo-key", "fareway-admin-key"):
            async with AsyncClient(server.target, api_key=key, timeout_s=30) as client:
                with pytest.raises(Unauthenticated):
                    await client.get_budget("demo")
        async with AsyncClient(
            server.target, api_key=REAL_KEYS["FAREWAY_ADMIN_KEY"], timeout_s=30
        ) as admin:
            assert (await admin.get_budget("demo")).tenant == "demo"
    finally:
        await server.kill()
