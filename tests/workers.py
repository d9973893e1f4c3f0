"""Programs the crash-safety tests run in their own processes, to kill them for real.

    python workers.py build SPEC_JSON     a build with the fake (optionally slow) embedder
    python workers.py race INDEX STOP     opens and queries INDEX until the file STOP appears,
                                          checking that no answer mixes two builds
    python workers.py change SPEC_JSON    one change to a living index (add, upsert, delete,
                                          compact, upgrade, or a rebuild over it), printing
                                          `ready` once imported and `done` when committed
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from helpers import FakeEmbedder, build


class SlowEmbedder(FakeEmbedder):
    """The fake embedder, taking `delay` seconds per text: a build that lasts long enough to be
    killed while it embeds."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def embed(self, texts, show_progress=False):
        time.sleep(self.delay * len(texts))
        return super().embed(texts)


def run_build(spec: dict) -> None:
    build(spec["input"], spec["out"], SlowEmbedder(spec.get("delay", 0.0)),
          **spec.get("options", {}))
    print("built", flush=True)


def check_answer(index, result, query_code) -> None:
    """Every hit comes from the build the index was opened on: the same id prefix as its other
    hits and its document count, and the code in its shard row at the distance the table gave."""
    from hashindex.codes import hamming_distance

    prefixes = {hit.id.split("-")[0] for hit in result.hits}
    assert len(prefixes) <= 1, f"hits from two builds: {prefixes}"
    if prefixes:
        size = int(prefixes.pop().removeprefix("b"))
        assert len(index) == size, f"{len(index)} documents, hits of a {size}-document build"
    rows = np.array([hit.row for hit in result.hits], dtype=np.int64)
    if len(rows):
        stored = index.shards.take(rows).column("code").to_pylist()
        codes = np.array([np.frombuffer(c, dtype=np.uint8) for c in stored])
        assert list(hamming_distance(query_code, codes)) == [h.distance for h in result.hits]


def run_race(index_path: str, stop_file: str) -> None:
    from hashindex.engine import HashIndex

    rng = np.random.default_rng(0)
    long_lived = HashIndex.open(index_path)
    dim = long_lived.dimension
    fixed = rng.normal(size=dim).astype(np.float32)
    first = [(h.id, h.distance) for h in long_lived.search(fixed, k=5, backend="flat").hits]
    queries = 0
    deadline = time.monotonic() + 120
    while not Path(stop_file).exists() and time.monotonic() < deadline:
        index = HashIndex.open(index_path)
        query = rng.normal(size=dim).astype(np.float32)
        for backend in ("table", "flat"):
            result = index.search(query, k=5, backend=backend)
            check_answer(index, result, np.frombuffer(result.query_code, dtype=np.uint8))
        again = long_lived.search(fixed, k=5, backend="flat")
        assert [(h.id, h.distance) for h in again.hits] == first, "the long-lived index changed"
        check_answer(long_lived, again, np.frombuffer(again.query_code, dtype=np.uint8))
        queries += 1
    print(f"ok {queries}", flush=True)


def apply_change(spec: dict) -> None:
    """One change to a living index, as `change` runs it (and the crash tests re-run it)."""
    from hashindex.segments.writer import IndexWriter
    from indexer.documents import ColumnOptions
    from indexer.update import AddConfig, add_documents

    operation, index = spec["operation"], spec["index"]
    if operation in ("add", "upsert"):
        add_documents(AddConfig(index=index, input=spec["input"], upsert=operation == "upsert",
                                columns=ColumnOptions(id_column="doc", embedding_column="vec"),
                                show_progress=False))
    elif operation == "overwrite":
        build(spec["input"], index, embedding_column="vec", bits=32, store_embeddings=True,
              overwrite=True)
    else:
        with IndexWriter(index, allow_legacy=operation == "upgrade") as writer:
            if operation == "delete":
                writer.delete(spec["ids"])
            elif operation == "upgrade":
                from hashindex.segments.upgrade import upgrade_in_place

                upgrade_in_place(writer)
            else:
                getattr(writer, operation)()


def run_change(spec: dict) -> None:
    import hashindex.segments.upgrade  # noqa: F401  (imported before `ready`)
    import hashindex.segments.writer  # noqa: F401
    import indexer.update  # noqa: F401

    print("ready", flush=True)
    apply_change(spec)
    print("done", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        run_build(json.loads(sys.argv[2]))
    elif sys.argv[1] == "race":
        run_race(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "change":
        run_change(json.loads(sys.argv[2]))
