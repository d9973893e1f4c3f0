"""IndexWriter: the one writer of a living index. Every change is one commit of a new
generation (store/generations.py) under the index's lock (store/lock.py):

- add: a new segment, written by the caller through `new_segment()` and committed by
  `commit_segment()` (with the rows an upsert replaces deleted in the same commit);
- delete: for each segment touched, a new file of its deleted rows (tombstones);
- compact: every live row of every segment copied into one new segment, whose table and second
  backend are built afresh; the old segments and their tombstones are dropped;
- upgrade (segments/upgrade.py): a format-3 index's folders linked into
  segments/seg-000001, in place.

    with IndexWriter(path) as writer:
        report = writer.delete(["doc-1", "doc-7"])
"""

from __future__ import annotations

import io
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hashindex.errors import HashIndexError, UnknownDocuments
from hashindex.faults import fault_point
from hashindex.segments import reading
from hashindex.segments.adding import Adding
from hashindex.segments.reading import live_mask, load_deletions, open_segments, segment_of
from hashindex.segments.writing import SegmentSettings, SegmentWriter
from hashindex.store.fsutil import path_error, write_new_file
from hashindex.store.generations import commit
from hashindex.store.layout import (
    SEGMENTS_DIR,
    deletions_file,
    segment_folder,
    segment_number,
)
from hashindex.store.lock import WriterLock
from hashindex.store.manifest import (
    IndexManifest,
    Segment,
    index_manifest_file,
    read_manifest,
)
from hashindex.store.pending import PendingChange, recover
from hashindex.store.shards import CODE_COLUMN, ID_COLUMN, RESERVED_COLUMNS, ShardReader

HISTORY_KEPT = 100  # the last commits a manifest lists
# More small segments than this after an add are merged into one (merge_small). Searching them
# costs little (runs of small segments are one table at open), but each is files to open.
MERGE_SMALL_SEGMENTS = 10
SCRATCH_DIR = "_scratch"


class NothingToDo(HashIndexError):
    """A change that would change nothing (compacting a compact index): reported, not an
    error; the index is left as it is."""


@dataclass
class DeleteReport:
    deleted: int = 0
    unknown: list[str] = field(default_factory=list)  # ids not (or no longer) in the index
    generation: int = 0


@dataclass
class CompactReport:
    segments_before: int = 0
    rows_before: int = 0
    documents: int = 0
    dropped: int = 0  # deleted rows removed
    seconds: float = 0.0
    generation: int = 0


