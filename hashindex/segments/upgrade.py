"""Format 3 → 4 in place: an index built before segments gets its one segment, under the
writer's lock, as one commit (the writer's publish). Apart from IndexWriter because it runs
once per old index and shares none of the living index's add/delete/compact machinery."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.segments.writer import IndexWriter, NothingToDo
from hashindex.store.layout import (
    FAISS_DIR,
    SEGMENTS_DIR,
    SHARDS_DIR,
    TABLE_DIR,
    VECTORS_DIR,
    segment_folder,
)
from hashindex.store.manifest import Segment


def upgrade_in_place(writer: IndexWriter) -> Segment:
    """The top-level folders are hard-linked (copied where links fail) into
    segments/seg-000001, the new manifest renamed over the old one, then the old folders
    removed. A kill before the rename leaves the old index as it was."""
    manifest = writer.manifest
    if not manifest.legacy:
        raise NothingToDo(f"index {writer.root} is already in format "
                          f"{manifest.format_version}; nothing to upgrade")
    folder = segment_folder(1)
    if os.path.lexists(writer.root / SEGMENTS_DIR):
        raise HashIndexError(f"index {writer.root} holds a folder {SEGMENTS_DIR}/ that is not "
                             "part of it; move it out of the index, then upgrade")
    os.mkdir(writer.pending.declare(SEGMENTS_DIR))
    os.mkdir(writer.pending.declare(folder))
    moved = (SHARDS_DIR, TABLE_DIR, FAISS_DIR, VECTORS_DIR)
    files = {}
    for relative, entry in manifest.files.items():
        if relative.split("/")[0] in moved:
            target = writer.root / folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(writer.root / relative, target)
            files[f"{folder}/{relative}"] = entry
        else:
            files[relative] = entry
    old = manifest.segments[0]
    record = Segment(name=Path(folder).name, folder=folder, rows=old.rows,
                     shards=[{"file": f"{folder}/{s['file']}", "rows": s["rows"]}
                             for s in old.shards],
                     origin="build", trained_rows=old.trained_rows)
    after = writer.next_manifest()
    after.segments = [record]
    after.files = files
    writer.publish(after, [folder], "upgrade", {"from_format": manifest.format_version})
    return record


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
