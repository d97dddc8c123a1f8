"""`fareway serve`: load the configuration and run the server until SIGINT or SIGTERM.

When the server cannot start, the reason arrives as a `StartupError` (a `ConfigError` for the
configuration file) from the loader or from `fareway.server.app.serve`; `fareway.cli.main`
prints its message and exits non-zero, without a traceback unless --debug.

With `--workers N` above 1 this process serves nothing itself: it starts N copies of this
command with the hidden `--worker` flag (each shares the port through SO_REUSEPORT) and
supervises them (`fareway.server.workers`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING

from fareway.cli import arguments

if TYPE_CHECKING:
    from fareway.config.schema import FarewayConfig


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
    serve.add_argument(
        "--workers",
        type=arguments.positive_int,
        default=1,
        metavar="N",
        help="server processes sharing the port (SO_REUSEPORT), to use N cores; above 1 needs "
        "a shared ledger (sqlite or redis) and a parent process supervises them (default: 1, "
        "this process serves)",
    )
    # Set by the parent of --workers on each worker's command line: share the port.
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; raises StartupError when the server cannot start."""
    # Imported here: the client commands need neither the server nor its dependencies.
    from fareway.config.loader import load_config
    from fareway.server.app import serve

    configure_logging()
    config = load_config(args.config)
    if args.workers > 1:
        return supervise(args, config)
    asyncio.run(
        serve(
            config,
            os.environ,
            args.host,
            args.port,
            config_path=args.config,
            allow_demo_keys_on_network=args.allow_demo_keys_on_network,
            reuse_port=args.worker,
        )
    )
    return 0


def supervise(args: argparse.Namespace, config: FarewayConfig) -> int:
    """Run `args.workers` workers on one port until they have all exited; their exit status.
    What would fail every worker alike is refused here first, once."""
    from fareway.server.auth import KeyRing, guard_demo_keys
    from fareway.server.workers import Supervisor, check_workers, reserve_port

    check_workers(config, args.workers)
    host = args.host or config.server.host
    guard_demo_keys(
        KeyRing.from_config(config, os.environ),
        host,
        allow_on_network=args.allow_demo_keys_on_network,
    )
    port = config.server.port if args.port is None else args.port
    with reserve_port(host, port) as reserved:
        command = [sys.executable, "-m", "fareway.cli.main"]
        command += ["--debug"] if args.debug else []
        command += ["serve", "--worker", "--host", host, "--port", str(reserved.getsockname()[1])]
        command += ["--config", args.config] if args.config else []
        command += ["--allow-demo-keys-on-network"] if args.allow_demo_keys_on_network else []
        return Supervisor(command, args.workers).run()


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
