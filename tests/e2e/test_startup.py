"""`fareway serve` that cannot start says why in one line and exits non-zero, no traceback.

Each test runs the real command on a written configuration, as an operator would, and reads
everything it prints: the one line must name the file, field, path, variable or address at
fault; `--debug` (or FAREWAY_DEBUG=1) adds the traceback.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow

FAREWAY = (sys.executable, "-m", "fareway.cli.main")
# A refusal comes well within this; a server that starts after all is killed at the end of it.
TIMEOUT_S = 60
UNSET_VARIABLE = "FAREWAY_STARTUP_TEST_UNSET_KEY"


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config(**sections: Any) -> dict[str, Any]:
    """A valid configuration (memory ledger, one sim model, one tenant) with `sections`
    replacing its top-level sections."""
    base: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "grace_s": 0},
        "ledger": {"type": "memory"},
        "tiers": ["fast"],
        "providers": {"sim": {"type": "sim"}},
        "models": [
            {
                "id": "sim-1",
                "provider": "sim",
                "tier": "fast",
                "input_usd_per_mtok": 1,
                "output_usd_per_mtok": 1,
                "context_window": 8_000,
                "max_output_tokens": 1_000,
            }
        ],
        "strategies": {"rules": {"type": "rules", "default_tier": "fast", "rules": []}},
        "default_strategy": "rules",
        "tenants": {
            "t": {"api_keys": [{"sha256": hashlib.sha256(b"startup-key").hexdigest()}]},
        },
    }
    return {**base, **sections}


def write(tmp_path: Path, content: dict[str, Any] | str) -> Path:
    path = tmp_path / "fareway.yaml"
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def serve(
    tmp_path: Path, config_path: Path, *flags: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`fareway serve --config config_path --port 0 flags`, in tmp_path, with none of the
    caller's OTEL_*, FAREWAY_* or provider key variables, plus `env`."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "FAREWAY_")) and k != "ANTHROPIC_API_KEY"
    }
    environment.update(env or {})
    return subprocess.run(
        [*FAREWAY, "serve", "--config", str(config_path), "--port", "0", *flags],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def the_one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused start prints, checked to be a deliberate refusal: non-zero
    exit, no traceback, and not the catch-all for errors nobody foresaw."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fareway: error: ")
    assert "--debug" not in lines[0], "a foreseen failure is a StartupError, not the catch-all"
    return lines[0]


def test_an_unset_key_variable_is_named(tmp_path: Path) -> None:
    tenants = {"t": {"api_keys": [{"env": UNSET_VARIABLE}]}}

    result = serve(tmp_path, write(tmp_path, config(tenants=tenants)))

    assert UNSET_VARIABLE in the_one_line(result)


def test_an_sqlite_path_in_a_missing_folder_is_named(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "ledger.db"

    result = serve(tmp_path, write(tmp_path, config(ledger={"type": "sqlite", "path": str(path)})))

    assert str(path) in the_one_line(result)


def test_an_unreachable_redis_is_named(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    ledger = {"type": "redis", "url": f"redis://{address}/0"}

    result = serve(tmp_path, write(tmp_path, config(ledger=ledger)))

    assert address in the_one_line(result)


def test_an_unknown_otel_exporter_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    result = serve(tmp_path, write(tmp_path, config()), env={"OTEL_TRACES_EXPORTER": "zipkin"})

    assert the_one_line(result) == (
        "fareway: error: OTEL_TRACES_EXPORTER=zipkin: fareway supports otlp, console, none"
    )


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  host: [127.0.0.1\n  port: 1\n")

    result = serve(tmp_path, path)

    line = the_one_line(result)
    assert line.startswith(f"fareway: error: {path}:3: not valid YAML: ")
    assert "<unicode string>" not in line
    assert result.returncode == 2


def test_a_duplicated_key_is_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(config(), sort_keys=False).replace(
        "  grace_s: 0\n", "  grace_s: 0\n  host: 0.0.0.0\n"
    )
    path = write(tmp_path, text)

    result = serve(tmp_path, path)

    assert the_one_line(result) == (
        f"fareway: error: {path}:4: key 'host' appears twice (first on line 2)"
    )
    assert result.returncode == 2


def test_each_schema_problem_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, config(server={"port": "nope", "workers": 4}))

    result = serve(tmp_path, path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert sorted(result.stderr.splitlines()) == [
        f"fareway: error: {path}:2: server.port: Input should be a valid integer, unable to "
        "parse string as an integer",
        f"fareway: error: {path}:3: server.workers: Extra inputs are not permitted",
    ]


def test_an_unforeseen_error_is_one_line_that_points_at_debug(tmp_path: Path) -> None:
    # A host that is not valid UTF-8 (the byte 0xff) cannot even be handed to gRPC.
    result = serve(tmp_path, write(tmp_path, config()), "--host", "\udcff")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "fareway: error: UnicodeEncodeError: 'utf-8' codec can't encode character '\\udcff' in "
        "position 0: surrogates not allowed (run with --debug for the traceback)"
    ]


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        pytest.param(("--debug",), {}, id="--debug"),
        pytest.param((), {"FAREWAY_DEBUG": "1"}, id="FAREWAY_DEBUG=1"),
    ],
)
def test_debug_shows_the_traceback(
    tmp_path: Path, flags: tuple[str, ...], env: dict[str, str]
) -> None:
    result = serve(
        tmp_path, write(tmp_path, config()), *flags, env={"OTEL_TRACES_EXPORTER": "zipkin", **env}
    )

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "StartupError" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "fareway: error: OTEL_TRACES_EXPORTER=zipkin: fareway supports otlp, console, none"
    )


def test_workers_on_the_memory_ledger_are_refused(tmp_path: Path) -> None:
    result = serve(tmp_path, write(tmp_path, config()), "--workers", "2")

    assert "--workers 2 needs a shared ledger" in the_one_line(result)


def test_workers_on_a_port_in_use_are_refused_naming_it(tmp_path: Path) -> None:
    ledger = {"type": "sqlite", "path": str(tmp_path / "ledger.db")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config_path = write(tmp_path, config(ledger=ledger))
        result = serve(tmp_path, config_path, "--port", str(port), "--workers", "2")

    assert the_one_line(result) == (
        f"fareway: error: cannot listen on 127.0.0.1:{port}: address already in use"
    )
