"""`fareway serve`: load the configuration and run the server until SIGINT or SIGTERM.

When the server cannot start, the reason arrives as a `StartupError` (a `ConfigError` for the
configuration file) from the loader or from `fareway.server.app.serve`; `fareway.cli.main`
prints its message and exits non-zero, without a traceback unless --debug.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from fareway.cli import arguments


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`serve` under `commands`."""
    serve = commands.add_parser("serve", help="run the gRPC server", description=__doc__)
    serve.add_argument(
        "--config",
        metavar="FILE",
        help="YAML configuration file (default: the embedded config/default.yaml)",
    )
    serve.add_argument(
        "--host",
        help="address to listen on (default: the configuration's server.host; 127.0.0.1 in "
        "the embedded one)",
    )
    serve.add_argument(
        "--port",
        type=arguments.port,
        help="port to listen on, 0 to 65535, 0 = any free one (default: the configuration's "
        "server.port; 50051 in the embedded one)",
    )
    serve.add_argument(
        "--allow-demo-keys-on-network",
        action="store_true",
        help="serve a non-loopback address even though the public demo keys are accepted; for "
        "demos on a trusted network only",
    )
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; raises StartupError when the server cannot start."""
    # Imported here: the client commands need neither the server nor its dependencies.
    from fareway.config.loader import load_config
    from fareway.server.app import serve

    configure_logging()
    config = load_config(args.config)
    asyncio.run(
        serve(
            config,
            os.environ,
            args.host,
            args.port,
            config_path=args.config,
            allow_demo_keys_on_network=args.allow_demo_keys_on_network,
        )
    )
    return 0


QUIET_LOGGERS = ("httpx2",)
"""Libraries whose INFO lines are per upstream request ("HTTP Request: POST ... 200 OK"): a
line for every model call buries fareway's own log and costs CPU on the streaming path; their
warnings and errors still show."""


def configure_logging() -> None:
    """fareway's own INFO lines on stderr, the per-request chatter of QUIET_LOGGERS left out."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # basicConfig leaves a root that already has a handler as it is: the level still applies.
    logging.getLogger().setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
