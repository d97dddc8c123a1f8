"""Token estimates without a tokenizer.

No offline tokenizer is exact for current Claude models, so estimates here err high: they size
reservations and context-window checks, and billing always uses the provider's reported usage.

They run on the event loop for every request, prompts of megabytes included, so they cost O(1)
for ASCII text and one encode otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fareway.core.content import IMAGE_TOKENS, Message, Tool, prompt_texts

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


def estimate_request_tokens(
    system: str, messages: Sequence[Message], tools: Sequence[Tool] = ()
) -> int:
    """A conservative token count for what a model is sent: the system text, every turn (tool
    calls and results included), the tool definitions, and IMAGE_TOKENS for each image."""
    images = sum(len(message.images) for message in messages)
    return estimate_prompt_tokens(system, prompt_texts(messages, tools)) + images * IMAGE_TOKENS
