"""Example utterances embedded once, and the similarity of a query to each of them.

A semantic route is matched through its examples: `ExampleIndex` embeds them when built and
keeps the matrix, and `scores` is one matrix-vector product per query. `example_index` keeps
the indexes it built per embedder instance (the pool shares one instance per process), keyed
by the examples in order, so that building the same routes again, as a SIGHUP reload does,
costs a dictionary look-up.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from fareway.routing.embedding import Embedder, Vectors

if TYPE_CHECKING:  # numpy comes with the vectors: importing this module does not load it
    import numpy as np
    import numpy.typing as npt

Scores: TypeAlias = "npt.NDArray[np.float32]"
"""One cosine similarity per example, in the examples' order."""


@dataclass(frozen=True)
class Match:
    """The example nearest a query and its cosine similarity."""

    position: int
    example: str
    similarity: float


class ExampleIndex:
    """The unit vectors of `examples` under `embedder`, computed once when built (blocking)."""

    def __init__(self, embedder: Embedder, examples: Sequence[str]) -> None:
        if not examples:
            raise ValueError("an example index needs at least one example")
        self.embedder_name = embedder.name
        self.examples: tuple[str, ...] = tuple(examples)
        self.vectors: Vectors = embedder.embed(self.examples)
        self.vectors.setflags(write=False)

    def __len__(self) -> int:
        return len(self.examples)

    def scores(self, query: Vectors) -> Scores:
        """The cosine similarity of `query` (one unit vector, from the same embedder) to each
        example."""
        import numpy as np

        return np.asarray(self.vectors @ query.reshape(-1), dtype=np.float32)

    def nearest(self, query: Vectors) -> Match:
        """The example most similar to `query`."""
        scores = self.scores(query)
        best = int(scores.argmax())
        return Match(best, self.examples[best], float(scores[best]))


_CACHE_SIZE = 32  # indexes kept per embedder: enough for every strategy across many reloads
_cache: weakref.WeakKeyDictionary[Embedder, OrderedDict[tuple[str, ...], ExampleIndex]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


def example_index(embedder: Embedder, examples: Sequence[str]) -> ExampleIndex:
    """The index of `examples` under `embedder`, built on the first call for these examples
    (blocking: run it through `run_cpu`) and shared afterwards."""
    key = tuple(examples)
    with _cache_lock:
        built = _cache.setdefault(embedder, OrderedDict())
        index = built.get(key)
        if index is None:
            # Embedding under the lock: a second caller with the same routes waits for this
            # one instead of embedding them again.
            index = ExampleIndex(embedder, key)
            built[key] = index
            while len(built) > _CACHE_SIZE:
                built.popitem(last=False)
        else:
            built.move_to_end(key)
        return index
