"""The shape the sequence variants share: token embeddings → sequence layers → the binary code
layer → decoders.

They read what the text model computes before pooling: each text's token embeddings (its first
`max_tokens`). Training and encoding pass them as packed rows, one per document,
[pooled embedding (d) | token count (1) | tokens (max_tokens × d), zero-padded], so the
training loop's batching and neighbour mining work on them unchanged: its neighbours and the
similarity teacher read the pooled part (teacher_view). The decoders rebuild the pooled
embedding (every sequence variant) and, for the convolutional one, the token sequence in 8
segments.

Their codes come from the tokens, so neither a precomputed embedding nor a stored vector can be
encoded: an index of a sequence variant is queried with text (embedded to tokens the same way)
or with a code. The encoder runs in torch (SequenceEncoder), not as the numpy arrays the
vector variants export.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from hashindex.models.base import BinaryAutoencoder


def pack(pooled: np.ndarray, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """float32 rows [pooled | length | tokens flattened] (tokens (n, T, d), zero-padded)."""
    n, steps, d = tokens.shape
    out = np.zeros((n, d + 1 + steps * d), dtype=np.float32)
    out[:, :d] = pooled
    out[:, d] = lengths
    out[:, d + 1:] = tokens.reshape(n, -1)
    return out


def unpack_rows(rows: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pooled, tokens (n, T, d), lengths) of packed numpy rows."""
    return (rows[:, :d], rows[:, d + 1:].reshape(len(rows), -1, d),
            np.rint(rows[:, d]).astype(np.int64))


def unpack(rows: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pooled (n, d), lengths (n,) int64, tokens (n, T, d)) of packed rows."""
    pooled = rows[:, :d]
    lengths = rows[:, d].round().long().clamp_min(1)
    tokens = rows[:, d + 1:].reshape(len(rows), -1, d)
    return pooled, lengths, tokens


class SequenceAutoencoder(BinaryAutoencoder):
    """A variant over token sequences sets `sequence_features` (tokens → one vector of
    `feature_width`); the code layer and the pooled decoder are the base's."""

    reads_tokens: ClassVar[bool] = True

    def __init__(self, config):
        super().__init__(config)
        d = config.input_dim
        self.register_buffer("target_mean", torch.zeros(d))  # the pooled embedding's
        self.register_buffer("target_std", torch.ones(d))

    def encoder_input_dim(self) -> int:
        return self.feature_width()

    def feature_width(self) -> int:
        return self.options.channels

    def sequence_features(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- what the training loop asks of a model --------------------------------------------
    def teacher_view(self, rows: torch.Tensor) -> torch.Tensor:
        """The pooled embedding: what neighbours and the similarity teacher compare."""
        return rows[:, : self.config.input_dim]

    @property
    def teacher_center(self) -> torch.Tensor:
        return self.target_mean

    def fit_normalization(self, rows: torch.Tensor) -> None:
        """Token statistics over real tokens only (not the padding); pooled ones apart."""
        pooled, lengths, tokens = unpack(rows, self.config.input_dim)
        mask = self.token_mask(lengths, tokens.shape[1])
        real = tokens[mask]
        self.set_normalization(real.mean(dim=0), real.std(dim=0))
        self.target_mean.copy_(pooled.mean(dim=0))
        self.target_std.copy_(pooled.std(dim=0).clamp_min(1e-6))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x  # packed rows: tokens and pooled part are normalised inside forward

    @staticmethod
    def token_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
        return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]

    # ---- the model ---------------------------------------------------------------------
    def features(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled target normalised, tokens normalised and masked, mask)."""
        pooled, lengths, tokens = unpack(rows, self.config.input_dim)
        mask = self.token_mask(lengths, tokens.shape[1])
        tokens = (tokens - self.input_mean) / self.input_std * mask[..., None]
        return (pooled - self.target_mean) / self.target_std, tokens, mask

    def encode(self, rows: torch.Tensor) -> torch.Tensor:
        _, tokens, mask = self.features(rows)
        return self.code_layer.logits(self.sequence_features(tokens, mask))

    def forward(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        target, tokens, mask = self.features(rows)
        hidden = self.sequence_features(tokens, mask)
        logits, code = self.code_layer(hidden)
        out = {"x": target, "x_in": target, "hidden": hidden, "logits": logits, "code": code,
               "reconstruction": self.decode(code), "tokens": tokens, "mask": mask}
        return out

    def export_encoder(self):
        return SequenceEncoder(self)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real steps: values (n, T, c), mask (n, T)."""
    weights = mask.float()
    return (values * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True)


def segment_means(tokens: torch.Tensor, mask: torch.Tensor, segments: int) -> torch.Tensor:
    """Each text's real tokens averaged in `segments` equal runs: (n, d, segments)."""
    lengths = mask.sum(dim=1).float()
    steps = torch.arange(tokens.shape[1], device=tokens.device).float()
    which = torch.floor(steps[None, :] * segments / lengths[:, None]).long()  # (n, T)
    onehot = F.one_hot(which.clamp(max=segments - 1), segments).float() * mask[..., None]
    sums = torch.einsum("nts,ntd->nds", onehot, tokens)
    counts = onehot.sum(dim=1).clamp_min(1.0)  # (n, segments)
    return sums / counts[:, None, :]


class SequenceEncoder:
    """The code of token sequences, as the build and the queries compute it (torch, no
    gradient): the sequence variants' counterpart of code_encoder.CodeEncoder."""

    reads_tokens = True

    def __init__(self, model: SequenceAutoencoder):
        self.model = model.eval()
        self.bits = model.config.bits
        self.max_tokens = model.options.max_tokens
        self.dimension = model.config.input_dim

    def encode_tokens(self, pooled: np.ndarray, tokens: np.ndarray,
                      lengths: np.ndarray) -> np.ndarray:
        """uint8 codes (n, bits/8) of (n, T, d) token embeddings with their lengths."""
        from hashindex.codes import pack_bits

        rows = torch.from_numpy(pack(pooled, tokens, lengths))
        with torch.no_grad():
            logits = self.model.encode(rows).numpy()
        return pack_bits(logits > 0)

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        from hashindex.errors import HashIndexError

        raise HashIndexError("this index's codes come from token sequences (variant "
                             f"{self.model.config.variant}): query it with text or a code, "
                             "not an embedding")
