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
  prompt's instruction usually is (the question before pasted material, or after it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fareway.routing.request import RouteRequest
from fareway.routing.tokens import estimate_prompt_tokens, estimate_tokens

# Above this many characters of text a request counts as large: the server and router then
# yield to the event loop between the steps that touch all of it (decoding, measuring), so
# that other callers' small requests are served in between (see `is_large`).
LARGE_REQUEST_CHARS = 64 * 1024
EXACT_WORDS_CHARS = 16_384
WORD_SAMPLES = 4
WORD_SAMPLE_CHARS = 4_096
WINDOW_CHARS = 4_096

# Fenced blocks, or lines that look like code in the common languages.
_CODE_PATTERN = re.compile(
    r"```|^\s*(def|class|import|from \S+ import|function|const|let|var|public|#include|SELECT)\b"
    r"|[;{}]\s*$",
    re.MULTILINE,
)


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
        prompt_tokens=estimate_prompt_tokens(request.system, (m.content for m in request.messages)),
        has_code=bool(_CODE_PATTERN.search(searched)),
        step_type=request.hints.step_type,
        labels=request.hints.labels,
        word_count_estimated=estimated,
    )


def is_large(request: RouteRequest) -> bool:
    """Whether the request's text (system prompt and every message) passes LARGE_REQUEST_CHARS:
    then each step that reads all of it is worth a separate turn of the event loop."""
    size = len(request.system)
    for message in request.messages:
        size += len(message.content)
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
