"""Limits as JSON text: the form the sqlite and redis ledgers store them in.

One list of objects per tenant, in the configured order (`state` reports limits in that
order): `[{"window": "day", "cap_micros": 1000, "soft_fraction": 0.8, "on_exceed": "reject"}]`.
The Redis scripts read `window` and `cap_micros` from this same text, so those names are part
of the stored format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from fareway.budgets.ledger import Limit, OnExceed
from fareway.budgets.windows import Window


def encode_limits(limits: Iterable[Limit]) -> str:
    """Compact JSON for storage."""
    return json.dumps(
        [
            {
                "window": limit.window.value,
                "cap_micros": limit.cap_micros,
                "soft_fraction": limit.soft_fraction,
                "on_exceed": limit.on_exceed.value,
            }
            for limit in limits
        ],
        separators=(",", ":"),
    )


def decode_limits(text: str | bytes) -> tuple[Limit, ...]:
    """The limits `encode_limits` stored."""
    return tuple(
        Limit(
            window=Window(item["window"]),
            cap_micros=int(item["cap_micros"]),
            soft_fraction=float(item["soft_fraction"]),
            on_exceed=OnExceed(item["on_exceed"]),
        )
        for item in json.loads(text)
    )
