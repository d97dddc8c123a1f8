"""Loading a configuration, and building the ledger and providers of one that uses none of the
SDKs, imports no provider SDK, no Redis client and no embedding package: a fresh interpreter
checks `sys.modules`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("anthropic", "openai", "redis", "asyncpg", "onnxruntime", "wordllama", "tokenizers")

SCRIPT = f"""
import sys
from fareway.config.loader import load_config
from fareway.core.clock import SystemClock
from fareway.server.runtime import build_providers

config = load_config()
ledger = config.ledger.build(SystemClock(), {{}})  # the embedded default: SQLite
providers = build_providers(config, SystemClock(), {{}})  # no keys: the embedded default is sim
assert all(p.simulated for p in providers.values())
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_the_embedded_default_without_keys_imports_no_sdk_or_embedder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=tmp_path,  # where the SQLite ledger's file would go
    )

    assert done.stdout.strip() == "", f"imported at load: {done.stdout.strip()}"
