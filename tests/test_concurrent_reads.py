"""A service searches one index from many threads: the shard reader must answer every read
as a serial reader would (pyarrow's ParquetFile breaks, or crashes, when read from two threads
at once)."""

import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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


def test_preloaded_rows_equal_rows_read_from_the_shards(tmp_path):
    rows = 3_000
    table = pa.table({"id": [f"d{i}" for i in range(rows)], "n": list(range(rows))})
    for part in range(2):
        pq.write_table(table.slice(part * 1500, 1500), tmp_path / f"p{part}.parquet",
                       row_group_size=100)
    shards = [{"file": f"p{part}.parquet", "rows": 1500} for part in range(2)]
    from_disk = ShardReader(tmp_path, shards)
    held = ShardReader(tmp_path, shards)
    assert not held.preload(max_bytes=1000)  # over the limit: stays on disk
    assert held.held_bytes == 0
    assert held.preload(max_bytes=from_disk.decoded_bytes())
    picked = np.random.default_rng(0).integers(0, rows, size=50)
    assert held.take(picked).to_pylist() == from_disk.take(picked).to_pylist()
    assert held.take(picked).column("id").to_pylist() == [f"d{i}" for i in picked]
