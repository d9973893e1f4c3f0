"""Convolutional autoencoder over the text model's token embeddings.

Encoder: two 1-D convolutions (width `kernel`, `channels` wide, GELU) slide over the tokens,
their outputs are averaged over the text's real tokens and the code layer reads that. Decoder:
the pooled embedding from an MLP (the base's), and with `reconstruct` tokens or both, the token
sequence in 8 segments (each the mean of its run of tokens) from the code by two transposed
convolutions (2 → 4 → 8 steps). What the figures say about the choice is in the bench report.
"""

import torch
import torch.nn.functional as F
from torch import nn

from hashindex.models.sequence import SequenceAutoencoder, masked_mean, segment_means

SEGMENTS = 8  # the token sequence is rebuilt in this many runs


class ConvolutionalAutoencoder(SequenceAutoencoder):
    def __init__(self, config):
        super().__init__(config)
        d, c, k = config.input_dim, self.options.channels, self.options.kernel
        self.convolutions = nn.Sequential(  # "same": any width keeps the sequence's length
            nn.Conv1d(d, c, k, padding="same"), nn.GELU(),
            nn.Conv1d(c, c, k, padding="same"), nn.GELU())
        self.token_decoder = None
        if self.options.reconstruct in ("tokens", "both"):
            self.expand = nn.Linear(config.bits, c * SEGMENTS // 4)
            self.token_decoder = nn.Sequential(
                nn.ConvTranspose1d(c, c, 4, stride=2, padding=1), nn.GELU(),
                nn.ConvTranspose1d(c, d, 4, stride=2, padding=1))

    def sequence_features(self, tokens, mask):
        steps = self.convolutions(tokens.transpose(1, 2)).transpose(1, 2)  # (n, T, c)
        return masked_mean(steps, mask)

    def rebuild_tokens(self, code: torch.Tensor) -> torch.Tensor:
        start = self.expand(code).reshape(len(code), self.options.channels, SEGMENTS // 4)
        return self.token_decoder(start)  # (n, d, SEGMENTS)

    def loss_function(self, out):
        pooled_error = torch.mean((out["reconstruction"] - out["x"]) ** 2)
        losses = {"pooled_reconstruction": pooled_error}
        total = pooled_error if self.options.reconstruct != "tokens" else 0.0
        if self.token_decoder is not None:
            target = segment_means(out["tokens"], out["mask"], SEGMENTS)
            token_error = F.mse_loss(self.rebuild_tokens(out["code"]), target)
            losses["token_reconstruction"] = token_error
            total = total + self.options.token_weight * token_error
        penalty = out["x"].new_zeros(())
        return {"loss": total + penalty, "reconstruction": total, "penalty": penalty,
                **losses}