class IndexWriter:
    """Holds the index's lock from `with` to its end; each method commits one generation."""

    def __init__(self, path: str | Path, *, allow_legacy: bool = False):
        self.root = Path(path)
        self.allow_legacy = allow_legacy
        self.lock = WriterLock(self.root)
        self.manifest: IndexManifest | None = None
        self._ids: pa.ChunkedArray | None = None
        self._live: np.ndarray | None = None
        self.pending = PendingChange(self.root)  # what this writer creates, named first
        self.merged: CompactReport | None = None  # what the last add's merge policy did

    def __enter__(self) -> IndexWriter:
        index_manifest_file(self.root)  # no lock file is made in a folder that is no index
        self.lock.__enter__()
        try:
            self.manifest = read_manifest(self.root)
            if self.manifest.legacy and not self.allow_legacy:
                raise HashIndexError(
                    f"index {self.root} is in format {self.manifest.format_version} (before "
                    f"segments) and takes no changes; run `hashindex upgrade {self.root}` first"
                )
            try:
                recover(self.root, set(self.manifest.files))  # a dead writer's leftovers
            except OSError as error:
                raise path_error(error, f"index {self.root}") from None
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:  # a change that failed leaves nothing behind: what it made, it named
            if self.pending.created or self.pending.retired:  # against what is current now
                self.pending.finish(set(read_manifest(self.root).files))
        except (OSError, HashIndexError):
            pass  # still named in writer.json: the next writer removes it
        finally:
            self.lock.__exit__(*exc)

    # ---- what the current generation holds ----------------------------------------------
    def settings(self) -> SegmentSettings:
        return SegmentSettings.of(self.manifest)

    def shard_reader(self) -> ShardReader:
        return ShardReader(self.root, self.manifest.shards)

    def metadata_schema(self) -> pa.Schema:
        schema = self.shard_reader().schema
        return pa.schema([f for f in schema if f.name not in RESERVED_COLUMNS])

    def live(self) -> np.ndarray:
        """bool[rows]: which rows of the current generation are not deleted."""
        if self._live is None:
            starts = np.cumsum([0] + [record.rows for record in self.manifest.segments])
            live = live_mask(self.manifest.rows, [
                (start, load_deletions(self.root, record))
                for start, record in zip(starts, self.manifest.segments) if record.deletions])
            self._live = live if live is not None else np.ones(self.manifest.rows, dtype=bool)
        return self._live

    def live_rows_of(self, ids: list[str]) -> np.ndarray:
        """Global rows of the live documents whose id is among `ids`."""
        if self._ids is None:
            self._ids = self.shard_reader().column_array(ID_COLUMN)
        if not ids or not len(self._ids):
            return np.zeros(0, dtype=np.int64)
        hit = pc.is_in(self._ids, value_set=pa.array(ids, pa.string()))
        mask = np.asarray(hit.to_numpy(), dtype=bool) & self.live()
        return np.flatnonzero(mask)

    def ids_at(self, rows: np.ndarray) -> list[str]:
        if self._ids is None:
            self._ids = self.shard_reader().column_array(ID_COLUMN)
        return self._ids.take(pa.array(rows, pa.int64())).to_pylist()

    # ---- add -------------------------------------------------------------------------------
    def adding(self) -> Adding:
        """What an add needs of this index (segments/adding.py), from this writer's manifest."""
        return Adding(self)

    def add(self, ids: list[str], texts: list[str | None], embeddings: np.ndarray,
            metadata: pa.Table | None = None, *, upsert: bool = False,
            tokens: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[Segment, int]:
        """Add documents held in memory (the service's path; files go through
        indexer.update): their embeddings from the index's text model, encoded with its
        trained encoder (a sequence variant's from their `tokens`: (token embeddings,
        counts)), as one new segment. Returns (the segment, documents replaced)."""
        return self.adding().add(ids, texts, embeddings, metadata, upsert=upsert,
                                 tokens=tokens)

    def new_segment(self, metadata_schema: pa.Schema | None = None) -> SegmentWriter:
        """A writer for the next segment, in a new folder nothing refers to until it is
        committed (named in writer.json first, so a writer that dies leaves it to the next
        writer's clean-up). A name already taken, by whatever, is skipped, never reused."""
        number = self.manifest.next_segment
        while os.path.lexists(self.root / segment_folder(number)):
            number += 1
        folder = segment_folder(number)
        try:
            if not os.path.lexists(self.root / SEGMENTS_DIR):
                os.mkdir(self.pending.declare(SEGMENTS_DIR))
            os.mkdir(self.pending.declare(folder))
        except OSError as error:
            raise path_error(error, f"index {self.root}") from None
        return SegmentWriter(self.root, folder, metadata_schema or self.metadata_schema(),
                             self.settings())

    def scratch(self, segment: SegmentWriter) -> Path:
        """A folder inside the new segment for the add's spilled embeddings (removed before
        the commit)."""
        path = self.root / segment.folder / SCRATCH_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    def commit_segment(self, segment: SegmentWriter, codes: np.ndarray,
                       embeddings: np.ndarray | None, *, replaced: np.ndarray | None = None,
                       operation: str = "add") -> Segment:
        """Finish the segment's indexes and commit it, deleting the `replaced` rows (an
        upsert's old versions) in the same generation."""
        generation = self.manifest.generation + 1
        record = segment.finish(codes, embeddings, origin=operation, generation=generation)
        shutil.rmtree(self.root / segment.folder / SCRATCH_DIR, ignore_errors=True)
        fault_point("segment")
        manifest = self.next_manifest()
        if replaced is not None and len(replaced):
            self.add_deletions(manifest, replaced)
        manifest.segments = manifest.segments + [record]
        manifest.next_segment = segment_number(segment.folder) + 1
        manifest.documents += record.rows
        self.publish(manifest, [segment.folder], operation,
                     {"added": record.rows, "replaced": int(len(replaced))
                      if replaced is not None else 0})
        self.merged = self.merge_small()
        return record

    # ---- delete ----------------------------------------------------------------------------
    def delete(self, ids: list[str], *, strict: bool = False) -> DeleteReport:
        """Delete the live documents with these ids. Ids not in the index are reported; with
        `strict` they fail the whole delete (nothing changes)."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        if any(not doc.strip() for doc in wanted):
            raise HashIndexError("an id to delete is empty; it names no document")
        rows = self.live_rows_of(wanted)
        found = set(self.ids_at(rows))
        unknown = [i for i in wanted if i not in found]
        if unknown and strict:
            raise UnknownDocuments(unknown, str(self.root))
        report = DeleteReport(deleted=len(rows), unknown=unknown,
                              generation=self.manifest.generation)
        if len(rows):
            manifest = self.next_manifest()
            self.add_deletions(manifest, rows)
            self.publish(manifest, [], "delete", {"deleted": int(len(rows))})
            report.generation = self.manifest.generation
        return report

    def add_deletions(self, manifest: IndexManifest, rows: np.ndarray) -> None:
        """Write, for each segment the global `rows` fall in, the file of its deleted rows as of
        the new generation, and point its record at it."""
        starts = np.cumsum([0] + [s.rows for s in manifest.segments])[:-1]
        owner = segment_of(starts, rows)
        segments = list(manifest.segments)
        for number in np.unique(owner):
            record = segments[number]
            local = rows[owner == number] - starts[number]
            old = load_deletions(self.root, record)
            merged = np.union1d(old, local).astype(np.int64)
            relative = deletions_file(record.folder, manifest.generation)
            buffer = io.BytesIO()
            np.save(buffer, merged)
            write_new_file(self.pending.declare(relative), buffer.getvalue())
            if record.deletions:
                manifest.files.pop(record.deletions, None)
            manifest.files[relative] = None  # hashed at the commit
            segments[number] = replace(record, deleted=len(merged), deletions=relative)
            manifest.documents -= len(merged) - len(old)
        manifest.segments = segments

    # ---- compact ---------------------------------------------------------------------------
    def compact(self) -> CompactReport:
        """Copy every live row into one new segment and drop the old ones."""
        manifest = self.manifest
        if len(manifest.segments) == 1 and not manifest.segments[0].deleted:
            raise NothingToDo(f"index {self.root} is one segment with no deleted rows; nothing "
                              "to compact")
        return self.merge(0, "compact")

    def merge_small(self) -> CompactReport | None:
        """The merge policy, run after each add: once more than MERGE_SMALL_SEGMENTS small
        segments (reading.SMALL_SEGMENT_ROWS) trail the index, merge them into one, so that
        many small adds (one per HTTP request, say) do not pile up segments that every open
        and search pays for. None when there is nothing to merge."""
        small = 0
        for record in reversed(self.manifest.segments):
            if record.rows >= reading.SMALL_SEGMENT_ROWS:
                break
            small += 1
        if small <= MERGE_SMALL_SEGMENTS:
            return None
        return self.merge(len(self.manifest.segments) - small, "merge")

    def merge(self, first: int, operation: str) -> CompactReport:
        """Copy the live rows of segments[first:] into one new segment in their place (the
        segments before stay as they are, deletions included)."""
        started = time.perf_counter()
        manifest = self.manifest
        merged = manifest.segments[first:]
        opened = open_segments(self.root, manifest)[first:]
        settings = self.settings()
        segment = self.new_segment()
        codes, sources, trained = [], [], 0
        for number, part in enumerate(opened):
            keep = part.live_rows()
            if number + first == 0:  # the build's rows stay a prefix: the first segment's first
                trained = int(np.count_nonzero(keep < part.record.trained_rows))
            codes.append(self.copy_rows(part.record, keep, segment))
            if part.vectors is not None:
                sources.append((part.vectors, keep))
        codes = (np.concatenate(codes) if codes
                 else np.zeros((0, settings.bits // 8), np.uint8))
        embeddings = None
        if settings.backend == "graph":  # built over the embeddings: the stored ones
            if not sources:
                raise HashIndexError(f"index {self.root} keeps no embeddings, which its graph "
                                     "backend is built over; rebuild it to compact it")
            embeddings = np.concatenate([store.rows(rows) for store, rows in sources])
        generation = manifest.generation + 1
        record = segment.finish(codes, embeddings, stored_vectors=sources or None,
                                origin=operation, trained_rows=trained, generation=generation)
        fault_point("segment")
        after = self.next_manifest()
        for old in merged:
            for path in [p for p in after.files if p.startswith(old.folder + "/")]:
                del after.files[path]
        after.segments = after.segments[:first] + [record]
        after.next_segment = segment_number(segment.folder) + 1
        rows_before = sum(s.rows for s in merged)
        after.documents -= sum(s.live for s in merged) - record.rows
        report = CompactReport(len(merged), rows_before, record.rows, rows_before - record.rows)
        self.publish(after, [segment.folder], operation,
                     {"segments": report.segments_before, "dropped": report.dropped})
        report.seconds = time.perf_counter() - started
        report.generation = self.manifest.generation
        return report

    def copy_rows(self, record: Segment, keep: np.ndarray, segment: SegmentWriter
                  ) -> np.ndarray:
        """Copy a segment's `keep` rows (sorted local rows) shard by shard into the new
        segment, as stored; returns their codes."""
        codes, start = [], 0
        for shard in record.shards:
            rows = keep[(keep >= start) & (keep < start + shard["rows"])] - start
            start += shard["rows"]
            if not len(rows):
                continue
            table = pq.read_table(self.root / shard["file"], memory_map=True).take(
                pa.array(rows, pa.int64()))
            table = table.cast(segment.shards.schema)
            segment.shards.write_table(table)
            code = table.column(CODE_COLUMN).combine_chunks()
            codes.append(np.frombuffer(code.buffers()[1], dtype=np.uint8,
                                       count=len(rows) * code.type.byte_width,
                                       offset=code.offset * code.type.byte_width)
                         .reshape(len(rows), -1))
        return (np.concatenate(codes) if codes
                else np.zeros((0, self.manifest.bits // 8), np.uint8))

    def record_tuning(self, tuning: dict) -> None:
        """Commit a new recall/speed sweep (hashindex/tuning.py) into the manifest: a
        generation that changes no file."""
        manifest = self.next_manifest()
        manifest.tuning = tuning
        self.publish(manifest, [], "tune", {"rows": tuning["rows"]})

    # ---- commit ----------------------------------------------------------------------------
    def next_manifest(self) -> IndexManifest:
        """A copy of the current manifest for the next generation to fill in."""
        manifest = replace(self.manifest, files=dict(self.manifest.files),
                           segments=list(self.manifest.segments),
                           history=list(self.manifest.history))
        manifest.generation += 1
        return manifest

    def publish(self, manifest: IndexManifest, new_folders: list[str], operation: str,
                details: dict) -> None:
        manifest.history = (manifest.history + [{
            "generation": manifest.generation, "operation": operation,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "documents": manifest.documents, **details}])[-HISTORY_KEPT:]
        commit(self.root, manifest, new_folders, self.pending, set(self.manifest.files))
        self.manifest = manifest  # as committed (checksums filled in): not read back
        self._ids = self._live = None

