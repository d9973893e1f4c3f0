"""Publishing a finished index atomically, and never replacing what is not an index.

A build writes into a staging folder `OUT.tmp-XXXXXXXX` beside its target, guarded by the lock
file `OUT.tmp-XXXXXXXX.lock` that the building process holds (flock) for as long as it lives and
that names it (owner.py: host, pid, start time) before the folder exists. A later build removes
a staging folder only when its lock is one of these, free, and names a process of this host
that is gone: the leftovers of a build that died, kill -9 included. Anything else beside the
target, whatever its name, is left alone. The finished folder takes the old index's place
through fsutil.publish, the commit every on-disk change goes through: every file fsynced, one
atomic exchange of the two directory entries (renameat2 RENAME_EXCHANGE, Linux) so the index
path is never absent (where the exchange is unavailable two renames leave it absent for an
instant), then the parent folder fsynced.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.store.fsutil import folder_bytes, human_bytes, path_error, publish
from hashindex.store.layout import MANIFEST_FILE
from hashindex.store.lock import WriterLock
from hashindex.store.owner import Owner

log = logging.getLogger("hashindex")

LOCK_SUFFIX = ".lock"
# tempfile.mkstemp's names: a prefix, then 8 characters of this alphabet
STAGING_TAIL = re.compile(r"\.tmp-[a-z0-9_]{8}")
# A rebuild waits this long for a writer mid-commit in the index it replaces (adds and
# deletes take seconds), rather than throwing the finished build away.
PUBLISH_WAIT_SECONDS = 60.0


def not_an_index(path: Path) -> str | None:
    """Why the existing folder `path` is not a hashindex index, or holds something that is not
    the index's (None when it is one and holds nothing else)."""
    from hashindex.store.inventory import inventory

    manifest = path / MANIFEST_FILE
    if not manifest.is_file():
        return f"it has no {MANIFEST_FILE}"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return f"its {MANIFEST_FILE} is unreadable"
    if not (isinstance(data, dict) and "format_version" in data and "hashindex_version" in data):
        return f"its {MANIFEST_FILE} was not written by hashindex"
    files = data.get("files")
    found = inventory(path, files if isinstance(files, dict) else {})
    if found.foreign:
        return f"it also holds {found.describe_foreign()}"
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


def remove_stale(target: Path) -> list[tuple[Path, int]]:
    """Remove the staging folders and lock files of builds of `target` that died on this host;
    returns what was removed and its size. Only a folder named as a build names its staging
    folder, beside a lock file that such a build wrote and that no process holds, naming a
    process that is gone, is removed; nothing else is touched."""
    parent = target.parent
    if not parent.is_dir():
        return []
    removed = []
    for lock in sorted(parent.iterdir()):
        stem = lock.name.removesuffix(LOCK_SUFFIX)
        if not (lock.name.endswith(LOCK_SUFFIX) and stem.startswith(target.name)
                and STAGING_TAIL.fullmatch(stem[len(target.name):])):
            continue
        owner = dead_owner(lock)
        if owner is None:
            continue
        folder = parent / stem
        try:
            kind = os.lstat(folder).st_mode
        except FileNotFoundError:
            kind = None
        if kind is not None and not stat.S_ISDIR(kind):
            continue  # not a folder a build made: not ours
        size = folder_bytes(folder) if kind is not None else 0
        if kind is not None:
            shutil.rmtree(folder)
        lock.unlink()
        removed.append((folder, size))
        log.info("removed %s (%s) left by a build that died (%s)", folder, human_bytes(size),
                 owner.describe())
    return removed


def dead_owner(lock: Path) -> Owner | None:
    """The build that wrote `lock`, when no process holds it and that build is gone; None
    when it is alive, elsewhere, or the file is not a lock a build wrote."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.fstat(fd).st_size > 4096:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        try:
            owner = Owner.from_dict(json.loads(os.pread(fd, 4096, 0)))
        except ValueError:
            return None
        return owner if owner is not None and owner.is_gone() else None
    finally:
        os.close(fd)


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
        os.write(fd, json.dumps(Owner.current().to_dict()).encode())
        self._lock_fd, self._lock = fd, Path(lock)
        self.folder = Path(lock.removesuffix(LOCK_SUFFIX))
        os.mkdir(self.folder)  # 0777 less the umask: the published index is readable as usual
        return self.folder

    def publish(self) -> None:
        """Swap the finished folder into the target's place (fsutil.publish), then drop the
        old index."""
        folder, target = self.folder, self.target
        if target.exists():  # it was an index when the build began: is it still?
            reason = not_an_index(target)
            if reason:
                raise HashIndexError(f"--out {target} is no longer a hashindex index ({reason}); "
                                     "it was left as it is")
        # no writer may be mid-commit in the index this replaces (held for the swap alone)
        replaced_index = (target / MANIFEST_FILE).is_file()
        guard = WriterLock(target, wait_seconds=PUBLISH_WAIT_SECONDS) if replaced_index else None
        publish(folder, target, before="publish", after="after-exchange", guard=guard)
        self.folder = None

    def __exit__(self, kind, error, trace) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock = None
