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
import stat
import time
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.store.fsutil import path_error
from hashindex.store.layout import LOCK_FILE

log = logging.getLogger("hashindex")


class WriterBusy(HashIndexError):
    """Another writer holds the lock (a service answers 409)."""


class WriterLock:
    """The index's one-writer lock (flock on INDEX/write.lock), taken without waiting: a second
    writer gets a one-line error naming the first one's pid."""

    def __init__(self, root: Path, wait_seconds: float = 0.0):
        self.root = Path(root)
        self.wait_seconds = wait_seconds  # how long to wait for another writer (0: not at all)
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None
        self.recovered_pid: int | None = None  # a dead writer's, whose lock was taken over

    def __enter__(self) -> WriterLock:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            fd = self.open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_pid(fd)
                os.close(fd)
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                who = f" (pid {holder})" if holder else ""
                raise WriterBusy(f"index {self.root} is being changed by another writer{who}; "
                                 "wait for it to finish, then run again") from None
            if self.still_there(fd):
                break
            os.close(fd)  # a rebuild swapped the folder while we waited: lock the new one
        self.recovered_pid = read_pid(fd)  # a pid here with the lock free: its writer died
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        if self.recovered_pid is not None:
            log.info("took over the lock of %s left by a writer that died (pid %d)",
                     self.root, self.recovered_pid)
        return self

    def open(self) -> int:
        """The lock file, never through a symbolic link (it would truncate the link's
        target), and only a regular file."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                         0o666)
        except OSError as error:
            raise path_error(error, f"index {self.root}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise HashIndexError(f"{self.path} is not a regular file; move it out of the index "
                                 "and run again")
        return fd

    def still_there(self, fd: int) -> bool:
        """The locked file is the one at the path (not one a rebuild has moved away)."""
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # released cleanly: no pid left to report
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
