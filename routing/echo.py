"""How an error quotes a value the caller sent: a short printable prefix, never the whole value.

A caller's string (a model, a tier, a tenant, a step type) can be megabytes long and hold
control characters. Errors travel in gRPC trailers, which a client refuses beyond a few KB, and
in one-line log records, so every place that echoes a caller's value goes through `echo`.
"""

from __future__ import annotations

# Long enough to recognise any real name; short enough that a handful fit in one status.
ECHO_CHARS = 64
ELLIPSIS = "…"


def echo(value: str, limit: int = ECHO_CHARS) -> str:
    """`value` as an error may quote it: at most `limit` characters, an ellipsis when it was
    cut, and characters that are not printable escaped (so a newline cannot split the line)."""
    prefix = value[:limit]
    if not prefix.isprintable():
        # repr of one character is its escape, quotes included: '\n' -> \n, '\x00' -> \x00.
        prefix = "".join(c if c.isprintable() else repr(c)[1:-1] for c in prefix)
    return prefix + ELLIPSIS if len(value) > limit else prefix
