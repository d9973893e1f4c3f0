"""The documents of a POST /documents body made ready for IndexWriter.add: texts embedded by
the served index's text model (a sequence variant's tokens kept too), or the embeddings given
for an index built from precomputed ones; metadata as an Arrow table. Every document is
checked before any is embedded; what is wrong is a HashIndexError (400) naming it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from hashindex.app.serve.schema import AddBody, NewDocument
from hashindex.app.serve.snapshots import Snapshot
from hashindex.errors import HashIndexError


@dataclass
class Ingested:
    """What IndexWriter.add takes for the body's documents, in the body's order."""

    ids: list[str]
    texts: list[str | None]
    vectors: np.ndarray  # float32, one row per document
    metadata: object  # a pyarrow Table, a column per metadata name given
    tokens: tuple | None  # a sequence variant's (tokens, lengths), encoded under the lock
    upsert: bool

    def add_to(self, writer) -> dict:
        """The add, on the writer thread under the index's lock; the answer's counts."""
        record, replaced = writer.add(self.ids, self.texts, self.vectors, self.metadata,
                                      upsert=self.upsert, tokens=self.tokens)
        return {"added": record.rows, "replaced": replaced, "segment": record.name}


async def ingest(body: AddBody, current: Snapshot) -> Ingested:
    """The body's documents embedded (awaiting the batcher's model thread) or their
    embeddings taken, and their metadata tabled, for the served build `current`."""
    docs = body.documents
    if not docs:
        raise HashIndexError("documents: none given")
    tokens = None
    if current.batcher is None:
        vectors = given_embeddings(docs)
    else:
        given = [d.id for d in docs if d.embedding is not None or not (d.text or "").strip()]
        if given:
            raise HashIndexError(f"documents: {given[0]!r} needs a text (and no "
                                 "embedding): this index embeds text with its own model")
        embedded = await asyncio.wrap_future(current.batcher.submit([d.text for d in docs]))
        if current.index.token_count:  # a sequence variant: encoded from the tokens
            vectors = np.stack([e.embedding for e in embedded])
            tokens = (np.stack([e.tokens for e in embedded]),
                      np.array([e.length for e in embedded]))
        else:
            vectors = np.asarray(embedded, dtype=np.float32)
    return Ingested([d.id for d in docs], [d.text for d in docs], vectors, metadata_of(docs),
                    tokens, body.upsert)


def given_embeddings(docs: list[NewDocument]) -> np.ndarray:
    """An index of precomputed embeddings: every document brings one, all of one length."""
    missing = [d.id for d in docs if d.embedding is None]
    if missing:
        raise HashIndexError(f"documents: {missing[0]!r} has no embedding; this index "
                             "was built from precomputed embeddings")
    lengths = {len(d.embedding) for d in docs}
    if len(lengths) > 1:
        raise HashIndexError(f"documents: embeddings of lengths {sorted(lengths)}; "
                             "give every document the index's dimension")
    return np.asarray([d.embedding for d in docs], dtype=np.float32)


def metadata_of(docs: list[NewDocument]):
    """A column per metadata name any document gives (null where one leaves it out)."""
    import pyarrow as pa

    names = sorted({name for d in docs for name in d.metadata})
    try:
        return pa.table({name: [d.metadata.get(name) for d in docs] for name in names})
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
        raise HashIndexError(f"documents: metadata {error}") from None
