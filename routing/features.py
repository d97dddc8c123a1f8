"""Request features: the measurable facts about a request that strategies decide on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fareway.routing.request import RouteRequest
from fareway.routing.tokens import estimate_prompt_tokens, estimate_tokens

# Fenced blocks, or lines that look like code in the common languages.
_CODE_PATTERN = re.compile(
    r"```|^\s*(def|class|import|from \S+ import|function|const|let|var|public|#include|SELECT)\b"
    r"|[;{}]\s*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Features:
    """What rules and strategies look at. `query` is the last user turn."""

    query: str
    query_lower: str
    word_count: int
    query_tokens: int
    prompt_tokens: int
    has_code: bool
    step_type: str
    labels: Mapping[str, str]


def extract_features(request: RouteRequest) -> Features:
    """Measure a request once, so that every strategy and constraint sees the same numbers."""
    query = request.query
    return Features(
        query=query,
        query_lower=query.lower(),
        word_count=len(query.split()),
        query_tokens=estimate_tokens(query),
        prompt_tokens=estimate_prompt_tokens(request.system, (m.content for m in request.messages)),
        has_code=bool(_CODE_PATTERN.search(query)),
        step_type=request.hints.step_type,
        labels=request.hints.labels,
    )
