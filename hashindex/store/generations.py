"""Commits to a living index: one writer at a time, each change one new generation.

A writer holds `write.lock` (lock.py) for as long as it changes the index. A commit:

1. the change's new files (a segment, deletion files) are written where nothing refers to them,
   given the user's umask and fsynced with their folders;
2. the new manifest is written to manifest.json.next and fsynced;
3. one rename puts it in manifest.json's place, and the index folder is fsynced.

Before step 3 the index is the old generation, after it the new: a reader reads one manifest or
the other, whole. Files the new generation no longer uses are then removed. A reader that
already opened the old generation holds every file of it open or mapped (HashIndex pins them at
open), and an unlinked file lives on for whoever holds it; a reader caught between reading the
old manifest and opening its files sees the manifest change and opens again (HashIndex.open).
The next writer removes whatever a writer that died before step 3 left behind.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from hashindex.faults import fault_point
from hashindex.store.layout import (
    LOCK_FILE,
    MANIFEST_FILE,
    NEXT_MANIFEST_FILE,
    SEGMENTS_DIR,
)
from hashindex.store.manifest import (
    IndexManifest,
    file_checksums,
    manifest_bytes,
    sha256_file,
)
from hashindex.store.publish import (
    current_umask,
    fsync_dir,
    human_bytes,
    path_error,
    seal_file,
    seal_tree,
)

log = logging.getLogger("hashindex")


def commit(root: Path, manifest: IndexManifest, new_folders: list[str],
           published=None) -> None:
    """Publish `manifest` as the next generation: seal (umask modes, fsync) and hash the files
    of `new_folders` and the new files it lists with no checksum yet (None), write it beside
    the current one, rename it into place; then remove what no generation uses any more.
    `manifest.files` must list every other file it uses. `published` is called the moment the
    rename has made the new generation current."""
    root = Path(root)
    for folder in new_folders:
        seal_tree(root / folder)
        fsync_dir((root / folder).parent)
    for folder in new_folders:
        for relative, entry in file_checksums(root, folder).items():
            manifest.files[relative] = entry
    for relative, entry in list(manifest.files.items()):
        if entry is None:  # a new file outside the new folders (a deletion file)
            path = root / relative
            seal_tree_file(path)
            manifest.files[relative] = {"sha256": sha256_file(path),
                                        "bytes": path.stat().st_size}
    next_path = root / NEXT_MANIFEST_FILE
    try:
        with open(next_path, "wb") as handle:
            handle.write(manifest_bytes(manifest))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(next_path, 0o666 & ~current_umask())
        fault_point("commit")
        os.replace(next_path, root / MANIFEST_FILE)
    except OSError as error:
        raise path_error(error, f"index {root}") from None
    if published is not None:  # from here on the new files are the index's: keep them
        published()
    fsync_dir(root)
    fault_point("after-commit")
    try:  # best effort: what is left is removed by the next writer
        collect_garbage(root, manifest)
    except OSError as error:
        log.warning("could not remove files no generation uses in %s (%s); the next writer "
                    "will", root, error)


def seal_tree_file(path: Path) -> None:
    seal_file(path, current_umask())
    fsync_dir(path.parent)


def collect_garbage(root: Path, manifest: IndexManifest, leftovers: bool = False) -> int:
    """Remove every file under the index that `manifest` does not use, then empty folders;
    returns the bytes removed. `leftovers`: they were left by a writer that died (said so)."""
    root = Path(root)
    keep = set(manifest.files) | {MANIFEST_FILE, LOCK_FILE}
    removed = count = 0
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(folder) / name
            if path.relative_to(root).as_posix() not in keep:
                try:
                    size = path.stat().st_size
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed += size
                count += 1
        if Path(folder) != root and Path(folder) != root / SEGMENTS_DIR:
            try:
                os.rmdir(folder)  # only when empty
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
    if count and leftovers:
        log.info("removed %d files (%s) left in %s by a writer that died", count,
                 human_bytes(removed), root)
    if count:
        fsync_dir(root)
    return removed
