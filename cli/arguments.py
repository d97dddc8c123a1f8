"""The flags the `fareway` client commands share, and the argument types of every command.

Each type turns one flag's text into its value or refuses it with a message that says what is
valid; argparse prints that as a usage error (`fareway chat: error: argument --max-tokens:
...`) and exits 2, instead of the value failing later with a traceback.

Money is never a float: USD amounts become whole micro-USD through `Decimal`, exactly as the
configuration file's caps do, and an amount finer than one micro-USD is refused rather than
rounded (0.0000001 would otherwise become a $0 cap, which blocks all spend).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from decimal import Decimal, InvalidOperation

import grpc

from fareway.budgets.pricing import usd_to_micros
from fareway.client import DEFAULT_TARGET, Client, Tool

DEMO_KEY = "fareway-demo-key"
MAX_MICROS = 2**63 - 1  # the API carries micro-USD as int64
MAX_USD = Decimal(MAX_MICROS).scaleb(-6)
# (flag, environment variable, help) of the files that make a connection TLS or mutual TLS.
TLS_FILE_OPTIONS = (
    ("--ca-file", "FAREWAY_CA_FILE", "connect over TLS, trusting the CA certificates in this file"),
    (
        "--cert-file",
        "FAREWAY_CERT_FILE",
        "client certificate chain for mutual TLS, with --key-file",
    ),
    ("--key-file", "FAREWAY_KEY_FILE", "private key of --cert-file"),
)


def add_connection_options(
    parser: argparse.ArgumentParser, default_timeout_s: float | None = None
) -> None:
    """--target, --api-key and --timeout, read by `connect`."""
    parser.add_argument(
        "--target",
        metavar="HOST:PORT",
        default=os.environ.get("FAREWAY_TARGET", DEFAULT_TARGET),
        help="server address (env FAREWAY_TARGET; default: %(default)s)",
    )
    # Not %(default)s: when FAREWAY_API_KEY is set, help would print the secret.
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        default=os.environ.get("FAREWAY_API_KEY", DEMO_KEY),
        help=f"API key, sent as 'authorization: Bearer KEY' (env FAREWAY_API_KEY; default: "
        f"the public demo key {DEMO_KEY})",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS, trusting the system's CA certificates (default: plaintext)",
    )
    for flag, variable, what in TLS_FILE_OPTIONS:
        parser.add_argument(
            flag,
            metavar="PEM",
            default=os.environ.get(variable) or None,
            help=f"{what} (env {variable}; default: none)",
        )
    none = "none" if default_timeout_s is None else f"{default_timeout_s:g}"
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_seconds,
        default=default_timeout_s,
        help=f"deadline of each call in seconds, above 0 (default: {none})",
    )


def connect(args: argparse.Namespace) -> Client:
    """The client the connection flags describe."""
    return Client(args.target, args.api_key, timeout_s=args.timeout, credentials=credentials(args))


def credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    """TLS credentials from --ca-file, --tls, --cert-file and --key-file; None for plaintext.
    A file that cannot be read is a StartupError-like one-line failure (OSError names it)."""
    if (args.cert_file is None) != (args.key_file is None):
        raise CommandError("--cert-file and --key-file go together (mutual TLS needs both)")
    if args.ca_file is None and not args.tls and args.cert_file is None:
        return None
    return grpc.ssl_channel_credentials(
        _read(args.ca_file, "--ca-file"),
        _read(args.key_file, "--key-file"),
        _read(args.cert_file, "--cert-file"),
    )


class CommandError(Exception):
    """A command's flags cannot be acted on; the message says which and why."""


def _read(path: str | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise CommandError(f"{flag} {path}: {error.strerror}") from error


def positive_int(text: str) -> int:
    """A whole number of 1 or more (`--max-tokens`)."""
    number = _int(text)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return number


def non_negative_int(text: str) -> int:
    """A whole number of 0 or more (`--latency-target-ms`, where 0 means none)."""
    number = _int(text)
    if number is None or number < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, got {text!r}")
    return number


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (0: any free port)."""
    number = _int(text)
    if number is None or not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return number


def positive_seconds(text: str) -> float:
    """A finite number of seconds greater than 0 (`--timeout`)."""
    seconds = _float(text)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return seconds


def fraction(text: str) -> float:
    """A fraction from 0 to 1 (`--soft`)."""
    value = _float(text)
    if value is None or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction from 0 to 1 (0.8 means 80 %), got {text!r}"
        )
    return value


def usd_micros(text: str) -> int:
    """An amount of USD, 0 or more with at most 6 decimals, as whole micro-USD."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(
            f"expected an amount of USD, 0 or more (e.g. 5 or 0.25), got {text!r}"
        )
    if amount > MAX_USD:
        raise argparse.ArgumentTypeError(f"{text} USD is too large: at most {MAX_USD}")
    try:
        return usd_to_micros(amount)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text} USD is finer than one micro-USD: give at most 6 decimals"
        ) from None


def tool_file(path: str) -> list[Tool]:
    """The tools of a JSON file (`--tool`): a list of `{"name", "description", "input_schema"}`
    objects, or of OpenAI's `{"type": "function", "function": {...}}` ones (both may mix)."""
    try:
        with open(path, encoding="utf-8") as file:
            definitions = json.load(file)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{path}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise argparse.ArgumentTypeError(f"{path} is not JSON: {error}") from None
    if not isinstance(definitions, list) or not definitions:
        raise argparse.ArgumentTypeError(
            f'{path}: expected a non-empty JSON list of tools, each {{"name", "description", '
            f'"input_schema"}} or {{"type": "function", "function": {{...}}}}'
        )
    return [_tool(path, i, definition) for i, definition in enumerate(definitions)]


def _tool(path: str, index: int, definition: object) -> Tool:
    if not isinstance(definition, dict):
        raise argparse.ArgumentTypeError(f"{path}: tool {index} is not a JSON object")
    try:
        return Tool.from_mapping(definition)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{path}: tool {index}: {error}") from None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
