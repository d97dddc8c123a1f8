"""The embedder plug-in point: text in, unit vectors out, computed on this machine.

An embedder loads its model from files an installed package ships (never from the network) and
runs on the CPU, blocking: strategies call it through the server's `run_cpu` (see
`routing.strategy.StrategyContext`), never on the event loop. Embedders are shared by name
across strategies and loaded on first use, since loading reads tens of megabytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:  # numpy is imported by the embedders that use it, not by every router
    import numpy as np
    import numpy.typing as npt

Vectors: TypeAlias = "npt.NDArray[np.float32]"
"""One row per text, each of length 1 (so a dot product is the cosine similarity)."""


class Embedder(Protocol):
    """Embeds texts; `name` is how configurations refer to it."""

    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """The unit vectors of `texts`, one row each, in order. Blocking CPU work."""
        ...


EmbedderFor = Callable[[str], Embedder]
"""The shared embedder of that name, loaded on first use; raises KeyError for an unknown name."""
