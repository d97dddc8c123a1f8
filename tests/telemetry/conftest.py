"""The server harness, and a process environment free of the developer's own OTEL_* variables
(the OpenTelemetry SDK reads them from os.environ, whatever a test passes in)."""

from __future__ import annotations

import os

import pytest

from tests.server.harness import serve

__all__ = ["clean_otel_environment", "serve"]


@pytest.fixture(autouse=True)
def clean_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
