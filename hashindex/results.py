"""What a search takes beside text, an embedding or a code (Like, EmbeddedText, CodedQuery)
and what it gives back (SearchResult of Hits): plain data, the same on every surface."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Like:
    """A query by a stored document: its own embedding (its code where the index keeps no
    embeddings); the document itself is left out of the results."""

    id: str


@dataclass(frozen=True)
class EmbeddedText:
    """A text query already through the text model (embed_texts): its pooled embedding and,
    for a sequence variant, its token embeddings; what a service's batched texts become."""

    embedding: np.ndarray  # float32 (d,)
    tokens: np.ndarray | None = None  # float32 (max_tokens, d), zero-padded
    length: int = 0  # real tokens


@dataclass(frozen=True)
class CodedQuery:
    """A code with the embedding that re-ranks its candidates (a stored document of a
    sequence variant, whose embedding alone cannot be encoded)."""

    code: np.ndarray
    embedding: np.ndarray


@dataclass(slots=True)
class Hit:
    id: str
    distance: int
    score: float
    text: str | None
    metadata: dict
    row: int  # its row in the opened index (-1 in an answer read back from the service)

    def to_dict(self, digits: int | None = None) -> dict:
        """id, score (rounded to `digits` when given), distance, text, metadata."""
        return {"id": self.id,
                "score": self.score if digits is None else round(self.score, digits),
                "distance": self.distance, "text": self.text, "metadata": self.metadata}


@dataclass
class SearchResult:
    hits: list[Hit]
    radius: int
    buckets_touched: int
    documents_touched: int
    candidates: int
    exact: bool
    backend: str
    reranked: bool
    query_code: bytes = b""
    notes: list[str] = field(default_factory=list)
    ranking: str = "cosine"  # what the hits are ordered by: cosine, or code distance
    setting: str = ""  # the tuned setting the request ran (empty: its own knobs)
    tuned_recall: float | None = None  # what that setting reached at the build's tuning
    scanned: bool = False  # every code was compared (a full scan)
    filter_examined: int | None = None  # candidates checked against the metadata filter
    filter_passed: int | None = None  # of which passed

    def to_dict(self) -> dict:
        """The answer as plain JSON-ready data, the same on every surface (the service's
        /search, `query --json`): hits (id, score, distance, text, metadata) and what the
        search did, once; the filter's counts only under a filter."""
        out = {
            "hits": [h.to_dict(6) for h in self.hits],
            "radius": self.radius, "candidates": self.candidates,
            "buckets_touched": self.buckets_touched,
            "documents_touched": self.documents_touched, "scanned": self.scanned,
            "exact": self.exact, "backend": self.backend, "reranked": self.reranked,
            "ranking": self.ranking, "setting": self.setting,
            "tuned_recall": self.tuned_recall, "notes": self.notes,
        }
        if self.filter_examined is not None:
            out["filter_examined"] = self.filter_examined
            out["filter_passed"] = self.filter_passed
        return out

    @classmethod
    def from_dict(cls, answer: dict) -> SearchResult:
        """to_dict's inverse, for an answer read back from the service (`query --server`,
        hashindex.Client): every hit's row is -1. A KeyError or TypeError says the answer is
        not a hashindex search answer."""
        hits = [Hit(id=h["id"], distance=h["distance"], score=h["score"], text=h.get("text"),
                    metadata=h.get("metadata") or {}, row=-1) for h in answer["hits"]]
        return cls(hits=hits, radius=answer["radius"],
                   buckets_touched=answer["buckets_touched"],
                   documents_touched=answer["documents_touched"],
                   candidates=answer["candidates"], exact=answer["exact"],
                   backend=answer["backend"], reranked=answer["reranked"],
                   notes=answer.get("notes", []), scanned=answer.get("scanned", False),
                   ranking=answer.get("ranking", "cosine"), setting=answer.get("setting", ""),
                   tuned_recall=answer.get("tuned_recall"),
                   filter_examined=answer.get("filter_examined"),
                   filter_passed=answer.get("filter_passed"))
