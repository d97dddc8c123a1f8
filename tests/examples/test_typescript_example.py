"""examples/typescript end to end: TypeScript types generated from the repository's protos
(`proto-loader-gen-types`), the program checked against them by `tsc`, then run against a real
`fareway serve` (the end-to-end tests' configuration, tests/e2e/servers.py: one sim model, so
the catalog and the decision's estimated cost are known in advance).

It is rebuilt (`npm run build`: generate, then compile) when the compiled program is older than
its source, its lock file or the protos, so a change to the API that breaks a typed caller
fails here. Without node and npm it is skipped, unless FAREWAY_REQUIRE_NODE=1 (CI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.servers import (
    INPUT_USD_PER_MTOK,
    MODEL,
    OUTPUT_USD_PER_MTOK,
    TENANT_KEY,
    Server,
    request_cost_micros,
)
from tests.examples.node_tools import node_with_packages, run, run_example, serving

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "typescript"
PROGRAM = EXAMPLE / "dist" / "main.js"
PROMPT = "Summarise this ticket: the invoice total is wrong."
MAX_TOKENS = 256  # what the example asks for


def sources() -> list[Path]:
    """What the compiled program is made from."""
    made_from = ["main.ts", "tsconfig.json", "package.json", "package-lock.json"]
    return [EXAMPLE / name for name in made_from] + sorted(ROOT.glob("protos/fareway/v1/*.proto"))


@pytest.fixture
def node() -> str:
    """node, with the example installed and built; before the server starts."""
    executable = node_with_packages(EXAMPLE)
    built = PROGRAM.stat().st_mtime if PROGRAM.exists() else 0.0
    if any(path.stat().st_mtime > built for path in sources()):
        run("npm", "run", "build", "--silent", cwd=EXAMPLE)
    return executable


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with serving(tmp_path, 1_000_000) as started:
        yield started


async def test_the_typed_example_lists_the_catalog_and_routes_a_prompt(
    node: str, server: Server
) -> None:
    out, context = await run_example(
        node,
        str(PROGRAM),
        *("--target", server.target, "--api-key", TENANT_KEY, "--prompt", PROMPT),
        cwd=EXAMPLE,
        server=server,
    )

    prices = f"{INPUT_USD_PER_MTOK * 1_000_000}/{OUTPUT_USD_PER_MTOK * 1_000_000}"
    assert f"model {MODEL} tier=fast provider=sim prices={prices}\n" in out, context
    cost = request_cost_micros(PROMPT, MAX_TOKENS)
    expected = f"route model={MODEL} tier=fast strategy=rules estimated_cost_micros={cost} | "
    assert expected in out, context
