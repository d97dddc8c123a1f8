"""`fareway serve`'s log: fareway's own INFO lines, without a line per upstream HTTP request."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from fareway.cli.serve import QUIET_LOGGERS, configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers[:], root.level = handlers, level
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restored_logging")
def test_the_http_clients_request_lines_are_left_out_but_its_warnings_kept() -> None:
    configure_logging()

    http = logging.getLogger("httpx2")
    assert not http.isEnabledFor(logging.INFO)  # "HTTP Request: POST ... 200 OK", per call
    assert http.isEnabledFor(logging.WARNING)
    assert logging.getLogger("fareway.server.app").isEnabledFor(logging.INFO)
