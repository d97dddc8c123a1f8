"""Request features: the measurable facts about a request that strategies decide on.

Features are computed on the event loop for every request, and a prompt may be megabytes long,
so each one costs bounded work whatever the size (reading all of a 3 MB prompt with a regex or
`str.split` takes 50-120 ms, during which no other caller is served):

- token estimates: O(1) for ASCII, one encode otherwise (`routing.tokens`);
- `word_count`: exact for a query of up to EXACT_WORDS_CHARS characters; beyond that,
  estimated from WORD_SAMPLES evenly spaced samples of WORD_SAMPLE_CHARS characters each, and
  `word_count_estimated` is set. Routing rules use thresholds around 10 and 100 words, which
  any query that long passes either way (the estimate errs high for text made of very long
  words, since each sample counts the word it falls in);
- keywords and code are looked for in `window(query)`: the whole query up to
  twice WINDOW_CHARS characters, else its first and last WINDOW_CHARS characters, where a long
  prompt's instruction usually is (the question before pasted material, or after it);
- the instruction (`Features.instruction`) is that window without its payload, found in linear
  passes over it, and only when a strategy asks for it.

The instruction is what the turn asks for, without the material it asks about, so that "Classify
the sentiment of this review as positive or negative: '<a long review>'" reads as the short
classification request it is. The payload is, conservatively:

- fenced code: from three backticks to the next three, or to the end when unclosed;
- quoted text of at least MIN_QUOTED_WORDS words, in "...", '...', “...”, «...» or curly
  single quotes (shorter quotes are usually terms: "what does 'idempotent' mean"); a single
  quote opens only after a space or an opening bracket and closes only before a non-letter, so
  apostrophes ("don't", "users' data") are not quotes; a quote that never closes removes nothing;
- everything after a colon that introduces it: a colon followed by a space, a line break or
  the end, after a clause of at least MIN_LEAD_WORDS words or one ending in "this", "these",
  "the following", "below" or "here" ("Classify this: ..."). So a URL ("https://"), a time
  ("10:30"), a ratio ("3:1") or a label ("Note: ...", "Q: ...", the "Answer:" of a
  multiple-choice question) is not a payload marker. The payload runs to the end of the turn:
  an instruction written after pasted material ("<text>\n\nIs it positive?") is not found, so
  rules that read the instruction do not match and the turn goes where the other rules send it.

Each of these looks at the first MAX_MARKS of its marks only (backticks, quotes, colons), so the
instruction of any turn costs about a millisecond at most. A turn with no payload is its own
instruction. For a windowed (long) turn whose cut lies outside any payload, the instruction's
word count is the turn's (estimated) count less the payload words found in the window.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import islice

from fareway.routing.request import RouteRequest
from fareway.routing.tokens import estimate_request_tokens, estimate_tokens

# Above this many characters of text a request counts as large: the server and router then
# yield to the event loop between the steps that touch all of it (decoding, measuring), so
# that other callers' small requests are served in between (see `is_large`).
LARGE_REQUEST_CHARS = 64 * 1024
EXACT_WORDS_CHARS = 16_384
WORD_SAMPLES = 4
WORD_SAMPLE_CHARS = 4_096
WINDOW_CHARS = 4_096
MIN_QUOTED_WORDS = 3
MIN_LEAD_WORDS = 3
# Fence marks, quote marks and colons looked at, each: beyond, the rest of the text holds no
# payload mark (a window full of quotes and colons would otherwise take ~20 ms of the event
# loop; with the bound, at most about 1 ms on a slow core).
MAX_MARKS = 64

# Fenced blocks, or lines that look like code in the common languages.
_CODE_PATTERN = re.compile(
    r"```|^\s*(def|class|import|from \S+ import|function|const|let|var|public|#include|SELECT)\b"
    r"|[;{}]\s*$",
    re.MULTILINE,
)
_FENCE = re.compile(r"```")
_LEFT, _RIGHT = "\N{LEFT SINGLE QUOTATION MARK}", "\N{RIGHT SINGLE QUOTATION MARK}"
_QUOTE = re.compile(f"[\"'“”«»{_LEFT}{_RIGHT}]")
_COLON = re.compile(r":(?!\S)")  # followed by whitespace or the end (no lookbehind: slow)
_CLOSING_MARKS = f"*_\"'”)]{_RIGHT}"  # may end the word before a colon
_DEICTIC = frozenset({"this", "these", "following", "below", "here"})
_CLOSES = {"”": "“", _RIGHT: _LEFT, "»": "«"}  # a closing mark, and the opening mark it closes
_OPENS = frozenset({'"', "'", "“", _LEFT, "«"})
_LOOKBACK_CHARS = 100  # how far back a colon's clause is looked for


@dataclass(frozen=True)
class Features:
    """What rules and strategies look at. `query` is the last user turn; `query_lower` is the
    part of it that keywords and code are looked for in (`window(query)`: all of it unless it
    is long), in lower case."""

    query: str
    query_lower: str
    word_count: int
    query_tokens: int
    prompt_tokens: int
    has_code: bool
    step_type: str
    labels: Mapping[str, str]
    word_count_estimated: bool = False  # True when the query was too long to count in full
    has_images: bool = False  # some turn shows the model an image (the "vision" constraint)

    @cached_property
    def instruction(self) -> Instruction:
        """The query without its payload, read on first use (so only strategies that look at
        it pay for it)."""
        return read_instruction(self.query, self.word_count, self.word_count_estimated)


@dataclass(frozen=True)
class Instruction:
    """What the last user turn asks for: `window(query)` without its payload (see the module
    docstring), as is and in lower case, and its word count (estimated when the turn's is and
    the unread middle of the turn is not payload)."""

    text: str
    lower: str
    word_count: int
    word_count_estimated: bool = False


def extract_features(request: RouteRequest) -> Features:
    """Measure a request once, so that every strategy and constraint sees the same numbers."""
    query = request.query
    searched = window(query)
    words, estimated = count_words(query)
    return Features(
        query=query,
        query_lower=searched.lower(),
        word_count=words,
        query_tokens=estimate_tokens(query),
        prompt_tokens=estimate_request_tokens(request.system, request.messages, request.tools),
        has_code=bool(_CODE_PATTERN.search(searched)),
        step_type=request.hints.step_type,
        labels=request.hints.labels,
        word_count_estimated=estimated,
        has_images=request.has_images,
    )


def read_instruction(query: str, words: int, estimated: bool) -> Instruction:
    """The instruction of `query`, whose word count (`count_words`) is `words`, `estimated`."""
    searched = window(query)
    spans = payload_spans(searched)
    if not spans:
        return Instruction(searched, searched.lower(), words, estimated)
    told = _without(searched, spans)
    told_words = len(told.split())
    if searched is not query and not any(start <= WINDOW_CHARS < end for start, end in spans):
        # The unread middle of a long turn is instruction: count it as the turn's count does.
        told_words = max(told_words, words - len(searched.split()) + told_words)
        return Instruction(told, told.lower(), told_words, estimated)
    return Instruction(told, told.lower(), told_words)


def is_large(request: RouteRequest) -> bool:
    """Whether the request's text (system prompt and every message) passes LARGE_REQUEST_CHARS:
    then each step that reads all of it is worth a separate turn of the event loop."""
    size = len(request.system)
    for message in request.messages:
        size += len(message.readable())
        if size > LARGE_REQUEST_CHARS:
            return True
    return size > LARGE_REQUEST_CHARS


def window(text: str) -> str:
    """`text` itself up to twice WINDOW_CHARS characters, else its first and last WINDOW_CHARS
    joined by a line break (so no keyword or line of code spans the cut)."""
    if len(text) <= 2 * WINDOW_CHARS:
        return text
    return f"{text[:WINDOW_CHARS]}\n{text[-WINDOW_CHARS:]}"


def count_words(text: str) -> tuple[int, bool]:
    """(the number of whitespace-separated words, whether that number is an estimate): exact up
    to EXACT_WORDS_CHARS characters, else scaled from evenly spaced samples."""
    if len(text) <= EXACT_WORDS_CHARS:
        return len(text.split()), False
    step = (len(text) - WORD_SAMPLE_CHARS) // (WORD_SAMPLES - 1)
    sampled = sum(
        len(text[start : start + WORD_SAMPLE_CHARS].split())
        for start in range(0, step * WORD_SAMPLES, step)
    )
    return round(sampled * len(text) / (WORD_SAMPLES * WORD_SAMPLE_CHARS)), True


def strip_payload(text: str) -> str:
    """`text` without its payload: fenced code, long quotes, and what an introducing colon
    leads to (see the module docstring); `text` itself when it carries none."""
    return _without(text, payload_spans(text))


def payload_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) character ranges of `text` that are payload, in order, not overlapping."""
    fences = _fences(text)
    spans = _merge(fences + _quotes(text, _Spans(fences)))
    colon = _introducing_colon(text, _Spans(spans))
    if colon is not None:
        spans = [*(span for span in spans if span[1] <= colon), (colon, len(text))]
    return spans


