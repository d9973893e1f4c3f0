"""File-system helpers every writer shares: the one way anything is published (`publish`: new
files sealed, one atomic rename, the parent fsynced), modes and fsyncs, sizes for the reports,
and an OSError turned into the one-line error a user can act on."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
from contextlib import AbstractContextManager
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.faults import fault_point

RENAME_EXCHANGE = 2  # renameat2's flag: swap two existing paths


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
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return HashIndexError(f"{prefix}no space left on the device holding {path}; free some "
                              "space and run again")
    if error.errno == errno.ELOOP:
        return HashIndexError(f"{prefix}{path} is a symbolic link, which hashindex does not "
                              "follow inside an index; replace it with the file or folder itself")
    return HashIndexError(f"{prefix}{error.strerror or error} ({path})")


def human_bytes(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (links not followed)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(new: Path, target: Path, *, before: str | None = None, after: str | None = None,
            guard: AbstractContextManager | None = None) -> None:
    """Put `new`, a file or a folder written beside `target` where nothing refers to it, in
    target's place: the one commit of every on-disk change (a build's or an export's staging
    folder, a generation's manifest, writer.json, a saved model folder).

    1. `new` is sealed: every file and folder under it gets the umask's modes and is fsynced
       (a folder's entries with it), so what the name will point to is on disk first;
    2. the crash point `before` (faults.py), then `guard` (a lock held for the rename alone, not
       for the sealing) is taken;
    3. one atomic rename: readers see the old target or the new one, whole;
    4. the parent folder is fsynced, so the rename survives a power cut; then the crash point
       `after`, and what was replaced is removed.

    Files and folders differ in step 3 only, and `new`'s kind decides: rename(2) replaces a
    file atomically but cannot replace a folder that holds anything, so a folder over an
    existing one is swapped with it (renameat2 RENAME_EXCHANGE, Linux) and the old one, now
    at `new`'s name, removed after `after`; a kill there leaves it for its owner's leftovers
    sweep (publish.remove_stale for a staging folder). Where the exchange is unavailable the
    old folder is renamed aside first, which leaves `target` absent for an instant."""
    is_folder = seal(new)
    if before:
        fault_point(before)
    with guard if guard is not None else contextlib.nullcontext():
        replaced = None
        if not is_folder or not os.path.lexists(target):
            os.replace(new, target)
        elif exchange(new, target):
            replaced = new  # the old target
        else:  # no atomic exchange here: rename the old one aside first
            replaced = Path(f"{new}.old")
            os.replace(target, replaced)
            os.replace(new, target)
        fsync_dir(Path(target).parent)
        if after:
            fault_point(after)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)


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


def seal(path: Path) -> bool:
    """A file, or a folder with everything under it, given the umask's modes and fsynced;
    True for a folder (never followed through a link)."""
    if stat.S_ISDIR(os.lstat(path).st_mode):
        seal_tree(path)
        return True
    seal_file(path, current_umask())
    return False


def seal_in_place(path: Path) -> None:
    """A new file or folder that a later rename publishes from where it lies (a segment, a
    deletion file, which the next manifest names) sealed as `publish` seals what it renames,
    and its entry in its folder fsynced too."""
    seal(path)
    fsync_dir(path.parent)


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
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, 0o666 & ~mask)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_file(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write `data` to a file created here (never through a symbolic link), fsynced. `replace`:
    a regular file already at `path` (a name only writers use) is overwritten, else it is an
    error."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
