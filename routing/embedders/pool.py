"""The process's embedders: each loaded at most once, on first use, and shared.

`EmbedderPool.get` is the server's `StrategyContext.embedder`. The server builds one pool per
process and hands the same one to every configuration a SIGHUP reload brings, so a reload
neither reloads a model nor (through `example_index`) re-embeds routes it already embedded.

Loading is blocking and may run in an executor thread while another thread asks for the same
embedder: one lock per name makes the second caller wait for the first load instead of
starting its own. A load that fails is not remembered; the next `get` tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from fareway.routing.embedding import Embedder

Loader = Callable[[], Embedder]


def _wordllama() -> Embedder:
    from fareway.routing.embedders.wordllama import load_wordllama

    return load_wordllama()


def _minilm() -> Embedder:
    from fareway.routing.embedders.minilm import load_minilm

    return load_minilm()


LOADERS: Mapping[str, Loader] = {"wordllama": _wordllama, "minilm": _minilm}
"""Every embedder fareway ships, by the name configurations use. Each imports its module (and
numpy, and its model package) when called, so that building a pool imports none of them."""

DEFAULT_EMBEDDER = "wordllama"
"""The embedder a configuration gets when it names none. bench/embedders.py (docs/BENCHMARKS.md,
"Local embedders"): about 0.2 ms a query against MiniLM's 15 ms on this 2-core machine, and as
accurate on the issue's routes when a route scores by its examples' centroid; MiniLM stays
selectable for routes that need word order."""


class EmbedderPool:
    """Named embedders, each loaded once by its loader and shared afterwards."""

    def __init__(self, loaders: Mapping[str, Loader] = LOADERS) -> None:
        self._loaders = dict(loaders)
        self._loaded: dict[str, Embedder] = {}
        self._locks = {name: threading.Lock() for name in self._loaders}

    @property
    def names(self) -> list[str]:
        """The names `get` accepts."""
        return sorted(self._loaders)

    def loaded(self, name: str) -> bool:
        """Whether `get(name)` would return at once."""
        return name in self._loaded

    def get(self, name: str) -> Embedder:
        """The shared embedder called `name`, loading it first if no one has (blocking).

        Raises KeyError naming the known embedders for an unknown name, and
        `EmbedderUnavailable` when the embedder's package or files are missing."""
        embedder = self._loaded.get(name)
        if embedder is not None:
            return embedder
        lock = self._locks.get(name)
        if lock is None:
            raise KeyError(f"unknown embedder {name!r}; known: {', '.join(self.names)}")
        with lock:
            embedder = self._loaded.get(name)
            if embedder is None:
                embedder = self._loaders[name]()
                self._loaded[name] = embedder
            return embedder
