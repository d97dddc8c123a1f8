"""The self-assessment tail: the format fareway asks for, and the streaming parser that strips it
without holding back more of the answer than could be the tail."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fareway.providers.assessment import (
    INSTRUCTION,
    MAX_TAIL_LINE,
    AssessmentParser,
    ParsedTail,
    format_assessment,
    split_assessment,
    with_instruction,
    without_instruction,
)


def stream(pieces: Iterable[str]) -> tuple[list[str], ParsedTail]:
    """What the caller would see piece by piece, and how the answer ended."""
    parser = AssessmentParser()
    shown = [parser.feed(piece) for piece in pieces]
    return shown, parser.finish()


def seen(pieces: Iterable[str]) -> tuple[str, float | None]:
    """All the caller sees, and the confidence."""
    shown, end = stream(pieces)
    return "".join(shown) + end.rest, end.confidence


# --- the format ---------------------------------------------------------------------------------


def test_format_writes_the_line_the_instruction_asks_for() -> None:
    assert format_assessment(0.85) == "\nconfidence: 0.85"
    assert format_assessment(1) == "\nconfidence: 1.00"
    assert "confidence: X" in INSTRUCTION


@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan"), float("inf")])
def test_format_refuses_a_confidence_outside_zero_to_one(value: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        format_assessment(value)


@pytest.mark.parametrize("value", [0.0, 0.07, 0.5, 0.85, 1.0])
def test_what_format_writes_parses_back(value: float) -> None:
    assert split_assessment("The answer." + format_assessment(value)) == ("The answer.", value)


@pytest.mark.parametrize("system", ["", "Be terse.", "Line one\n\nline two\n"])
def test_the_instruction_is_appended_and_removed_again(system: str) -> None:
    asked = with_instruction(system)

    assert asked.endswith(INSTRUCTION)
    assert asked.startswith(system)
    assert without_instruction(asked) == system
    assert without_instruction(system) == system


# --- whole answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Paris.\nconfidence: 0.9", ("Paris.", 0.9)),
        ("Paris.\n\nconfidence: 0.9\n", ("Paris.", 0.9)),  # blank line before, newline after
        ("Paris.\r\nconfidence: 0.9\r\n", ("Paris.", 0.9)),
        ("Paris.\n  Confidence : 0.9", ("Paris.", 0.9)),  # indent, case, space before the colon
        ("Paris.\nCONFIDENCE:0.9", ("Paris.", 0.9)),
        ("Paris.\nconfidence: 0.9.", ("Paris.", 0.9)),  # a full stop after the number
        ("Paris.\nconfidence: .5", ("Paris.", 0.5)),
        ("Paris.\nconfidence: 1", ("Paris.", 1.0)),
        ("Paris.\nconfidence: 0", ("Paris.", 0.0)),
        ("confidence: 0.4", ("", 0.4)),  # an answer that is only the tail
        ("  Paris  \n\n\t\nconfidence: 0.9", ("  Paris", 0.9)),
    ],
)
def test_a_tail_is_removed_and_read(answer: str, expected: tuple[str, float]) -> None:
    assert split_assessment(answer) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "Paris.",
        "Paris.\n",
        "",
        "Paris.\nconf",  # the start of the keyword, then the answer ended
        "Paris.\nconfidence",  # the keyword without its colon
        "Paris. confidence: 0.9",  # not on a line of its own
        "I have high confidence: 0.9",
    ],
)
def test_an_answer_without_a_tail_passes_through_whole(answer: str) -> None:
    assert split_assessment(answer) == (answer, None)


@pytest.mark.parametrize(
    "tail",
    [
        "confidence: high",
        "confidence: 0.8x",
        "confidence: 1.5",  # above 1
        "confidence: 85",
        "confidence: -0.2",  # below 0
        "confidence: 0.8 0.9",
        "confidence: 85%",
        "confidence: 0,8",
        "confidence: 1e-1",
        "confidence: nan",
        "confidence: inf",
        "confidence: ",
        "confidence:",
        "confidence: \uff10.\uff18",  # fullwidth digits
        "confidence: \u0660.\u0668",  # Arabic-Indic digits
    ],
)
def test_a_malformed_or_out_of_range_tail_is_removed_but_reads_as_none(tail: str) -> None:
    shown, end = stream(["Paris.\n", tail])

    assert "".join(shown) + end.rest == "Paris."
    assert end.tail == tail.strip()
    assert end.confidence is None


def test_a_tail_like_line_mid_answer_is_ordinary_text() -> None:
    answer = "Step one.\nconfidence: 0.2\nStep two.\nconfidence: 0.75"

    assert split_assessment(answer) == ("Step one.\nconfidence: 0.2\nStep two.", 0.75)


def test_only_the_last_tail_counts() -> None:
    assert split_assessment("A\nconfidence: 0.1\nconfidence: 0.6") == ("A\nconfidence: 0.1", 0.6)


def test_a_last_line_longer_than_a_tail_is_text() -> None:
    line = "confidence: " + "x" * MAX_TAIL_LINE

    assert split_assessment(f"A\n{line}") == (f"A\n{line}", None)


def test_unicode_around_the_tail_is_kept_intact() -> None:
    answer = "Ça coûte 5 € — 東京 🚀\u00a0fin."

    assert split_assessment(answer + "\nconfidence: 0.66") == (answer, 0.66)
    assert split_assessment(answer) == (answer, None)


# --- streaming ----------------------------------------------------------------------------------


def test_a_tail_split_into_single_characters_is_removed() -> None:
    shown, end = stream("Paris is the capital.\n\nconfidence: 0.93\n")

    assert "".join(shown) == "Paris is the capital."
    assert end == ParsedTail("", "confidence: 0.93", 0.93)


def test_the_answer_is_not_delayed_by_more_than_what_could_be_the_tail() -> None:
    parser = AssessmentParser()

    assert parser.feed("The answer ") == "The answer"  # the space could precede the tail
    assert parser.feed("is 42.") == " is 42."
    assert parser.feed("\nconf") == ""
    assert parser.feed("ident pizza") == "\nconfident pizza"  # not the tail after all
    assert parser.feed("\nconfidence: 0.") == ""
    assert parser.feed("7") == ""
    assert parser.finish() == ParsedTail("", "confidence: 0.7", 0.7)


def test_a_held_tail_like_line_is_released_when_text_follows_it() -> None:
    parser = AssessmentParser()

    assert parser.feed("A\nconfidence: 0.3\n") == "A"
    assert parser.feed("\nB") == "\nconfidence: 0.3\n\nB"
    assert parser.finish() == ParsedTail("", "", None)


def test_a_held_start_that_never_became_a_tail_comes_out_at_the_end() -> None:
    shown, end = stream(["Answer", "\n", "Confid"])

    assert "".join(shown) == "Answer"
    assert end == ParsedTail("\nConfid", "", None)


def test_trailing_whitespace_without_a_tail_comes_out_at_the_end() -> None:
    assert seen(["Answer.", " \n\n"]) == ("Answer. \n\n", None)


def test_feed_after_finish_is_a_mistake() -> None:
    parser = AssessmentParser()
    parser.finish()

    with pytest.raises(RuntimeError):
        parser.feed("late")


# --- properties ---------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.sampled_from("ab cC:0.9\n\t\r€東🚀confidence"), max_size=80)


def _pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(cut, len(text)) for cut in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@given(text=_TEXT, cuts=st.lists(st.integers(0, 80), max_size=12))
def test_streaming_in_any_pieces_gives_what_the_whole_text_gives(
    text: str, cuts: list[int]
) -> None:
    assert seen(_pieces(text, cuts)) == split_assessment(text)


@given(
    text=_TEXT,
    value=st.integers(0, 100).map(lambda n: n / 100),
    cuts=st.lists(st.integers(0, 100), max_size=12),
)
def test_any_answer_with_a_tail_comes_back_without_it(
    text: str, value: float, cuts: list[int]
) -> None:
    assert seen(_pieces(text + format_assessment(value), cuts)) == (text.rstrip(), value)


@given(text=_TEXT, cuts=st.lists(st.integers(0, 80), max_size=12))
def test_only_whitespace_and_the_tail_line_are_ever_removed(text: str, cuts: list[int]) -> None:
    shown, end = stream(_pieces(text, cuts))
    out = "".join(shown) + end.rest

    assert text.startswith(out)
    assert text[len(out) :].strip() == end.tail
