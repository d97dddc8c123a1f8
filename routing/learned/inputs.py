"""What the learned router reads of a request: an embedded text and a few cheap features.

The model's input is the embedding of `embedded_text(query)` followed by `FEATURES`, in order.
Every feature is a property of any text (no benchmark's format is special-cased), computed on
the same bounded window, so a 3 MB prompt costs what a 4 KB one does:

- `log_chars`: log(1 + characters of the whole turn); O(1).
- `log_words`: log(1 + words in the window).
- `digits`: the share of the window's characters that are digits (arithmetic, data, code).
- `symbols`: the share that are operators or brackets (`+-*/=^<>()[]{}%$\\`: maths, code).
- `log_lines`: log(1 + line breaks in the window) (lists, code, pasted material).
- `log_questions`: log(1 + question marks) (several questions in one turn).
- `word_length`: the mean word length in the window (technical vocabulary runs long).

The window is the turn itself up to WINDOW_CHARS characters, else its first and last
WINDOW_CHARS / 2, where a long prompt's instruction and question usually are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

WINDOW_CHARS = 2_048
_SYMBOLS = frozenset("+-*/=^<>()[]{}%$\\")


def embedded_text(query: str) -> str:
    """The part of the turn the learned router reads: all of it up to WINDOW_CHARS characters,
    else its head and tail."""
    if len(query) <= WINDOW_CHARS:
        return query
    half = WINDOW_CHARS // 2
    return f"{query[:half]}\n{query[-half:]}"


def _log_words(window: str, query: str) -> float:
    return math.log1p(len(window.split()))


def _log_chars(window: str, query: str) -> float:
    return math.log1p(len(query))


def _digits(window: str, query: str) -> float:
    return sum(c.isdigit() for c in window) / max(len(window), 1)


def _symbols(window: str, query: str) -> float:
    return sum(c in _SYMBOLS for c in window) / max(len(window), 1)


def _log_lines(window: str, query: str) -> float:
    return math.log1p(window.count("\n"))


def _log_questions(window: str, query: str) -> float:
    return math.log1p(window.count("?"))


def _word_length(window: str, query: str) -> float:
    words = window.split()
    return sum(len(w) for w in words) / len(words) if words else 0.0


Feature = Callable[[str, str], float]
"""A feature of (the window, the whole turn)."""

FEATURES: Mapping[str, Feature] = {
    "log_chars": _log_chars,
    "log_words": _log_words,
    "digits": _digits,
    "symbols": _symbols,
    "log_lines": _log_lines,
    "log_questions": _log_questions,
    "word_length": _word_length,
}
"""Every feature a model file may name, by name; a model lists the ones it was trained on."""


def features(query: str, names: tuple[str, ...]) -> list[float]:
    """The named features of `query`, in the order named; KeyError for an unknown name."""
    window = embedded_text(query)
    return [FEATURES[name](window, query) for name in names]
