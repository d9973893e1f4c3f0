"""Building an index from a user's files.

- config.py   BuildConfig (what to build), BuildReport (what was done), StageClock
- checks.py   what is checked before any document is read (paths, encoder, options)
- passes.py   the passes over the documents: embed (spilled to scratch), encode, write shards
- record.py   the manifest a build writes
- local.py    build_index: the local engine, into a staging folder published atomically
"""

from indexer.build.config import BuildConfig, BuildReport
from indexer.build.local import build_index

__all__ = ["BuildConfig", "BuildReport", "build_index"]
