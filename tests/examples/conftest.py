"""The server harness of tests/server, for the examples' tests."""

from __future__ import annotations

from tests.server.harness import serve

__all__ = ["serve"]
