"""The manifest a build writes: what the index holds and how it was made."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from hashindex.backends import BACKENDS
from hashindex.store.manifest import IndexManifest, Segment


def embedding_record(embedder) -> dict:
    """How the documents were embedded, for queries to do the same (empty: precomputed)."""
    spec = getattr(embedder, "spec", None)
    return spec.to_dict() if spec is not None else {}


def manifest_for(run, model, *, model_name: str, dim: int, segments: list[Segment], schema
                 ) -> IndexManifest:
    import faiss
    import pyarrow
    import torch

    config, report = run.config, run.report
    build_knobs, search_knobs = BACKENDS[config.backend].split_options(config.backend_options)
    return IndexManifest(
        documents=report.documents,
        bits=model.config.bits,
        variant=model.config.variant,
        embedding_model=model_name,
        dimension=dim,
        backend=config.backend,
        segments=segments,
        metadata_columns=[f.name for f in schema],
        embedding=embedding_record(run.embedder),
        store_embeddings=config.store_embeddings,
        vector_dtype=config.vector_dtype if config.store_embeddings else None,
        backend_options={**build_knobs.to_dict(), **search_knobs.to_dict()},
        distinct_codes=report.diagnostics["distinct_codes"],
        skipped_empty=report.skipped,
        model=model.config.to_dict(),
        train=run.train_config.to_dict() if config.encoder is None else None,
        build=config.to_dict(),
        stage_seconds={k: round(v, 3) for k, v in report.stage_seconds.items()},
        versions={"torch": torch.__version__, "faiss": faiss.__version__,
                  "pyarrow": pyarrow.__version__, "numpy": np.__version__},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
