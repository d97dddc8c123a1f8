"""examples/node/main.js end to end: Node.js (`@grpc/grpc-js` and `@grpc/proto-loader` on the
repository's protos) against a real `fareway serve` process, as another language's caller sees it.

The server runs the end-to-end tests' configuration (tests/e2e/servers.py): one sim model priced
so that a request's cost is known in advance, and a tenant whose day cap affords one request of
the example's prompt and not two. The example sends it twice: the first streams, the second is
refused with RESOURCE_EXHAUSTED, whose QuotaFailure and RetryInfo the example decodes from the
`grpc-status-details-bin` trailer with the shipped google/rpc protos.

The example's npm packages are installed (`npm ci`) on the first run. Without node and npm the
test is skipped, unless FAREWAY_REQUIRE_NODE=1 (CI), which makes it fail instead.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.servers import (
    MODEL,
    TENANT,
    TENANT_KEY,
    Server,
    request_cost_micros,
)
from tests.examples.node_tools import node_with_packages, run_example, serving

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"
PROMPT = "Is this message spam? You won a prize."
MAX_TOKENS = 16
COST = request_cost_micros(PROMPT, MAX_TOKENS)
# One request fits under the cap, a second does not.
CAP_MICROS = COST * 3 // 2
SECONDS_A_DAY = 86_400

DECISION = re.compile(
    r"request 1: decision model=(\S+) provider=(\S+) tier=(\S+) strategy=(\S+)"
    r" estimated_cost_micros=(\d+) \| (.+)"
)
DONE = re.compile(r"request 1: done stop_reason=(\S+) cost_micros=(\d+) ttft_ms=\d+")
RETRY = re.compile(r"request 2: retry in (\d+\.\d{3}) s")
DAY_LIMIT = re.compile(
    rf"budget {TENANT}: WINDOW_DAY cap_micros=(\d+) spent_micros=(\d+) reserved_micros=(\d+)"
    r" resets_at=(\S+)"
)


@pytest.fixture
def node() -> str:
    """node, the example's packages installed; before the server starts, so that a machine
    without node skips at once."""
    return node_with_packages(EXAMPLE)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A `fareway serve` process whose tenant can afford one request of PROMPT today."""
    async with serving(tmp_path, CAP_MICROS) as started:
        yield started


async def test_the_node_example_streams_reads_its_budget_and_decodes_a_refusal(
    node: str, server: Server
) -> None:
    out, context = await run_example(
        node,
        "main.js",
        *("--target", server.target, "--api-key", TENANT_KEY),
        *("--prompt", PROMPT, "--max-tokens", str(MAX_TOKENS), "--requests", "2"),
        cwd=EXAMPLE,
        server=server,
    )

    decision = DECISION.search(out)
    assert decision, context
    assert decision.group(1, 2, 3, 4) == (MODEL, "sim", "fast", "rules"), context
    assert int(decision[5]) == COST, context
    [text] = [line for line in out.splitlines() if line.startswith("request 1: text: ")]
    assert len(text) > len("request 1: text: "), context
    done = DONE.search(out)
    assert done, context
    assert done[1] == "max_tokens", context
    assert int(done[2]) == COST, context

    assert "request 2: RESOURCE_EXHAUSTED: " in out, context
    assert f"request 2: quota violation tenant:{TENANT}: " in out, context
    retry = RETRY.search(out)
    assert retry, context
    assert 0 < float(retry[1]) <= SECONDS_A_DAY, "until the UTC day ends"

    day = DAY_LIMIT.search(out)
    assert day, context
    assert [int(day[1]), int(day[2]), int(day[3])] == [CAP_MICROS, COST, 0], context
    assert day[4].endswith("T00:00:00.000Z"), "the day window resets at UTC midnight"
