"""`fareway train`: a model file from labelled data that the `learned` strategy serves, its
calibration to a share or a budget, the protocols' report, and the errors a user can make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fareway.cli.main import main
from fareway.routing.learned.model import DEFAULT_MODEL, load_model

# Long, many-step requests are where the weak model fails; short ones it answers.
HARD = "Plan, step by step, a migration of {n} services with zero downtime and a rollback path."
EASY = "Say hi to {n}."


@pytest.fixture
def traffic(tmp_path: Path) -> Path:
    rows = []
    for n in range(40):
        rows.append(
            {
                "prompt": HARD.format(n=n),
                "weak": 0.0,
                "strong": 1.0,
                "weak_cost": 1.0,
                "strong_cost": 21.0,
            }
        )
        rows.append(
            {
                "prompt": EASY.format(n=n),
                "weak": 1.0,
                "strong": 1.0,
                "weak_cost": 1.0,
                "strong_cost": 21.0,
            }
        )
    path = tmp_path / "traffic.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_train_writes_a_model_calibrated_to_the_share(
    traffic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine.json"
    assert (
        main(["train", "--jsonl", str(traffic), "--strong-share", "0.25", "--out", str(out)]) == 0
    )
    model = load_model(out)
    assert model.strong_share == 0.25
    assert model.about["trained_on"] == "traffic (80)"
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    assert f"learned.strong_score >= {model.threshold:.2f} go strong" in printed
    assert model.threshold == model.threshold_at(0.25)


def test_a_budget_sets_the_share(traffic: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine.json"
    # All weak costs 1 a prompt, each strong call 20 more: a mean of 6 buys a quarter strong.
    assert main(["train", "--jsonl", str(traffic), "--budget", "6", "--out", str(out)]) == 0
    assert load_model(out).strong_share == 0.25


def test_a_budget_needs_costs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nocost.jsonl"
    path.write_text(json.dumps({"prompt": "x", "weak": True, "strong": True}) + "\n")
    assert main(["train", "--jsonl", str(path), "--budget", "1"]) == 2
    assert "--budget needs data that records both models' costs" in capsys.readouterr().err


def test_protocols_report_leave_one_out_and_k_fold_beside_the_references(
    traffic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--benchmark", "mt-bench", "--jsonl", str(traffic), "--protocols"]) == 0
    printed = capsys.readouterr().out
    for name in ("mt-bench", "traffic"):
        for protocol in ("random", "length", "leave-one-out", "k-fold"):
            assert any(line.startswith(f"{name:<12}{protocol}") for line in printed.splitlines())


@pytest.mark.slow
def test_the_shipped_model_is_what_the_documented_command_makes(tmp_path: Path) -> None:
    """docs/ROUTING_QUALITY.md's command remakes routing/learned/default.json from the shipped
    RouteLLM labels: what is served is what is documented, and anyone can rebuild it."""
    out = tmp_path / "default.json"
    command = ["train", "--label", "weak_fails", "--l2", "1", "--strong-share", "0.3"]
    assert main([*command, "--out", str(out)]) == 0
    remade, shipped = load_model(out), load_model(DEFAULT_MODEL)
    assert remade.about == shipped.about
    assert remade.strong_share == shipped.strong_share
    for ours, theirs in zip(remade.layers, shipped.layers, strict=True):
        assert np.allclose(ours.weights, theirs.weights, rtol=1e-5, atol=1e-7)
    assert np.allclose(remade.quantiles, shipped.quantiles, rtol=1e-5, atol=1e-7)
