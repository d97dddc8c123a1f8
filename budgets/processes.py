"""Which process took a hold, and whether it has certainly stopped: how a SQLite ledger shared
by processes on one machine gives back the holds of a process that crashed."""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessId:
    """Which process took a hold, stored as `<host>:<pid>:<start>` in `holds.owner`.

    `host` is the host name and the PID namespace (`vm/4026531836`): PIDs mean nothing outside
    their namespace, so two containers with one host name sharing a file do not judge each
    other's processes. `start` is the kernel boot id and the process's start time in clock
    ticks since boot (`/proc/<pid>/stat`, field 22), which no other process on this machine,
    before or after a reboot, can share: a recycled PID does not keep a dead owner's holds.
    It is empty where /proc is missing; then only the PID is checked.
    """

    host: str
    pid: int
    start: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}"

    @classmethod
    def parse(cls, text: str) -> ProcessId | None:
        """The owner stored in `text`, or None when it is not one (e.g. '' from version 1)."""
        host, _, rest = text.partition(":")
        pid, _, start = rest.partition(":")
        if not host or not pid.isdigit() or int(pid) <= 0:
            return None
        return cls(host, int(pid), start)


def this_process() -> ProcessId:
    """The calling process's identity; looked up again after a fork (the PID changes)."""
    return _identity(os.getpid())


@functools.cache
def _identity(pid: int) -> ProcessId:
    namespace = _read_link("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    host = f"{socket.gethostname()}/{namespace}" if namespace else socket.gethostname()
    seen = process_status(pid)
    return ProcessId(host.replace(":", "_"), pid, seen[1] if seen else "")


def process_status(pid: int) -> tuple[str, str] | None:
    """(state letter, `<boot id>.<start ticks>`) of a process, from /proc; None when that
    cannot be read (no /proc, no such process, or one hidden from us by `hidepid`)."""
    stat = _read_text(f"/proc/{pid}/stat")
    boot_id = _read_text("/proc/sys/kernel/random/boot_id").strip()
    # The command name (field 2) is in parentheses and may hold spaces and parentheses itself;
    # the fields after the last ')' start with field 3, the state; field 22 is the start time.
    fields = stat.rpartition(")")[2].split()
    if not boot_id or len(fields) < 20:
        return None
    return fields[0], f"{boot_id}.{fields[19]}"


def is_gone(owner: ProcessId, me: ProcessId) -> bool:
    """True only when `owner` has certainly stopped: a process of this host and PID namespace
    whose PID is free, is a zombie waiting to be reaped, or now belongs to a later process.
    Whatever cannot be checked counts as running."""
    if owner.host != me.host:
        return False
    if owner.pid == me.pid:
        return owner.start != me.start  # our PID: a process before us, unless it is us
    try:
        os.kill(owner.pid, 0)  # signal 0 sends nothing: it only asks whether the PID exists
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, under another user
    seen = process_status(owner.pid)
    if seen is None:
        return False
    state, start = seen
    if state in ("Z", "X"):
        return True  # killed, not yet reaped by its parent
    return bool(owner.start) and start != owner.start


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


def _read_link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""
