"""Diagnostics of a code set: how well the bits spread documents over the hash table."""

from __future__ import annotations

import numpy as np

from hashindex.codes import unpack_bits


def bucket_sizes(codes: np.ndarray) -> np.ndarray:
    """Number of documents sharing each distinct code."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    keys = codes.view(np.dtype((np.void, codes.shape[1]))).ravel()
    _, counts = np.unique(keys, return_counts=True)
    return counts


def code_diagnostics(codes: np.ndarray, sample_rows: int = 100_000, seed: int = 0) -> dict:
    """Per-bit balance, mean |bit correlation|, distinct/N, largest and mean bucket size.

    Balance and correlation are computed on at most `sample_rows` codes (a seeded sample).
    """
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n = len(codes)
    bits = codes.shape[1] * 8 if codes.ndim == 2 else 0
    if n == 0:
        return {"documents": 0, "bits": bits, "bit_balance": [], "mean_bit_balance": 0.0,
                "mean_abs_bit_correlation": 0.0, "distinct_codes": 0, "distinct_ratio": 0.0,
                "largest_bucket": 0, "mean_bucket_size": 0.0}
    sample = codes
    if n > sample_rows:
        sample = codes[np.random.default_rng(seed).choice(n, sample_rows, replace=False)]
    unpacked = unpack_bits(sample).astype(np.float64)
    balance = unpacked.mean(axis=0)
    std = unpacked.std(axis=0)
    varying = std > 0
    if varying.sum() > 1:
        correlation = np.corrcoef(unpacked[:, varying].T)
        off_diagonal = correlation[~np.eye(len(correlation), dtype=bool)]
        mean_abs_correlation = float(np.abs(off_diagonal).mean())
    else:
        mean_abs_correlation = 1.0
    sizes = bucket_sizes(codes)
    return {
        "documents": int(n),
        "bits": int(bits),
        "bit_balance": [round(float(b), 4) for b in balance],
        "mean_bit_balance": float(balance.mean()),
        "worst_bit_balance": float(np.abs(balance - 0.5).max() + 0.5),
        "constant_bits": int((~varying).sum()),
        "mean_abs_bit_correlation": mean_abs_correlation,
        "distinct_codes": int(len(sizes)),
        "distinct_ratio": float(len(sizes) / n),
        "largest_bucket": int(sizes.max()),
        "mean_bucket_size": float(sizes.mean()),
    }


def format_diagnostics(stats: dict) -> str:
    """A few human-readable lines (the per-bit list is summarised, not printed in full)."""
    return "\n".join(
        [
            f"documents            {stats['documents']}",
            f"bits                 {stats['bits']}",
            f"bit balance          mean {stats['mean_bit_balance']:.3f}, worst "
            f"{stats.get('worst_bit_balance', 0):.3f} (0.5 is ideal), constant bits "
            f"{stats.get('constant_bits', 0)}",
            f"mean |bit corr|      {stats['mean_abs_bit_correlation']:.4f}",
            f"distinct codes       {stats['distinct_codes']} ({stats['distinct_ratio']:.1%} of N)",
            f"largest bucket       {stats['largest_bucket']}",
            f"mean bucket size     {stats['mean_bucket_size']:.2f}",
        ]
    )


# A hint, not a law: past these the codes of added documents may no longer spread like the
# ones the encoder was trained on, and a rebuild (which retrains) is worth measuring.
DRIFT_SHARE = 0.5  # added documents as a share of the live ones
DRIFT_IMBALANCE = 0.1  # added codes' mean |p − 0.5| beyond the trained codes'
# Fewer added codes than this say little about their bits: a balanced bit's mean over n codes
# strays from 0.5 by ~0.4/√n (0.5 for one code), so the imbalance rule waits for them.
DRIFT_MIN_ADDED = 256


def drift(trained: np.ndarray, added: np.ndarray) -> dict:
    """How documents added since the encoder was trained compare with the ones it was
    trained on: their share, and each group's mean per-bit |p(1) − 0.5| (0 is balanced)."""
    def imbalance(codes):
        return float(np.abs(unpack_bits(codes).mean(axis=0) - 0.5).mean()) if len(codes) else 0.0

    total = len(trained) + len(added)
    share = len(added) / total if total else 0.0
    out = {"trained": int(len(trained)), "added": int(len(added)), "added_share": share,
           "trained_imbalance": imbalance(trained), "added_imbalance": imbalance(added)}
    out["retrain_hint"] = bool(len(added) and (
        share >= DRIFT_SHARE
        or (len(added) >= DRIFT_MIN_ADDED
            and out["added_imbalance"] > out["trained_imbalance"] + DRIFT_IMBALANCE)))
    return out
