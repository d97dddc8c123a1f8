"""The instruction of a turn: the turn without its payload (quoted text, fenced code, what an
introducing colon leads to), conservatively; a turn without a payload is its own instruction."""

from __future__ import annotations

import pytest

from fareway.routing.features import (
    EXACT_WORDS_CHARS,
    WINDOW_CHARS,
    extract_features,
    payload_spans,
    strip_payload,
)

REVIEW = "The blender arrived late, but it crushes ice in seconds and I love it."


@pytest.mark.parametrize(
    ("turn", "instruction"),
    [
        # after a colon that ends a clause of three or more words
        (
            f"Classify the sentiment of this review as positive or negative: '{REVIEW}'",
            "Classify the sentiment of this review as positive or negative",
        ),
        (
            f"Classify the sentiment of this review as positive or negative: {REVIEW}",
            "Classify the sentiment of this review as positive or negative",
        ),
        (
            "Extract every date from the email below:\n\nHi, see you 3 May.",
            "Extract every date from the email below",
        ),
        ("Label the intent: cancel my subscription", "Label the intent"),
        # after "this:", "these:", "the following:", "below:", "here:" whatever the clause's length
        ("classify this: spam or not?", "classify this"),
        ("Sort these: 3, 1, 2", "Sort these"),
        ("Translate the following:\nbonjour", "Translate the following"),
        ("**Classify this**: spam or ham", "**Classify this**"),
        # quoted text of three words or more, in any common quotes
        (f'Is "{REVIEW}" a positive review?', "Is   a positive review?"),
        (f"Is '{REVIEW}' positive?", "Is   positive?"),
        (f"Is “{REVIEW}” positive?", "Is   positive?"),
        (f"Is «{REVIEW}» positive?", "Is   positive?"),
        (
            f"Is \N{LEFT SINGLE QUOTATION MARK}{REVIEW}\N{RIGHT SINGLE QUOTATION MARK} positive?",
            "Is   positive?",
        ),
        ("Is 'I don't like it at all' negative?", "Is   negative?"),  # an apostrophe inside
        # fenced code, closed or running to the end
        (
            "Why does this fail?\n```python\nx = 1 / 0\n```\nThanks.",
            "Why does this fail?\n \nThanks.",
        ),
        ("Fix my code\n```\nwhile True: pass", "Fix my code"),
        ("What does this print? ```print('a: b c d')```", "What does this print?"),
        # the first introducing colon wins, and a colon inside a payload introduces nothing
        ("Explain this regex: ^a:b$ and this one: c", "Explain this regex"),
        ("Is 'note: the cake is a lie' sarcastic?", "Is   sarcastic?"),
    ],
)
def test_the_payload_is_removed(turn: str, instruction: str) -> None:
    assert strip_payload(turn) == instruction


@pytest.mark.parametrize(
    "turn",
    [
        "What is the capital of Australia?",  # no payload at all
        "Open https://example.com:8443/path?q=1 and tell me what it says",  # URLs
        "Is the meeting at 10:30 or at 11:00 tomorrow?",  # times
        "Mix sand and cement 3:1, is that strong enough?",  # ratios
        "Note: classify this sentence as formal or informal.",  # a label, not an instruction
        "Q: what is 2 + 2?",
        "Step 2: explain why the sky is blue",
        "Which of these is a mammal?\nA. trout\nB. whale\nAnswer:",  # multiple choice
        "What does 'idempotent' mean?",  # a short quote is a term
        "Is the 'reply all' button evil?",
        "I don't think it's the users' fault, is it?",  # apostrophes are not quotes
        'My 27" monitor flickers, why?',  # an unclosed quote removes nothing
        "Call std::sort on the vector, why does it not compile?",
    ],
)
def test_a_turn_without_a_payload_is_its_own_instruction(turn: str) -> None:
    assert payload_spans(turn) == []
    assert strip_payload(turn) == turn


def test_the_instruction_is_part_of_the_features(make_request) -> None:
    features = extract_features(
        make_request(f"Classify the sentiment of this review as positive or negative: '{REVIEW}'")
    )

    assert (
        features.instruction.text == "Classify the sentiment of this review as positive or negative"
    )
    assert features.instruction.lower == features.instruction.text.lower()
    assert features.instruction.word_count == 10
    assert not features.instruction.word_count_estimated
    assert features.word_count == 10 + len(REVIEW.split())


def test_without_a_payload_the_instruction_counts_the_turns_words(make_request) -> None:
    huge = "lorem ipsum dolor sit amet " * 100_000
    features = extract_features(make_request(huge))

    assert features.word_count_estimated
    assert features.instruction.word_count == features.word_count
    assert features.instruction.word_count_estimated


def test_a_huge_payload_after_a_colon_leaves_a_short_exact_instruction(make_request) -> None:
    huge = "lorem ipsum dolor sit amet " * 100_000
    features = extract_features(make_request(f"Extract all the dates from this text: {huge}"))

    assert features.instruction.text == "Extract all the dates from this text"
    assert (features.instruction.word_count, features.instruction.word_count_estimated) == (
        7,
        False,
    )


def test_a_huge_turn_whose_middle_is_not_payload_keeps_its_middle_in_the_count(
    make_request,
) -> None:
    quoted = "'" + ("a quoted line " * 10).strip() + "'"
    body = "plain words here " * (EXACT_WORDS_CHARS // 10)
    assert len(body) > 2 * WINDOW_CHARS
    features = extract_features(make_request(f"Is {quoted} positive?\n{body}"))

    assert features.word_count_estimated
    assert features.instruction.word_count_estimated
    removed = len(quoted.split())
    assert features.instruction.word_count == pytest.approx(features.word_count - removed, abs=1)
    assert features.instruction.text.startswith("Is   positive?")


def test_an_unclosed_fence_in_a_huge_turn_makes_its_middle_payload(make_request) -> None:
    code = "x = 1\n" * 100_000
    features = extract_features(make_request(f"What is wrong here?\n```\n{code}"))

    assert features.instruction.text == "What is wrong here?"
    assert (features.instruction.word_count, features.instruction.word_count_estimated) == (
        4,
        False,
    )
