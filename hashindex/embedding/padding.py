"""Texts padded to fixed lengths, so that a text's vector does not depend on its batch.

OpenVINO's fused attention kernel (the eager-attention export, export.py) sums over the padded
sequence in blocks, so the same text padded to 40 or to 64 tokens comes out ~1e-3 apart: in
int8, 17 of 500 texts differed from their vector alone and 1 % of them flipped a bit of a
256-bit code. Padded to the same length, a text's vector is the same whatever its batch (0.0
difference over 533 texts in batches of equal lengths). So every text is padded to a length
that depends only on itself: its token count rounded up to a step that grows with it (exact up
to 16 tokens, then 2, 4, 8, 16: ~3-6 % more tokens), and batches hold texts of one length.
"""

from __future__ import annotations

import numpy as np


def padded_length(tokens: int, longest: int) -> int:
    """The length a text of `tokens` tokens is padded to (never past `longest`)."""
    step = 1 if tokens <= 16 else 2 if tokens <= 32 else 4 if tokens <= 64 else (
        8 if tokens <= 128 else 16)
    return int(min(max(longest, tokens), -(-tokens // step) * step))


def padded_batches(lengths, size: int, tokens: int, longest: int
                   ) -> list[tuple[int, np.ndarray]]:
    """(padded length, rows) batches: rows of one padded length, at most `size` of them and,
    when `tokens` is set, at most that many padded tokens (at least one row); shortest
    first."""
    padded = np.array([padded_length(int(n), longest) for n in lengths], dtype=np.int64)
    order = np.argsort(padded, kind="stable")
    batches = []
    for length in np.unique(padded):
        rows = order[padded[order] == length]
        step = max(1, min(size, tokens // int(length) if tokens else size))
        batches += [(int(length), rows[at : at + step]) for at in range(0, len(rows), step)]
    return batches


BATCH_TOKENS = 4096  # padded tokens per batch, at most (length_sorted_batches)


def pad_columns(tensor, length: int, value: int = 0):
    """A right-padded (rows, n) tensor cut, or extended with `value`, to `length` columns."""
    import torch

    if tensor.shape[1] >= length:
        return tensor[:, :length]
    return torch.nn.functional.pad(tensor, (0, length - tensor.shape[1]), value=value)


def length_sorted_batches(texts: list[str], size: int, tokens: int = 0,
                          longest: int = 512) -> list[np.ndarray]:
    """The rows of `texts` in batches, shortest texts first, so a batch pads little (the
    vectors go back to the rows, so the caller's order is kept). A batch holds at most `size`
    rows and, when `tokens` is set, at most that many padded tokens by an estimate of ~4
    characters a token, cut at `longest`: 16 texts at the 256 tokens of all-MiniLM-L6-v2, 64
    short ones (OpenVINO int8, 2 cores: 16 long texts a call ran 5 % faster than 64, while
    short texts want the 64)."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    if not tokens:
        return [order[start : start + size] for start in range(0, len(texts), size)]
    batches, start = [], 0
    for end, row in enumerate(order):
        estimate = min(longest, len(texts[row]) // 4 + 2)  # the longest in the batch so far
        if end > start and (end - start == size or (end - start + 1) * estimate > tokens):
            batches.append(order[start:end])
            start = end
    if start < len(order):
        batches.append(order[start:])
    return batches
