"""An index's own paths: relative, normalised, inside the index, and reached without a symbolic
link, so that neither a reader nor a writer ever touches a file outside it. The index path
itself may be a link (a blue/green deploy swaps one); nothing under it may be.

Everything else found in an index folder is not the index's: `foreign_paths` lists it for
`info` and `verify`, and no writer removes it.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from hashindex.errors import HashIndexError

SEGMENT_NAME = re.compile(r"seg-\d{6}")


def check_relative(relative, where: str) -> str:
    """`relative` if it is a normalised path inside the index, else a one-line error naming
    `where` it was found."""
    if (not isinstance(relative, str) or relative in ("", ".") or "\0" in relative
            or relative.startswith("/") or posixpath.normpath(relative) != relative
            or relative.split("/")[0] == ".."):
        raise HashIndexError(f"{where} names {relative!r}, which is not a path inside the index "
                             "(an index refers only to its own files); rebuild the index")
    return relative


def link_error(path: Path) -> HashIndexError:
    return HashIndexError(f"{path} is a symbolic link; hashindex does not follow links inside an "
                          "index (they could make it read or write outside it): replace the "
                          "link with the file or folder itself")


def check_no_links(root: Path, relative: str, checked: set[str] | None = None
                   ) -> os.stat_result:
    """lstat every component of `relative` under `root`: a link is an error, a missing file
    too; returns the last one's stat. `checked` remembers folders already seen."""
    parts = relative.split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        last = depth == len(parts)
        if not last and checked is not None and prefix in checked:
            continue
        path = root / prefix
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            raise HashIndexError(f"index file {path} is missing; rebuild the index") from None
        if stat.S_ISLNK(found.st_mode):
            raise link_error(path)
        if not last:
            if not stat.S_ISDIR(found.st_mode):
                raise HashIndexError(f"{path} is not a folder; rebuild the index")
            if checked is not None:
                checked.add(prefix)
    return found


def check_index_paths(root: Path, manifest, where: str) -> None:
    """Every path the manifest names is inside the index, and every file a segment reads is
    among the manifest's checksummed files."""
    files = manifest.files
    if not isinstance(files, dict):
        raise HashIndexError(f"{where} has no file list; rebuild the index")
    for relative in files:
        check_relative(relative, where)
    for segment in manifest.segments:
        if segment.folder or not manifest.legacy:
            check_relative(segment.folder, where)
        used = [shard.get("file") if isinstance(shard, dict) else shard
                for shard in segment.shards]
        if segment.deletions is not None:
            used.append(segment.deletions)
        for relative in used:
            check_relative(relative, where)
            if relative not in files:
                raise HashIndexError(f"{where} names {relative!r} without its checksum; "
                                     "rebuild the index")


def ancestors(relative: str) -> Iterable[str]:
    parts = relative.split("/")
    return ("/".join(parts[:depth]) for depth in range(1, len(parts)))


def foreign_paths(root: Path, ours: Iterable[str], whole: Iterable[str] = ()) -> list[str]:
    """Paths under `root` that are not the index's: neither one of `ours` (files) nor one of
    `whole` (folders that are the index's with all they hold), nor a folder on the way to
    them. A link is always foreign. Foreign folders are listed, not entered."""
    ours, whole = set(ours), set(whole)
    on_the_way = {folder for path in ours | whole for folder in ancestors(path)}
    found: list[str] = []

    def walk(folder: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if relative in ours or relative in whole:
                continue
            if relative in on_the_way and entry.is_dir(follow_symlinks=False):
                walk(Path(entry.path), relative + "/")
            else:
                found.append(relative + ("/" if entry.is_dir(follow_symlinks=False) else ""))

    walk(Path(root), "")
    return found
