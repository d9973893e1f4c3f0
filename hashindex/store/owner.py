"""Who made a file: host, pid and the process's start time.

A writer records itself before it creates anything (a build in its staging folder's lock file,
a change to a living index in writer.json), so that a later writer removes what it left only
when it can tell that its maker is gone: the same host, and no process of that pid started at
that moment. A record from another host, or one that cannot be read, is never acted on.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat, field 22): with the
    pid it names one process, even after the pid is reused. None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # fields 3 onwards (the name may hold spaces)
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    process_start: int | None  # see process_start(); None where the platform cannot tell
    started: str  # wall-clock time, for people reading the record

    @classmethod
    def current(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()),
                   datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, data) -> Owner | None:
        """The record, or None when `data` is not one a hashindex writer wrote."""
        if not isinstance(data, dict):
            return None
        host, pid, start = data.get("host"), data.get("pid"), data.get("process_start")
        if not (isinstance(host, str) and host and type(pid) is int and pid > 0
                and (start is None or type(start) is int)):
            return None
        return cls(host, pid, start, str(data.get("started", "")))

    def to_dict(self) -> dict:
        return asdict(self)

    def is_me(self) -> bool:
        return (self.host == socket.gethostname() and self.pid == os.getpid()
                and self.process_start == process_start(os.getpid()))

    def is_gone(self) -> bool:
        """True only when this host can tell that the process has ended."""
        if self.host != socket.gethostname():
            return False
        if not pid_alive(self.pid):
            return True
        if self.process_start is None:
            return False
        running = process_start(self.pid)
        return running is not None and running != self.process_start  # the pid was reused

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host} (started {self.started})"
