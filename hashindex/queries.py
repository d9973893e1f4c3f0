"""A query made ready to search: text, an embedding, a code or a stored document → (code,
unit float32 embedding or None). Pure: the encoder and the text model are passed in."""

from __future__ import annotations

import numpy as np

from hashindex.code_encoder import EmbeddedBatch, embed_for, encode_embedded
from hashindex.errors import HashIndexError
from hashindex.results import CodedQuery, EmbeddedText
from hashindex.validation import check_query_embedding


def check_query_text(text: str) -> str:
    """A query text the text model can take: some words, in characters UTF-8 can write."""
    if not text.strip():
        raise HashIndexError("the query text is empty; pass some words to search for")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise HashIndexError(f"the query text is not valid UTF-8 (a lone surrogate "
                             f"{text[error.start]!r} at character {error.start}); pass text "
                             "in UTF-8") from None
    return text


def embed_texts(embedder, texts: list[str], max_tokens: int | None) -> list[EmbeddedText]:
    """Texts through a text model: pooled, with their first max_tokens token embeddings
    when a sequence variant needs them."""
    embedded = embed_for(embedder, texts, max_tokens)
    if embedded.tokens is not None:
        return [EmbeddedText(p, t, int(n)) for p, t, n in zip(embedded.pooled, embedded.tokens,
                                                               embedded.lengths)]
    return [EmbeddedText(vector) for vector in embedded.pooled]


def encode_one(encoder, embedding: np.ndarray) -> np.ndarray:
    """One checked float32 embedding's code (the batch checks left out where the encoder
    can: a sequence variant's encoder cannot take a pooled vector alone)."""
    if hasattr(encoder, "encode_one"):
        return encoder.encode_one(embedding)
    return encoder.encode(embedding[None])[0]


def check_embedded(embedding, dimension: int) -> np.ndarray:
    """An EmbeddedText's vector (a caller may build one): float, of the index's dimension,
    finite; left as it is otherwise (a text model's own output)."""
    embedding = np.asarray(embedding)
    if embedding.ndim != 1 or embedding.shape[0] != dimension or embedding.dtype.kind != "f":
        raise HashIndexError(f"an EmbeddedText must hold a float vector of dimension "
                             f"{dimension}; got {embedding.dtype} of shape {embedding.shape}")
    if not np.isfinite(embedding).all():
        raise HashIndexError("query embedding holds NaN or inf; pass finite numbers")
    return embedding


def prepare(query, encoder, bits: int, dimension: int, where: str,
            encode: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(code uint8[bits/8], embedding float32[d] or None) for an EmbeddedText, a
    CodedQuery, an embedding or a code (text is embedded by the caller, many at once); with
    encode=False an embedding's code is left None (the caller encodes many at once).
    `where` names the index and its model in errors ("DIR uses MODEL")."""
    if isinstance(query, CodedQuery):
        return query.code, query.embedding
    if isinstance(query, EmbeddedText):
        if query.tokens is not None:
            code = encode_embedded(encoder, EmbeddedBatch(
                query.embedding[None], query.tokens[None], np.array([query.length])))[0]
            return code, query.embedding
        embedding = check_embedded(query.embedding, dimension)
        return (encode_one(encoder, embedding) if encode else None), embedding
    if isinstance(query, (bytes, bytearray)):
        query = np.frombuffer(bytes(query), dtype=np.uint8)
    array = np.asarray(query)
    if array.dtype == np.uint8 and array.ndim == 1 and array.shape[0] == bits // 8:
        return array, None
    if array.ndim == 1 and array.dtype.kind == "f":
        if array.shape[0] != dimension:
            raise HashIndexError(f"query embedding has dimension {array.shape[0]}, but index "
                                 f"{where} with dimension {dimension}")
        embedding = check_query_embedding(array)  # unit length: scores are cosines
        return (encode_one(encoder, embedding) if encode else None), embedding
    raise HashIndexError(
        f"query must be text, a float embedding of dimension {dimension}, or a {bits}-bit "
        f"code of {bits // 8} uint8 bytes; got {array.dtype} array of shape {array.shape}")


def stored_query(row: int, code: np.ndarray, vectors, reads_tokens: bool):
    """The query a stored document stands for (Like): its stored embedding, or its code where
    none is stored; a sequence variant's codes come from tokens, so its documents are searched
    by their code, re-ranked by their stored embedding."""
    code = code.copy()
    if vectors is None:
        return code
    vector = vectors.rows(np.array([row]))[0]
    return CodedQuery(code, vector) if reads_tokens else vector
