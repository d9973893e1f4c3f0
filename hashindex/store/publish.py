"""Publishing a finished index atomically, and never replacing what is not an index.

A build writes into a staging folder `OUT.tmp-XXXX` beside its target, guarded by the lock file
`OUT.tmp-XXXX.lock` that the building process holds (flock) for as long as it lives. The kernel
drops that lock when the process dies, kill -9 included, so a later build tells a dead build's
leftovers from a live one's and removes them. The finished folder takes the old index's place
by one atomic exchange of the two directory entries (renameat2 RENAME_EXCHANGE, Linux), so the
index path is never absent; where the exchange is unavailable two renames leave it absent for
an instant. Every file is fsynced before the exchange, and the parent folder after it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.faults import fault_point
from hashindex.store.layout import MANIFEST_FILE, foreign_entries
from hashindex.store.lock import WriterLock

log = logging.getLogger("hashindex")

LOCK_SUFFIX = ".lock"
# A lock file is created, then flocked, then given its pid: an unlocked one without a pid that
# is younger than this may be a live build between those two steps.
FRESH_LOCK_SECONDS = 10.0
RENAME_EXCHANGE = 2
# A rebuild waits this long for a writer mid-commit in the index it replaces (adds and
# deletes take seconds), rather than throwing the finished build away.
PUBLISH_WAIT_SECONDS = 60.0


def path_error(error: OSError, what: str = "") -> HashIndexError:
    """An OSError as a one-line error naming the path (and the flag, `what`) and what to do."""
    path = error.filename or what
    prefix = f"{what}: " if what else ""
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return HashIndexError(f"{prefix}permission denied on {path}; choose a path you can use "
                              "or change its permissions")
    if error.errno == errno.ENOTDIR:
        return HashIndexError(f"{prefix}a parent of {path} is a file, not a folder; choose "
                              "another path")
    if error.errno == errno.ENOSPC:
        return HashIndexError(f"{prefix}no space left on the device holding {path}; free some "
                              "space and run again")
    return HashIndexError(f"{prefix}{error.strerror or error} ({path})")


def not_an_index(path: Path) -> str | None:
    """Why the existing folder `path` is not a hashindex index (None when it is one)."""
    manifest = path / MANIFEST_FILE
    if not manifest.is_file():
        return f"it has no {MANIFEST_FILE}"
    import json

    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return f"its {MANIFEST_FILE} is unreadable"
    if not (isinstance(data, dict) and "format_version" in data and "hashindex_version" in data):
        return f"its {MANIFEST_FILE} was not written by hashindex"
    foreign = foreign_entries(path)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        return f"it also holds {shown}"
    return None


def check_target(target: Path, overwrite: bool, inputs: Sequence[Path] = (),
                 shown: str | None = None) -> None:
    """Refuse an output path that would replace or contain something that is not an index
    (`shown`: the path as the user wrote it, for the message)."""
    resolved = target.resolve()
    named = f"--out {shown or target}"
    for special, what in ((Path.cwd(), "the current folder"), (Path.home(), "your home folder"),
                          (Path(resolved.anchor), "the root folder")):
        if resolved == special.resolve():
            raise HashIndexError(f"{named} is {what}; give the index a folder of its own, "
                                 "e.g. --out my-index")
    for source in inputs:
        source = source.resolve()
        if source == resolved or resolved in source.parents:
            raise HashIndexError(f"{named} contains the input {source}; choose a folder that "
                                 "does not hold your data")
        if source.is_dir() and source in resolved.parents:
            raise HashIndexError(f"{named} is inside the input folder {source}; choose a path "
                                 "outside it")
    if target.is_symlink():
        raise HashIndexError(f"{named} is a symbolic link; pass the folder it points to")
    if target.exists():
        if not target.is_dir():
            raise HashIndexError(f"{named} exists and is not a folder; choose another --out")
        reason = not_an_index(target)
        if reason:
            raise HashIndexError(f"{named} exists and is not a hashindex index ({reason}); "
                                 "--overwrite replaces only an index: choose another --out")
        if not overwrite:
            raise HashIndexError(f"{named} already exists; pass --overwrite to replace it")
    for parent in resolved.parents:
        if parent.exists():
            if not parent.is_dir():
                raise HashIndexError(f"{named}: {parent} is a file, not a folder; choose "
                                     "another --out")
            break


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def remove_stale(target: Path) -> list[tuple[Path, int]]:
    """Remove the staging folders and lock files of dead builds of `target`; returns what was
    removed and its size. A folder whose lock a live process holds is left alone."""
    parent = target.parent
    if not parent.is_dir():
        return []
    prefix = f"{target.name}.tmp-"
    stems = {p.name.removesuffix(LOCK_SUFFIX) for p in parent.iterdir()
             if p.name.startswith(prefix)}
    removed = []
    for stem in sorted(stems):
        folder, lock = parent / stem, parent / (stem + LOCK_SUFFIX)
        if lock.exists() and not lock_is_dead(lock):
            continue
        size = folder_bytes(folder) if folder.is_dir() else 0
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        lock.unlink(missing_ok=True)
        removed.append((folder, size))
        log.info("removed %s (%s) left by a build that died", folder, human_bytes(size))
    return removed


def lock_is_dead(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        empty = os.fstat(fd).st_size == 0
        young = time.time() - os.fstat(fd).st_mtime < FRESH_LOCK_SECONDS
        return not (empty and young)
    finally:
        os.close(fd)


def human_bytes(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def seal_tree(root: Path) -> None:
    """Give every file and folder under root the modes the user's umask gives new ones (some
    writers, safetensors and mkdtemp among them, create theirs private), and fsync them all:
    readable as the user expects and durable before anything is published."""
    mask = current_umask()
    for folder, _, files in os.walk(root):
        for name in files:
            seal_file(os.path.join(folder, name), mask)
        os.chmod(folder, 0o777 & ~mask)
        fsync_dir(Path(folder))


def seal_file(path, mask: int) -> None:
    """One file with the umask's mode, fsynced (its folder is the caller's to fsync)."""
    os.chmod(path, 0o666 & ~mask)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False where the platform cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    here = -100  # AT_FDCWD
    if renameat2(here, os.fsencode(a), here, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


class Staging:
    """The folder a build writes into, published by `publish()` or removed on failure.

    with Staging(target) as folder:
        ... write into folder ...
        staging.publish()
    """

    def __init__(self, target: Path, flag: str = "--out"):
        self.target = target
        self.flag = flag  # what a path error names (--out, --cache-dir, …)
        self.folder: Path | None = None
        self.removed: list[tuple[Path, int]] = []
        self._lock_fd: int | None = None
        self._lock: Path | None = None

    def __enter__(self) -> Path:
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.removed = remove_stale(self.target)
            fd, lock = tempfile.mkstemp(prefix=f"{self.target.name}.tmp-", suffix=LOCK_SUFFIX,
                                        dir=parent)
        except OSError as error:
            raise path_error(error, f"{self.flag} {self.target}") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd, self._lock = fd, Path(lock)
        self.folder = Path(lock.removesuffix(LOCK_SUFFIX))
        os.mkdir(self.folder)  # 0777 less the umask: the published index is readable as usual
        return self.folder

    def publish(self) -> None:
        """Swap the finished folder into the target's place, then drop the old index."""
        folder, target = self.folder, self.target
        if target.exists():  # it was an index when the build began: is it still?
            reason = not_an_index(target)
            if reason:
                raise HashIndexError(f"--out {target} is no longer a hashindex index ({reason}); "
                                     "it was left as it is")
        seal_tree(folder)
        fault_point("publish")
        # no writer may be mid-commit in the index this replaces
        replaced_index = (target / MANIFEST_FILE).is_file()
        with (WriterLock(target, wait_seconds=PUBLISH_WAIT_SECONDS) if replaced_index
              else contextlib.nullcontext()):
            self.swap(folder, target)
        self.folder = None

    @staticmethod
    def swap(folder: Path, target: Path) -> None:
        if target.exists() and exchange(folder, target):
            fsync_dir(target.parent)
            fault_point("after-exchange")
            shutil.rmtree(folder, ignore_errors=True)  # now the old index
        else:
            if target.exists():  # no atomic exchange here: rename the old one aside first
                old = Path(f"{folder}.old")
                os.replace(target, old)
                os.replace(folder, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(folder, target)
            fsync_dir(target.parent)

    def __exit__(self, kind, error, trace) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock = None
