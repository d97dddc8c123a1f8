"""Replaying a labelled set through strategies: the tiers they pick, and the strong-score of a
scoring strategy (one whose decisions carry a `<name>.strong_score` signal)."""

import numpy as np
import pytest

from fareway.config.loader import load_config
from fareway.evaluation.dataset import LabelledPrompt, LabelledSet
from fareway.evaluation.replay import replay, strong_score
from fareway.routing.embedders import EmbedderPool
from tests.evaluation.scoring import TableConfig, with_scoring

TABLE = {"classify this: spam or not?": 0.1, "prove the theorem": 0.9, "summarise it": 0.5}
DATA = LabelledSet.of("tiny", [LabelledPrompt(text, 0.0, 1.0) for text in TABLE])


async def test_a_scoring_strategy_yields_its_scores_and_its_tiers() -> None:
    config = with_scoring(load_config(), "scored", TableConfig(TABLE, threshold=0.5))

    replayed = await replay(DATA, "scored", config, EmbedderPool())

    assert replayed.scores is not None
    assert replayed.scores.tolist() == [0.1, 0.9, 0.5]
    assert replayed.strong_calls.tolist() == [False, True, True]


async def test_a_tier_picking_strategy_has_no_scores() -> None:
    replayed = await replay(DATA, "rules", load_config(), EmbedderPool())

    assert replayed.scores is None
    assert replayed.strong_calls.dtype == np.bool_
    assert len(replayed.strong_calls) == len(DATA)


async def test_progress_is_told_each_prompt() -> None:
    seen: list[tuple[int, int]] = []
    await replay(DATA, "rules", load_config(), EmbedderPool(), lambda *step: seen.append(step))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        ({"learned.strong_score": 0.7, "semantic.similarity": 0.2}, 0.7),
        ({"semantic.similarity": 0.2}, None),
        ({"a.strong_score": 0.1, "b.strong_score": 0.9}, None),  # which one? neither
    ],
)
def test_the_strong_score_is_the_one_signal_so_named(
    signals: dict[str, float], expected: float | None
) -> None:
    assert strong_score(signals) == expected
