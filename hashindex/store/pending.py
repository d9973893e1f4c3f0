"""writer.json: the record a writer keeps while it changes a living index, so that only what a
writer made is ever removed.

Before a writer creates a path in the index (a segment folder, a deletion file, the next
manifest) it names it here, with itself (owner.py: host, pid, start time); before the rename
that commits, it names the files the new generation no longer uses. Once a change is over
(committed or failed) `finish` removes the named paths that the current manifest does not
use, and the record. A writer that dies leaves the record: the next one removes the same
paths, when the record's process is gone, and says exactly what it removed. A path never
named here is never removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.store.fsutil import folder_bytes, fsync_dir, human_bytes, publish, write_new_file
from hashindex.store.layout import (
    NEXT_PENDING_FILE,
    PENDING_FILE,
    SEGMENTS_DIR,
)
from hashindex.store.owner import Owner
from hashindex.store.paths import SEGMENT_NAME, ancestors, check_relative, link_error

log = logging.getLogger("hashindex")


class PendingChange:
    """The current writer's record of the change it is making (see the module's docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.owner = Owner.current()
        self.created: list[str] = []  # in the order they were made
        self.retired: list[str] = []

    def declare(self, relative: str) -> Path:
        """Name a path before creating it; returns its full path."""
        self.created.append(relative)
        self.save()
        return self.root / relative

    def retire(self, relatives) -> None:
        """Name the files a commit is about to stop using, before its rename."""
        self.retired = sorted(relatives)
        self.save()

    def save(self) -> None:
        data = {"owner": self.owner.to_dict(), "created": self.created, "retired": self.retired}
        write_new_file(self.root / NEXT_PENDING_FILE, json.dumps(data, indent=1).encode(),
                       replace=True)
        publish(self.root / NEXT_PENDING_FILE, self.root / PENDING_FILE)

    def finish(self, in_use: set[str]) -> list[tuple[str, int]]:
        """Remove the named paths that `in_use` (the current manifest's files) does not hold,
        then the record."""
        if not (self.created or self.retired):
            return []
        removed = remove_unused(self.root, self.created, self.retired, in_use)
        clear(self.root)
        self.created, self.retired = [], []
        return removed


def read_record(root: Path) -> dict | None:
    """The record a writer left, None when there is none."""
    path = Path(root) / PENDING_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        if os.path.islink(path):
            raise link_error(path) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    owner = Owner.from_dict(data.get("owner")) if isinstance(data, dict) else None
    if owner is None or not all(isinstance(data.get(key), list) for key in ("created", "retired")):
        raise HashIndexError(f"{path}, the record of an unfinished change, is unreadable; "
                             "move it out of the index and run again (the paths it named "
                             "are then left for you to remove)")
    return {**data, "owner": owner}


def recover(root: Path, in_use: set[str]) -> list[tuple[str, int]]:
    """Remove what the change recorded in writer.json left, when its writer is gone (or was
    this process); returns the removed paths and their bytes, and says what they were."""
    root = Path(root)
    removed = remove_half_saved(root)
    record = read_record(root)
    owner: Owner | None = record["owner"] if record else None
    if record is not None:
        if not (owner.is_me() or owner.is_gone()):
            raise HashIndexError(
                f"index {root} has an unfinished change by {owner.describe()}, which is still "
                f"running or ran on another host, so its files are left alone; if that writer "
                f"is gone, remove {root / PENDING_FILE} and the paths it lists, then run again")
        created = [p for p in record["created"] if is_relative(p)]
        retired = [p for p in record["retired"] if is_relative(p)]
        removed += remove_unused(root, created, retired, in_use)
        clear(root)
    if removed and not (owner and owner.is_me()):
        total = sum(size for _, size in removed)
        shown = ", ".join(path for path, _ in removed[:5])
        more = f" and {len(removed) - 5} more" if len(removed) > 5 else ""
        who = f" ({owner.describe()})" if owner else ""
        log.info("removed %d paths (%s) left in %s by a writer that died%s: %s%s",
                 len(removed), human_bytes(total), root, who, shown, more)
    return removed


def remove_half_saved(root: Path) -> list[tuple[str, int]]:
    """writer.json.next, a record a writer died saving (only writers make it, under the lock)."""
    try:
        found = os.lstat(root / NEXT_PENDING_FILE)
    except FileNotFoundError:
        return []
    if not stat.S_ISREG(found.st_mode):
        return []
    (root / NEXT_PENDING_FILE).unlink()
    return [(NEXT_PENDING_FILE, found.st_size)]


def is_relative(path) -> bool:
    try:
        check_relative(path, PENDING_FILE)
    except HashIndexError:
        return False
    return True


def remove_unused(root: Path, created: list[str], retired: list[str], in_use: set[str]
                  ) -> list[tuple[str, int]]:
    """Remove each of the named paths that no file in use is, or lies under: a regular file
    unlinked, a segment folder with what it holds, any other folder only when empty; never a
    link or a path reached through one. Emptied folders of retired files go too."""
    keep = set(in_use) | {folder for path in in_use for folder in ancestors(path)}
    removed: list[tuple[str, int]] = []
    emptied: set[str] = set()
    for relative in list(reversed(created)) + list(retired):
        if relative in keep or not reachable(root, relative):
            continue
        path = root / relative
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(found.st_mode):
            path.unlink()
            removed.append((relative, found.st_size))
        elif stat.S_ISDIR(found.st_mode):
            if is_segment_folder(relative):
                size = folder_bytes(path)
                shutil.rmtree(path)
                removed.append((relative, size))
            elif remove_if_empty(path):
                removed.append((relative, 0))
        emptied.update(ancestors(relative))
    for folder in sorted(emptied, key=lambda f: -f.count("/")):
        if folder != SEGMENTS_DIR and folder not in keep and reachable(root, folder):
            remove_if_empty(root / folder)
    if removed:
        fsync_dir(root)
    return removed


def reachable(root: Path, relative: str) -> bool:
    """The path's folders are real folders (no link on the way)."""
    for folder in ancestors(relative):
        try:
            if not stat.S_ISDIR(os.lstat(root / folder).st_mode):
                return False
        except FileNotFoundError:
            return False
    return True


def is_segment_folder(relative: str) -> bool:
    parts = relative.split("/")
    return len(parts) == 2 and parts[0] == SEGMENTS_DIR and bool(SEGMENT_NAME.fullmatch(parts[1]))


def remove_if_empty(path: Path) -> bool:
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True


def clear(root: Path) -> None:
    try:
        (Path(root) / PENDING_FILE).unlink()
    except FileNotFoundError:
        return
    fsync_dir(Path(root))
