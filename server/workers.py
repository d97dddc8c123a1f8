"""`fareway serve --workers N`: N server processes on one port, so one host's cores all serve.

One fareway process runs on one core (its event loop, and the GIL around it). To use the
others, a parent process starts N workers, each a whole `fareway serve` of its own (the same
interpreter and command line, plus the hidden `--worker` flag) that listens with SO_REUSEPORT:
the kernel spreads incoming connections among them. They share nothing in memory, so budgets
must live in a ledger that several processes share: SQLite (one file; every write is a
`BEGIN IMMEDIATE` transaction and seeding is idempotent, so workers that start together are
safe) or Redis. The `memory` ledger is refused: each worker would keep budgets of its own and a
tenant could spend its cap N times over. Admission control (`server.max_streams`) is per
worker, so the process bound multiplies by N.

The parent is deliberately small and synchronous (no event loop, no threads): it checks what
would make every worker fail the same way (the configuration, the ledger type, the demo-keys
guard, the port), starts the workers, and then only waits for them:

- SIGINT and SIGTERM are forwarded (each worker drains gracefully), SIGHUP too (each worker
  re-reads the configuration file).
- When a worker exits while nothing asked it to (a crash, a kill, a failure to start), the
  parent logs which worker died and how, stops the others with SIGTERM and exits 1: a
  deployment with a worker missing is not the one that was configured, and the supervisor
  above (systemd, Kubernetes) should restart it whole.
- The parent exits once every worker has; 0 when all stopped cleanly after a stop signal.

The port: the parent first binds it without SO_REUSEPORT, so a port already in use (by a
fareway with workers too) is refused instead of shared by accident, and so port 0 becomes one
free port for every worker. It then holds it bound (not listening) with SO_REUSEPORT until the
workers are gone, so that nothing else takes the port between the check and the workers' own
binds. On Linux each worker also gets SIGTERM if the parent dies, so none outlives it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from types import FrameType

from fareway.config.schema import FarewayConfig
from fareway.core.errors import StartupError

log = logging.getLogger(__name__)

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOPPING = (signal.SIGINT, signal.SIGTERM)
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent exits


def check_workers(config: FarewayConfig, workers: int) -> None:
    """StartupError when `workers` processes cannot share what `config` describes."""
    if workers > 1 and config.ledger.type == "memory":
        raise StartupError(
            f"--workers {workers} needs a shared ledger (ledger.type sqlite or redis); the "
            "memory ledger would keep each worker's budgets apart"
        )


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: a free port) with SO_REUSEPORT, not listening,
    which the workers can share the port with; StartupError when the port is already in use,
    even by processes that would share it."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise StartupError(f"cannot resolve {host}: {error.strerror or error}") from error
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:  # without SO_REUSEPORT: must be free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = error.strerror or str(error)
            raise StartupError(
                f"cannot listen on {_address(host, port)}: {reason[:1].lower()}{reason[1:]}"
            ) from error
        chosen = probe.getsockname()[1]
    reserved = socket.socket(family, kind, proto)
    try:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind((address[0], chosen, *address[2:]))
    except OSError as error:
        reserved.close()
        reason = error.strerror or str(error)
        raise StartupError(f"cannot listen on {_address(host, chosen)}: {reason}") from error
    return reserved


def _address(host: str, port: int) -> str:
    bare = host.strip("[]")
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


@dataclass
class Worker:
    """One worker process, numbered from 1 for the log."""

    number: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Supervisor:
    """Starts `count` workers running `command` and waits for them (see the module doc)."""

    command: Sequence[str]
    count: int
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False
    failed: bool = False

    def run(self) -> int:
        """Start the workers, forward signals until they have all exited; the exit status."""
        previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED}
        try:
            for number in range(1, self.count + 1):
                if self.stopping:  # a stop signal or a dead worker during start-up
                    break
                process = subprocess.Popen(
                    self.command, preexec_fn=functools.partial(_die_with_parent, os.getpid())
                )
                self.workers.append(Worker(number, process))
            log.info(
                "fareway serving with %d workers, pids %s (parent pid %d)",
                len(self.workers),
                ", ".join(str(worker.pid) for worker in self.workers),
                os.getpid(),
            )
            self._wait_for_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self.failed else 0

    def _wait_for_all(self) -> None:
        running = list(self.workers)
        while running:
            # Block until some child exits, leaving it to Popen to reap (WNOWAIT); signals
            # are handled meanwhile (the call is retried after each, PEP 475).
            with suppress(ChildProcessError):  # a signal handler's poll reaped the last one
                os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            for worker in [w for w in running if w.process.poll() is not None]:
                running.remove(worker)
                self._exited(worker)

    def _exited(self, worker: Worker) -> None:
        status = worker.process.returncode
        how = _how(status)
        if self.stopping:
            log.info("worker %d (pid %d) %s", worker.number, worker.pid, how)
            if status != 0:
                self.failed = True
            return
        log.error(
            "worker %d (pid %d) %s unexpectedly; stopping the other workers",
            worker.number,
            worker.pid,
            how,
        )
        self.failed = True
        self._signal_all(signal.SIGTERM)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if signum in STOPPING and not self.stopping:
            log.info("stopping %d workers: %s", self.count, signal.Signals(signum).name)
        self._signal_all(signum)

    def _signal_all(self, signum: int) -> None:
        if signum in STOPPING:
            self.stopping = True
        for worker in self.workers:
            if worker.process.returncode is None:
                with suppress(ProcessLookupError):  # exited just now; waitid reports it
                    worker.process.send_signal(signum)


def _how(status: int) -> str:
    """How a worker ended, from Popen's returncode (negative: the signal that killed it)."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


def _die_with_parent(parent: int) -> None:
    """In the child before it runs: on Linux, get SIGTERM when the parent exits, so a killed
    parent leaves no worker serving the port on its own."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
