"""`wordllama`: WordLlama's static token embeddings (256 dimensions), averaged over a text.

No model runs: a text's vector is the mean of its tokens' rows in a table the `wordllama`
package ships (`l2_supercat_256`), so a query costs tens of microseconds and the load reads
about 16 MB. Word order and context are lost, which costs accuracy on paraphrases (see
docs/BENCHMARKS.md, "Local embedders").

`wordllama` is imported by `load_wordllama` alone. Its `WordLlama.load()` looks for its
tokenizer in the wrong folder and would try to download it; pointing `cache_dir` at the
package's own folder with downloads disabled finds both files there, and a missing file is a
`FileNotFoundError` at once, never a network call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fareway.routing.embedders.vectors import EmbedderUnavailable, unit_rows
from fareway.routing.embedding import Vectors


class WordLlamaEmbedder:
    """An `Embedder` over a loaded WordLlama model."""

    name = "wordllama"

    def __init__(self, model: Any) -> None:
        self._model = model
        self.dimensions: int = int(model.embedding.shape[1])

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows = self._model.embed(list(texts), norm=False, return_np=True)
        return unit_rows(np.asarray(rows, dtype=np.float32))


def load_wordllama() -> WordLlamaEmbedder:
    """Load the 256-dimension model from the installed package's files, never the network."""
    try:
        import wordllama
    except ImportError as error:
        raise EmbedderUnavailable(
            "embedder 'wordllama' needs the wordllama package: pip install wordllama"
        ) from error
    folder = Path(wordllama.__file__).parent
    try:
        model = wordllama.WordLlama.load(cache_dir=folder, dim=256, disable_download=True)
    except FileNotFoundError as error:
        raise EmbedderUnavailable(
            f"embedder 'wordllama': a model file is missing under {folder} ({error}); "
            "reinstall the wordllama package"
        ) from error
    return WordLlamaEmbedder(model)
