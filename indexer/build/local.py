"""The local engine: one process reads the input twice, embedding on the first pass (cached,
spilled to scratch: passes.py) and writing the shards with their codes on the second; the rest
of the build is the skeleton's (skeleton.py)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from hashindex.segments.writing import SegmentWriter
from hashindex.store.layout import segment_folder
from indexer.build.passes import embed_pass, encode, encode_write_pass, write_pass
from indexer.build.skeleton import BuildRun, Engine, Written, segment_settings


class LocalEngine(Engine):
    name = "local"

    def embed(self, run: BuildRun, scratch: Path) -> tuple[np.ndarray, pa.Schema]:
        count, dim, schema = embed_pass(run, scratch)
        return np.memmap(scratch / "embeddings.f32", dtype=np.float32, mode="r",
                         shape=(count, dim)), schema

    def encode_write(self, run: BuildRun, folder: Path, model, embeddings: np.ndarray,
                     schema: pa.Schema) -> Written:
        started = time.perf_counter()
        segment = SegmentWriter(folder, segment_folder(1), schema,
                                segment_settings(run.config, model.config.bits))
        if model.reads_tokens:  # the codes come from a second pass over the tokens
            codes = encode_write_pass(run, segment, model.export_encoder())
            run.clock.add("encode", started)
            started = time.perf_counter()
        else:
            codes = encode(model, embeddings)
            run.clock.add("encode", started)
            started = time.perf_counter()
            write_pass(run, segment, codes)
        run.clock.add("write", started)
        return Written(codes, segment)
