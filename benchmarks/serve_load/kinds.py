"""The kinds of request: each a pool of bodies rendered once from one template, the query
varied (text, embedding, code, batches of 16, GET /health)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.serve_load.fixtures import query_sentences, sample_query_embeddings

K = 10
BATCH = 16  # queries per POST /search/batch


@dataclass
class Kind:
    """One kind of request: a pool of pre-rendered bodies (one template, the query varied),
    sent in turn; the cursor carries over between cells so text queries are not repeated
    before the pool is used up."""

    name: str
    method: str
    path: str
    bodies: list[bytes]
    queries_per_request: int = 1
    cursor: int = 0
    sent: int = 0

    def next_body(self) -> bytes:
        body = self.bodies[self.cursor]
        self.cursor = (self.cursor + 1) % len(self.bodies)
        self.sent += 1
        return body


def vector_json(vector: np.ndarray) -> str:
    """7 significant digits: float32's own precision, as a lean client would send it."""
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


def render(field_name: str, values: list[str]) -> list[bytes]:
    """One template per kind, {"<field>": <query>, "k": 10}, with each query put in."""
    prefix, suffix = json.dumps({field_name: "\0", "k": K}).split('"\\u0000"')
    return [(prefix + value + suffix).encode() for value in values]


def batches(singles: list[bytes], size: int) -> list[bytes]:
    count = len(singles) // size
    return [b'{"queries":[' + b",".join(singles[i * size : (i + 1) * size]) + b"]}"
            for i in range(count)]


def sample_kinds(index: Path, work: Path, quick: bool) -> list[Kind]:
    sentences = query_sentences()
    texts = render("text", [json.dumps(s) for s in sentences])
    embedded = sample_query_embeddings(index, work, sentences[: 256 if quick else 2048])
    embeddings = render("embedding", [vector_json(v) for v in embedded])
    return [Kind("health (GET /health)", "GET", "/health", [b""]),
            Kind("text", "POST", "/search", texts),
            Kind("embedding", "POST", "/search", embeddings),
            Kind(f"batch of {BATCH} embeddings", "POST", "/search/batch",
                 batches(embeddings, BATCH), BATCH),
            Kind(f"batch of {BATCH} texts", "POST", "/search/batch", batches(texts, BATCH),
                 BATCH)]


def synthetic_kinds(index: Path, queries: np.ndarray) -> list[Kind]:
    from hashindex.model_io import read_code_encoder
    from hashindex.store.layout import ENCODER_DIR

    codes = read_code_encoder(index / ENCODER_DIR).encode(queries)
    embeddings = render("embedding", [vector_json(v) for v in queries])
    return [Kind("embedding", "POST", "/search", embeddings),
            Kind("code", "POST", "/search", render("code", [f'"{c.tobytes().hex()}"'
                                                            for c in codes])),
            Kind(f"batch of {BATCH} embeddings", "POST", "/search/batch",
                 batches(embeddings, BATCH), BATCH)]

