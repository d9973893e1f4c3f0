"""The one-writer lock of an index (INDEX/write.lock): every change to a living index, and a
rebuild that replaces one, holds it.

flock, taken without waiting: a second writer gets a one-line error naming the first one's pid.
The kernel drops the lock when its process dies, kill -9 included, so a lock file that still
names a pid but that nobody holds was left by a writer that died: it is taken over, and said so.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.store.layout import LOCK_FILE

log = logging.getLogger("hashindex")


class WriterBusy(HashIndexError):
    """Another writer holds the lock (a service answers 409)."""


class WriterLock:
    """The index's one-writer lock (flock on INDEX/write.lock), taken without waiting: a second
    writer gets a one-line error naming the first one's pid."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None
        self.recovered_pid: int | None = None  # a dead writer's, whose lock was taken over

    def __enter__(self) -> WriterLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            from hashindex.store.publish import path_error

            raise path_error(error, f"index {self.root}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise WriterBusy(f"index {self.root} is being changed by another writer{who}; "
                                 "wait for it to finish, then run again") from None
        self.recovered_pid = read_pid(fd)  # a pid here with the lock free: its writer died
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        if self.recovered_pid is not None:
            log.info("took over the lock of %s left by a writer that died (pid %d)",
                     self.root, self.recovered_pid)
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # released cleanly: no pid left to report
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
