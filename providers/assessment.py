"""The self-assessment tail (F4): the line a cascade asks a model to end its answer with, and
the streaming parser that takes it off again before the caller sees it.

The whole format lives here, so what fareway asks for, what `sim` writes and what the engine
parses cannot drift apart:

- `INSTRUCTION` is appended to the system prompt (`with_instruction`); the call then carries
  `ProviderCall.self_assessment=True`.
- The model ends its answer with one line `confidence: X`, X a plain decimal in [0, 1]
  (`format_assessment` writes it, with the line break before it).
- `AssessmentParser` takes the answer piece by piece. It holds back only what could still turn
  out to be that tail (trailing whitespace, and a last line that starts like `confidence:`, up
  to `MAX_TAIL_LINE` characters), so the rest of the answer streams without delay. `finish()`
  returns what was held back and is not the tail, and the confidence: None when the tail is
  missing, malformed or out of range, which the cascade counts as low confidence.

A last line that starts with `confidence:` is the tail even when its number is unreadable, so
that a model's garbled self-assessment is never shown to the caller. The same line in the middle
of an answer (with text after it) is ordinary text and is passed through.

Pure string work: no gRPC, no ledger, no provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEYWORD = "confidence"

INSTRUCTION = (
    "After your answer, end with one final line of exactly this form:\n"
    f"{KEYWORD}: X\n"
    "where X is a number between 0 and 1 (for example 0.85) saying how likely your answer is to "
    "be correct and complete. Write nothing after that line."
)

# A tail line is short; a longer last line is ordinary text, so at most this much is ever held.
MAX_TAIL_LINE = 64

# ASCII digits only: float() would also read Arabic-Indic or fullwidth digits, which the
# instruction never asks for. An optional full stop ends it, as models like to write sentences.
_TAIL_LINE = re.compile(
    rf"[ \t]*{KEYWORD}[ \t]*:[ \t]*(?P<value>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\.?[ \t]*",
    re.IGNORECASE | re.ASCII,
)
_TAIL_START = re.compile(rf"[ \t]*{KEYWORD}[ \t]*:", re.IGNORECASE | re.ASCII)


def with_instruction(system: str) -> str:
    """The system prompt with `INSTRUCTION` appended (after a blank line when it has text)."""
    return f"{system}\n\n{INSTRUCTION}" if system else INSTRUCTION


def without_instruction(system: str) -> str:
    """The caller's system prompt: `system` less the `INSTRUCTION` that `with_instruction`
    appended, unchanged when it carries none."""
    if system == INSTRUCTION:
        return ""
    suffix = f"\n\n{INSTRUCTION}"
    return system.removesuffix(suffix)


def format_assessment(confidence: float) -> str:
    """The tail to append to an answer: a line break, then `confidence: 0.85` (two decimals).

    Raises ValueError for a confidence outside [0, 1] (NaN included)."""
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    return f"\n{KEYWORD}: {confidence:.2f}"


@dataclass(frozen=True)
class ParsedTail:
    """How an answer ended. `rest`: the held-back text that is not the tail, to pass on to the
    caller. `tail`: the tail line that was removed ("" when the answer had none).
    `confidence`: the model's self-assessment, None when the tail is missing or unreadable."""

    rest: str
    tail: str
    confidence: float | None


class AssessmentParser:
    """Strips the self-assessment tail from a streamed answer. Feed it every text piece in
    order and pass on what `feed` returns; at the end, `finish` says the rest and the
    confidence. One parser per answer."""

    def __init__(self) -> None:
        self._held = ""
        # Nothing passed on yet: the held text starts a line, so a tail may start at once.
        self._at_start = True
        self._finished = False

    def feed(self, piece: str) -> str:
        """Take the next piece of the answer; return the text that can go to the caller now."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        text = self._held + piece
        keep = _hold_from(text, self._at_start)
        ready, self._held = text[:keep], text[keep:]
        if ready:
            self._at_start = False
        return ready

    def finish(self) -> ParsedTail:
        """The answer is complete: the held text that is not the tail, and the confidence."""
        self._finished = True
        held, self._held = self._held, ""
        line = _tail_line(held, self._at_start)
        if line is None:
            return ParsedTail(held, "", None)
        return ParsedTail("", line.strip(" \t"), _confidence(line))


def split_assessment(text: str) -> tuple[str, float | None]:
    """A whole answer as (the answer without its tail, the confidence or None)."""
    parser = AssessmentParser()
    shown = parser.feed(text)
    tail = parser.finish()
    return shown + tail.rest, tail.confidence


def _hold_from(text: str, at_start: bool) -> int:
    """Where the part of `text` that could still be (the start of) the tail begins: its
    trailing whitespace, from the line break before a last line that looks like a tail."""
    body = text.rstrip()
    line_at = body.rfind("\n") + 1
    if (line_at or at_start) and _could_be_tail(body[line_at:]):
        # Also hold the whitespace before the tail's line: with the tail gone, the answer
        # should not end in a dangling blank line.
        return len(body[:line_at].rstrip())
    return len(body)


def _could_be_tail(line: str) -> bool:
    """Whether this last line is, or may yet grow into, a tail line."""
    if len(line) > MAX_TAIL_LINE:
        return False
    # `line` has no trailing whitespace, so "confidence " waiting for its colon reads as the
    # whole keyword here.
    start = line.lstrip(" \t").lower()
    return bool(start) and (KEYWORD.startswith(start) or _TAIL_START.match(line) is not None)


def _tail_line(held: str, at_start: bool) -> str | None:
    """The tail's line in the held text at the end of the answer, or None when it has none."""
    body = held.rstrip()
    line_at = body.rfind("\n") + 1
    line = body[line_at:]
    if not (line_at or at_start) or len(line) > MAX_TAIL_LINE or not _TAIL_START.match(line):
        return None
    return line


def _confidence(line: str) -> float | None:
    """The number on a tail line, when it is well formed and within [0, 1]."""
    match = _TAIL_LINE.fullmatch(line)
    if match is None:
        return None
    value = float(match["value"])
    return value if 0.0 <= value <= 1.0 else None
