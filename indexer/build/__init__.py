"""Building an index from a user's files.

- config.py      BuildConfig (what to build), BuildReport (what was done), StageClock
- checks.py      what is checked before any document is read (paths, encoder, options)
- text_model.py  the text model a build runs, made from the config (int8: calibrated first)
- skeleton.py    one build's setup and finish, written once; an Engine fills in the passes
- passes.py      the passes over the documents: embed (spilled to scratch), encode, write shards
- local.py       the local engine: those passes in one process
- ray_engine.py  the ray engine: the input's parts embedded, encoded and written on Ray Data
- engines.py     build_index: the engine chosen by name
- record.py      the manifest a build writes
- tune.py        --backend auto made concrete, and the recall/speed sweep
"""

from indexer.build.config import BuildConfig, BuildReport
from indexer.build.engines import build_index

__all__ = ["BuildConfig", "BuildReport", "build_index"]
