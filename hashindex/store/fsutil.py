"""File-system helpers every writer shares: modes and fsyncs before a publish, sizes for the
reports, and an OSError turned into the one-line error a user can act on."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from hashindex.errors import HashIndexError


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
