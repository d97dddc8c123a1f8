"""What the embedders share: the error a failed load raises, and row normalization."""

from __future__ import annotations

from fareway.core.errors import StartupError
from fareway.routing.embedding import Vectors


class EmbedderUnavailable(StartupError):
    """An embedder cannot load: its package is not installed or a file it ships is missing.
    The message says which and what to install; nothing is ever downloaded instead."""


def unit_rows(rows: Vectors) -> Vectors:
    """`rows` scaled to length 1, as contiguous float32; an all-zero row (a text with no known
    token) stays zero, so it is similar to nothing."""
    import numpy as np

    rows = np.ascontiguousarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    out: Vectors = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return out
