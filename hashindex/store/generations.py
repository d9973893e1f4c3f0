"""Commits to a living index: one writer at a time, each change one new generation.

A writer holds `write.lock` (lock.py) for as long as it changes the index. A commit:

1. the change's new files (a segment, deletion files) are written where nothing refers to them,
   each named in writer.json before it is made (pending.py), given the user's umask and
   fsynced with their folders;
2. the new manifest is written to manifest.json.next and fsynced, and the files it no longer
   uses are named in writer.json;
3. one rename puts it in manifest.json's place, and the index folder is fsynced (fsutil.publish,
   the commit every on-disk change goes through, a build's first generation included).

Before step 3 the index is the old generation, after it the new: a reader reads one manifest or
the other, whole. Files the new generation no longer uses are then removed. A reader that
already opened the old generation holds every file of it open or mapped (HashIndex pins them at
open), and an unlinked file lives on for whoever holds it; a reader caught between reading the
old manifest and opening its files sees the manifest change and opens again (HashIndex.open).
A writer that dies anywhere leaves writer.json: the next writer removes the paths it names
that the current manifest does not use, and nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hashindex.store.fsutil import path_error, publish, seal_in_place, write_new_file
from hashindex.store.layout import MANIFEST_FILE, NEXT_MANIFEST_FILE
from hashindex.store.manifest import (
    IndexManifest,
    file_checksums,
    manifest_bytes,
    sha256_file,
)
from hashindex.store.pending import PendingChange

log = logging.getLogger("hashindex")


def commit(root: Path, manifest: IndexManifest, new_folders: list[str], pending: PendingChange,
           retired: set[str]) -> None:
    """Publish `manifest` as the next generation: seal (umask modes, fsync) and hash the files
    of `new_folders` and the new files it lists with no checksum yet (None), write it beside
    the current one, rename it into place; then remove the `retired` files (the current
    generation's, which the new one no longer uses). Every path the change created was named
    in `pending` before it was made; `retired` is named there before the rename, so a writer
    that dies anywhere leaves a record of exactly what to remove. `manifest.files` must list
    every other file it uses."""
    root = Path(root)
    try:
        for folder in new_folders:
            seal_in_place(root / folder)
        for folder in new_folders:
            for relative, entry in file_checksums(root, folder).items():
                manifest.files[relative] = entry
        for relative, entry in list(manifest.files.items()):
            if entry is None:  # a new file outside the new folders (a deletion file)
                path = root / relative
                seal_in_place(path)
                manifest.files[relative] = {"sha256": sha256_file(path),
                                            "bytes": path.stat().st_size}
        next_path = pending.declare(NEXT_MANIFEST_FILE)
        write_new_file(next_path, manifest_bytes(manifest), replace=True)
        pending.retire(set(retired) - set(manifest.files))
        publish(next_path, root / MANIFEST_FILE, before="commit", after="after-commit")
    except OSError as error:
        raise path_error(error, f"index {root}") from None
    try:  # best effort: what is left stays named in writer.json for the next writer
        pending.finish(set(manifest.files))
    except OSError as error:
        log.warning("could not remove files no generation uses in %s (%s); the next writer "
                    "will", root, error)
