"""Token estimates: conservative (they size reservations and context checks), never low."""

from fareway.routing.features import extract_features
from fareway.routing.tokens import estimate_prompt_tokens, estimate_tokens


def test_estimate_is_utf8_bytes_over_three_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 2
    assert estimate_tokens("a" * 300) == 100


def test_multibyte_text_counts_its_bytes() -> None:
    # Three characters, nine UTF-8 bytes: dense scripts must not be underestimated.
    assert estimate_tokens("日本語") == 3
    assert estimate_tokens("é" * 3) == 2


def test_english_is_overestimated_against_four_characters_a_token() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    assert estimate_tokens(text) >= len(text) / 4


def test_prompt_estimate_adds_per_message_overhead_and_the_system_prompt() -> None:
    assert estimate_prompt_tokens("", ["abc"]) == 1 + 4
    assert estimate_prompt_tokens("", ["abc", "abcdef"]) == (1 + 4) + (2 + 4)
    assert estimate_prompt_tokens("abc", ["abc"]) == (1 + 4) + (1 + 4)


def test_features_measure_the_whole_prompt_but_words_of_the_last_turn(make_request) -> None:
    request = make_request("one two three", system="x" * 30)

    features = extract_features(request)

    assert features.word_count == 3
    assert features.query_tokens == estimate_tokens("one two three")
    assert features.prompt_tokens == (10 + 4) + (5 + 4)
