"""Compacting a living index and tuning it again: what `hashindex compact`, the Python
`Index.compact()` and the service share. Its documents changed, so the recall/speed sweep the
queries choose settings from is run again (indexer/build/tune.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hashindex.model_io import read_index_encoder
from hashindex.segments.writer import CompactReport, IndexWriter, NothingToDo
from hashindex.tuning import Tuning
from indexer.build.tune import retune


@dataclass(frozen=True)
class CompactOutcome:
    report: CompactReport | None  # None: already one segment without deletions
    retuned: bool  # the sweep was run again
    generation: int
    message: str  # what happened, in one sentence


def compact_index(path: str | Path) -> CompactOutcome:
    """Merge the index's segments into one, dropping deleted rows, and tune it again; an
    index already compact is only re-tuned when its tuning is stale (or missing)."""
    with IndexWriter(path) as writer:
        read_index_encoder(writer.root, writer.manifest.bits)  # as every other command does
        try:
            report = writer.compact()
        except NothingToDo as note:
            tuning = Tuning.from_dict(writer.manifest.tuning)
            stale = tuning is None or tuning.stale(writer.manifest.rows,
                                                   writer.manifest.documents)
            if writer.manifest.store_embeddings and stale:
                retune(writer)
                return CompactOutcome(None, True, writer.manifest.generation,
                                      f"{note}; tuned it again (generation "
                                      f"{writer.manifest.generation})")
            return CompactOutcome(None, False, writer.manifest.generation, str(note))
        retune(writer)  # its documents changed: their recall/speed sweep too
    return CompactOutcome(report, True, writer.manifest.generation,
                          f"compacted {report.segments_before} segments ({report.rows_before} "
                          f"rows) into one of {report.documents} documents, {report.dropped} "
                          f"deleted rows dropped, and tuned it again in {report.seconds:.1f} s "
                          f"(generation {writer.manifest.generation})")
