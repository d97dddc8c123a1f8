"""`fareway eval` on a JSONL file of one's own labelled traffic: the reference routers' APGR and
CPT with intervals, each strategy's operating point; and the errors a user can make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fareway.cli.main import main

# The weak model fails exactly the analysis requests, which only the strong tier should get.
TRAFFIC = [
    ("classify this: spam or not?", True, True),
    ("extract every date from this: 3 May, 9 June", True, True),
    ("Is this review positive or negative: 'great phone'", True, True),
    ("label the sentiment of this tweet: 'meh'", True, True),
    ("What is the capital of France?", True, True),
    ("translate 'good morning' to Spanish", True, True),
    ("Analyze the strategic implications of entering the Japanese market.", False, True),
    ("Design a rate limiter for a multi-region API, step by step.", False, True),
    ("Compare and contrast two approaches to database sharding in depth.", False, True),
    ("What are the implications of rising interest rates for our strategy?", False, True),
    ("Write a Python function that reverses a linked list.", True, True),
    ("Fix this bug: my Go program deadlocks on a channel send.", True, False),
]


@pytest.fixture
def traffic(tmp_path: Path) -> Path:
    path = tmp_path / "traffic.jsonl"
    lines = [json.dumps({"prompt": p, "weak": w, "strong": s}) for p, w, s in TRAFFIC]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_reports_the_references_and_each_strategy(
    traffic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["eval", "--jsonl", str(traffic), "--strategy", "rules", "--bootstrap", "20"])

    out, err = capsys.readouterr()
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "traffic: 12 prompts; weak 0.667, strong 0.917"
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert set(rows) >= {"random", "length", "oracle", "rules"}
    oracle_apgr = float(rows["oracle"][1])
    assert oracle_apgr > float(rows["random"][1]), "the oracle beats chance"
    # rules sends the four analysis requests (and nothing else) to the powerful tier, every
    # one the weak model fails; the rest stay weak, which also keeps the Go fix the strong model
    # gets wrong: all right, quality 1.0, so PGR (1 - 8/12) / (11/12 - 8/12) = 4/3.
    assert rows["rules"][1:3] == ["33.3%", "1.333"]


def test_a_strategy_that_needs_a_model_is_refused_by_name(
    traffic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["eval", "--jsonl", str(traffic), "--strategy", "classifier"])

    assert status == 1
    assert "strategy 'classifier' cannot be replayed offline" in capsys.readouterr().err


def test_a_missing_data_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["eval", "--benchmark", "gsm8k", "--data", str(tmp_path / "nowhere")])

    assert status == 1
    assert "nowhere" in capsys.readouterr().err
