"""Features of huge prompts cost bounded work: exact below the bounds, documented estimates
and windows above them."""

from __future__ import annotations

import pytest

from fareway.routing.features import (
    EXACT_WORDS_CHARS,
    MAX_MARKS,
    WINDOW_CHARS,
    count_words,
    extract_features,
    is_large,
    strip_payload,
    window,
)
from fareway.routing.tokens import estimate_tokens, utf8_length


@pytest.mark.parametrize("text", ["", "abc", "é" * 7, "日本語 and ascii", "emoji 🙂", "a\x00b"])
def test_utf8_length_is_the_encoded_length(text: str) -> None:
    assert utf8_length(text) == len(text.encode("utf-8"))


def test_words_are_exact_up_to_the_bound() -> None:
    text = ("word " * EXACT_WORDS_CHARS)[:EXACT_WORDS_CHARS]

    assert count_words(text) == (len(text.split()), False)


@pytest.mark.parametrize("repeat", ["word ", "a b c ", "longerwordhere ", "x\n"])
def test_words_beyond_the_bound_are_estimated_closely(repeat: str) -> None:
    text = repeat * (3_000_000 // len(repeat))

    counted, estimated = count_words(text)

    exact = len(text.split())
    assert estimated
    assert abs(counted - exact) <= exact * 0.01


def test_keywords_and_code_are_found_at_either_end_of_a_huge_query(make_request) -> None:
    filler = "lorem ipsum dolor sit amet " * 100_000
    request = make_request(f"Please analyze the text below.\n{filler}\nThanks.")
    tail_code = make_request(f"{filler}\ndef main():\n    return 1\n")
    middle = make_request(f"{filler}analyze\n{filler}")

    assert "analyze" in extract_features(request).query_lower
    assert extract_features(tail_code).has_code
    assert "analyze" not in extract_features(middle).query_lower, "the middle is not searched"


def test_window_is_the_whole_text_when_short() -> None:
    short = "x" * (2 * WINDOW_CHARS)
    long = "h" * WINDOW_CHARS + "m" * 10 + "t" * WINDOW_CHARS

    assert window(short) is short
    assert window(long) == "h" * WINDOW_CHARS + "\n" + "t" * WINDOW_CHARS


def test_huge_prompt_features_still_count_every_byte_for_tokens(make_request) -> None:
    text = "é" * 1_000_000
    features = extract_features(make_request(text, system="s"))

    assert features.query_tokens == estimate_tokens(text) == 2_000_000 // 3 + 1
    assert features.prompt_tokens == (1 + 4) + (features.query_tokens + 4)
    assert features.word_count_estimated  # (from samples, which err high on one long word)


def test_large_requests_are_told_apart(make_request) -> None:
    assert not is_large(make_request("short"))
    assert is_large(make_request("x" * 100_000))
    assert is_large(make_request("hi", system="s" * 100_000))


def test_payload_marks_beyond_the_bound_are_not_looked_at() -> None:
    ask = "Classify the sentiment of this review: great blender, loud motor"
    labels = ".Q: "  # a colon after a one-word clause introduces nothing

    assert strip_payload(labels * (MAX_MARKS - 1) + ask).endswith("of this review")
    assert strip_payload(labels * MAX_MARKS + ask).endswith("loud motor")


def test_a_window_full_of_payload_marks_is_read_in_bounded_work(make_request) -> None:
    # Quotes, fences and colons throughout a huge turn: the first marks are payload, the rest
    # of the window is left as it is.
    text = "“a b c” .a: ```x``` 'd e f' " * 100_000

    instruction = extract_features(make_request(text)).instruction

    assert instruction.text.startswith(".a:       .a:")
    assert instruction.text.endswith("“a b c” .a: ```x``` 'd e f'")
