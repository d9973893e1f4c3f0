"""Segments: how an index changes without a rebuild (Lucene's design, at our scale).

- reading.py  a generation's segments opened and pinned, searched as one index: each segment's
              backend asked for k, the answers merged (SegmentedBackend), the vectors by global
              row (VectorStack), deleted rows as a mask
- writing.py  SegmentWriter: one new immutable segment (shards, table, second backend, vectors)
- writer.py   IndexWriter: add, delete, compact and upgrade, each one commit under the lock
              (store/generations.py)
- adding.py   what an add needs of the index, from the writer's manifest (encoder, text model,
              columns, the id checks), shared by every add path and the builds' id check
"""