class _Spans:
    """Sorted, non-overlapping ranges, asked whether they hold a position in O(log n)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self._starts = [start for start, _ in spans]
        self._ends = [end for _, end in spans]

    def __contains__(self, position: int) -> bool:
        index = bisect_right(self._starts, position) - 1
        return index >= 0 and position < self._ends[index]


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    kept, at = [], 0
    for start, end in spans:
        kept.append(text[at:start])
        at = end
    kept.append(text[at:])
    return " ".join(kept).strip()


def _fences(text: str) -> list[tuple[int, int]]:
    marks = [m.start() for m in islice(_FENCE.finditer(text), MAX_MARKS)]
    spans = [(marks[i], marks[i + 1] + 3) for i in range(0, len(marks) - 1, 2)]
    if len(marks) % 2:
        spans.append((marks[-1], len(text)))
    return spans


def _quotes(text: str, fences: _Spans) -> list[tuple[int, int]]:
    """Quoted spans of at least MIN_QUOTED_WORDS words, in one pass: each kind of quote has at
    most one open position; a close records the span and forgets quotes opened inside it."""
    opened: dict[str, int] = {}
    found: list[tuple[int, int]] = []
    for match in islice(_QUOTE.finditer(text), MAX_MARKS):
        at, mark = match.start(), match.group()
        if at in fences:
            continue
        before = text[at - 1] if at else " "
        after = text[at + 1] if at + 1 < len(text) else " "
        kind = _CLOSES.get(mark, mark)
        apostrophe_like = mark in ("'", _RIGHT) and (before.isspace() or after.isalnum())
        if kind in opened and not apostrophe_like:
            start = opened.pop(kind)
            if len(text[start + 1 : at].split()) >= MIN_QUOTED_WORDS:
                found.append((start, at + 1))
                opened = {k: v for k, v in opened.items() if v < start}
        elif (
            mark in _OPENS
            and not after.isspace()
            and (mark != "'" or before.isspace() or before in "([{")
        ):
            opened.setdefault(kind, at)
    return found


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _introducing_colon(text: str, payload: _Spans) -> int | None:
    """The position of the first colon outside other payload that introduces a payload: one
    after a clause (since the last sentence end or line break) of MIN_LEAD_WORDS words or more,
    or one ending in a word that points at what follows ("this", "below", ...)."""
    for match in islice(_COLON.finditer(text), MAX_MARKS):
        at = match.start()
        if at == 0 or at in payload:
            continue
        before = text[at - 1]
        if not (before.isalnum() or before in _CLOSING_MARKS):
            continue
        lookback = max(0, at - _LOOKBACK_CHARS)
        clause_start = max(text.rfind(mark, lookback, at) for mark in ".!?\n") + 1
        lead = text[max(clause_start, lookback) : at].split()
        if len(lead) >= MIN_LEAD_WORDS or (
            lead and lead[-1].strip(_CLOSING_MARKS).lower() in _DEICTIC
        ):
            return at
    return None
