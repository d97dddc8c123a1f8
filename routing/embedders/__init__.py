"""The local embedders semantic routing runs on, and what they share.

    wordllama   static token embeddings, 256 dimensions (`wordllama.py`)
    minilm      all-MiniLM-L6-v2, int8 ONNX on onnxruntime, 384 dimensions (`minilm.py`)

Both implement `fareway.routing.embedding.Embedder`, load only from files installed packages
ship (a missing file raises `EmbedderUnavailable`, nothing is downloaded), and import their
heavy packages (wordllama, onnxruntime, tokenizers) inside their loaders: importing this
package imports none of them, nor numpy. `EmbedderPool` loads each once per process; `example_index`
embeds a route's examples once per embedder.
"""

from __future__ import annotations

from fareway.routing.embedders.index import ExampleIndex, Match, Scores, example_index
from fareway.routing.embedders.pool import DEFAULT_EMBEDDER, LOADERS, EmbedderPool, Loader
from fareway.routing.embedders.vectors import EmbedderUnavailable, unit_rows

__all__ = [
    "DEFAULT_EMBEDDER",
    "LOADERS",
    "EmbedderPool",
    "EmbedderUnavailable",
    "ExampleIndex",
    "Loader",
    "Match",
    "Scores",
    "example_index",
    "unit_rows",
]
