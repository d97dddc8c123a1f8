"""Token estimates without a tokenizer.

No offline tokenizer is exact for current Claude models, so estimates here err high: they size
reservations and context-window checks, and billing always uses the provider's reported usage.

They run on the event loop for every request, prompts of megabytes included, so they cost O(1)
for ASCII text and one encode otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

# English runs near 4 characters a token on modern BPE vocabularies; code and other scripts run
# denser. Three bytes a token overestimates nearly everything, which is what a bound wants.
_BYTES_PER_TOKEN = 3
# Role markers and separators the provider adds around each message.
_PER_MESSAGE_OVERHEAD = 4


def utf8_length(text: str) -> int:
    """The length of `text` in UTF-8 bytes. ASCII text is its own length, and CPython records
    whether a string is ASCII when it makes it, so `isascii` costs nothing; other text is
    encoded once."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def estimate_tokens(text: str) -> int:
    """A conservative token count for one piece of text."""
    return -(-utf8_length(text) // _BYTES_PER_TOKEN)


def estimate_prompt_tokens(system: str, contents: Iterable[str]) -> int:
    """A conservative token count for a whole prompt: system text plus every message."""
    total = estimate_tokens(system) + (_PER_MESSAGE_OVERHEAD if system else 0)
    for content in contents:
        total += estimate_tokens(content) + _PER_MESSAGE_OVERHEAD
    return total
