"""A service searches one index from many threads: the shard reader must answer every read
as a serial reader would (pyarrow's ParquetFile breaks, or crashes, when read from two threads
at once)."""

import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.documents import Documents
from hashindex.store.shards import ShardReader


def test_shard_reads_from_many_threads_equal_serial_reads(tmp_path):
    rows = 20_000
    table = pa.table({"id": [f"d{i}" for i in range(rows)],
                      "text": [f"text of document {i} " * 3 for i in range(rows)]})
    pq.write_table(table, tmp_path / "shard.parquet", row_group_size=50)
    reader = ShardReader(tmp_path, [{"file": "shard.parquet", "rows": rows}], cache_groups=2)
    failures: list = []

    def hammer(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(150):
                picked = rng.integers(0, rows, size=10)
                got = reader.take(picked).column("id").to_pylist()
                if got != [f"d{i}" for i in picked]:
                    failures.append(("wrong rows", picked))
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            failures.append(error)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures[:3]


def test_held_documents_equal_documents_read_from_the_shards(tmp_path):
    rows = 3_000
    table = pa.table({"id": [f"d{i}" for i in range(rows)],
                      "text": [None if i % 7 == 0 else f"tëxt {i} " * (i % 5) for i in range(rows)],
                      "n": list(range(rows)),
                      "tag": [None if i % 3 == 0 else f"t{i % 4}" for i in range(rows)],
                      "ok": [i % 2 == 0 for i in range(rows)]})
    for part in range(2):
        pq.write_table(table.slice(part * 1500, 1500), tmp_path / f"p{part}.parquet",
                       row_group_size=100)
    shards = [{"file": f"p{part}.parquet", "rows": 1500} for part in range(2)]
    from_disk = Documents(ShardReader(tmp_path, shards), ["n", "tag", "ok"], hold_bytes=0)
    held = Documents(ShardReader(tmp_path, shards), ["n", "tag", "ok"])
    assert not held.hold(max_bytes=1000)  # over the limit: stays on disk
    assert held.held_bytes == 0
    assert held.hold(max_bytes=held.needed_bytes())
    assert held.held_bytes > 0
    picked = np.random.default_rng(0).integers(0, rows, size=200)
    assert held.fetch(picked) == from_disk.fetch(picked)
    ids, texts, metadata = held.fetch(picked)
    assert ids == [f"d{i}" for i in picked]
    assert texts[:3] == [table["text"][int(i)].as_py() for i in picked[:3]]
    assert metadata[0] == {"n": int(picked[0]), "tag": table["tag"][int(picked[0])].as_py(),
                           "ok": bool(picked[0] % 2 == 0)}


def test_documents_are_held_after_repeated_fetches_within_the_budget(tmp_path):
    table = pa.table({"id": [f"d{i}" for i in range(500)], "text": ["x"] * 500})
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=100)
    shards = [{"file": "p.parquet", "rows": 500}]
    documents = Documents(ShardReader(tmp_path, shards), [], hold_after=3)
    small = Documents(ShardReader(tmp_path, shards), [], hold_after=3, hold_bytes=10)
    for _ in range(2):
        documents.fetch(np.arange(5))
        small.fetch(np.arange(5))
    assert documents.columns is None  # a one-shot query never pays the load
    documents.fetch(np.arange(5))
    small.fetch(np.arange(5))
    assert documents.columns is not None
    assert small.columns is None and small.hold_bytes == 0  # over its budget: never tried again
    assert documents.fetch(np.array([499, 0]))[0] == ["d499", "d0"]
