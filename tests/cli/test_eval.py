"""`fareway eval`: the reference routers' APGR and CPT with intervals and each strategy's
operating point, as Markdown on stdout and in a file, and a PNG plot per data set; on one's
own JSONL traffic, on the shipped MT-Bench labels and with a scoring strategy; and the errors a
user can make."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fareway.cli.evaluate import RESULTS
from fareway.cli.main import main
from fareway.config import loader
from fareway.evaluation.routellm import load_benchmark
from tests.evaluation.scoring import TableConfig, with_scoring

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tables(markdown: str) -> list[dict[str, list[str]]]:
    """Each Markdown table's body rows by their first cell (a table: lines between blank ones,
    starting with "|"; its first two lines are the header and the rule)."""
    found = []
    for block in markdown.split("\n\n"):
        lines = block.strip().splitlines()
        if lines and lines[0].startswith("|"):
            cells = ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])
            found.append({row[0]: row[1:] for row in cells})
    return found


def evaluate(*flags: str) -> int:
    """`fareway eval` with few bootstrap resamples: enough to have intervals, and fast."""
    return main(["eval", "--bootstrap", "20", *flags])


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
    traffic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    status = evaluate("--jsonl", str(traffic), "--strategy", "rules", "--out", str(out_dir))

    out, err = capsys.readouterr()
    assert status == 0, err
    assert "## traffic: 12 prompts; weak 0.667, strong 0.917" in out.splitlines()
    routers, strategies = tables(out)
    assert list(routers) == ["random", "length", "oracle"]  # rules has no score: no curve
    assert float(routers["oracle"][0].split()[0]) > float(routers["random"][0].split()[0])
    # rules sends the four analysis requests (and nothing else) to the powerful tier, every
    # one the weak model fails; the rest stay weak, which also keeps the Go fix the strong model
    # gets wrong: all right, quality 1.0, so PGR (1 - 8/12) / (11/12 - 8/12) = 4/3.
    assert strategies == {"rules": ["33.3%", "1.333", "0.333"]}
    assert (out_dir / RESULTS).read_text(encoding="utf-8") in out
    assert (out_dir / "traffic.png").read_bytes().startswith(PNG_SIGNATURE)


def test_eval_on_the_shipped_mt_bench_writes_the_plot_and_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    status = evaluate("--benchmark", "mt-bench", "--strategy", "rules", "--out", str(out_dir))

    _, err = capsys.readouterr()
    assert status == 0, err
    results = (out_dir / RESULTS).read_text(encoding="utf-8")
    assert "## mt-bench: 72 prompts; weak 0.809, strong 0.912" in results
    routers, strategies = tables(results)
    for apgr, cpt50, cpt80 in routers.values():
        assert apgr.count("[") == cpt50.count("[") == cpt80.count("[") == 1  # with intervals
    assert routers["length"][0].startswith("0.556 [")  # as tests/evaluation find it
    assert list(strategies) == ["rules"]
    png = (out_dir / "mt-bench.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 20_000


def test_a_scoring_strategy_gets_a_curve_as_well_as_its_operating_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for `learned` whose strong-score is the oracle's (the strong model's gain):
    # its curve must be the oracle's; sending the prompts it gains on to the strong model beats
    # random at the same share.
    data = load_benchmark("mt-bench")
    gains = {p.text: p.strong - p.weak for p in data.prompts}
    config = with_scoring(loader.load_config(), "scored", TableConfig(gains, threshold=0.05))
    monkeypatch.setattr(loader, "load_config", lambda path: config)

    status = evaluate("--benchmark", "mt-bench", "--strategy", "scored", "--out", str(tmp_path))

    out, err = capsys.readouterr()
    assert status == 0, err
    routers, strategies = tables(out)
    assert list(routers) == ["random", "length", "oracle", "scored"]
    for column in range(3):  # APGR, CPT(50%), CPT(80%): the same estimates as the oracle's
        assert routers["scored"][column].split()[0] == routers["oracle"][column].split()[0]
    _, pgr, random_pgr = strategies["scored"]
    assert float(pgr) > float(random_pgr)
    assert (tmp_path / "mt-bench.png").exists()


def test_a_strategy_that_needs_a_model_is_refused_by_name(
    traffic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = evaluate("--jsonl", str(traffic), "--strategy", "classifier", "--out", str(tmp_path))

    assert status == 1
    assert "strategy 'classifier' cannot be replayed offline" in capsys.readouterr().err


def test_a_missing_data_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for benchmark in ("gsm8k", "routerarena"):
        status = evaluate(
            "--benchmark",
            benchmark,
            "--data",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "out"),
        )

        assert status == 1
        assert "nowhere" in capsys.readouterr().err


def test_a_missing_matplotlib_fails_before_routing_with_the_install_hint(
    traffic: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status = evaluate("--jsonl", str(traffic), "--out", str(tmp_path / "out"))

    assert status == 1
    _, err = capsys.readouterr()
    assert "pip install 'fareway[eval]'" in err
    assert not (tmp_path / "out").exists()
