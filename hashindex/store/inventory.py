"""What an index folder holds besides the index: a dead writer's leftovers (the next change
removes them) and anything else, which is not the index's and which no writer touches.
`info` and `verify` report both; `--overwrite` refuses to replace a folder with the latter."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.store.layout import WRITER_FILES
from hashindex.store.paths import foreign_paths


@dataclass(frozen=True)
class Inventory:
    leftovers: list[str]  # named by writer.json and not in use: the next writer removes them
    foreign: list[str]  # not the index's: left alone

    def describe_foreign(self, shown: int = 3) -> str:
        listed = ", ".join(self.foreign[:shown])
        return listed + (f" and {len(self.foreign) - shown} more" if len(self.foreign) > shown
                         else "")


def inventory(root: Path, files) -> Inventory:
    """`files`: the manifest's files (relative paths)."""
    from hashindex.store.pending import read_record

    try:
        record = read_record(root)
    except HashIndexError:
        record = None  # an unreadable record: what it named counts as foreign
    named = (record["created"] + record["retired"]) if record else []
    leftovers = sorted(p for p in named if isinstance(p, str) and p not in files
                       and os.path.lexists(Path(root) / p))
    return Inventory(leftovers, foreign_paths(root, set(files) | WRITER_FILES, leftovers))
