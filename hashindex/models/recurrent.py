"""Recurrent autoencoder over the text model's token embeddings.

Encoder: a bidirectional GRU (or LSTM) of `channels` units each way reads the text's real
tokens (packed: padding never enters the state); the last states of both directions,
concatenated, go to the code layer. Decoder: an MLP rebuilding the pooled embedding (the
base's): the sequence is read to summarise it, and the summary is what a search compares.
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from hashindex.models.sequence import SequenceAutoencoder


class RecurrentAutoencoder(SequenceAutoencoder):
    def __init__(self, config):
        super().__init__(config)
        cell = nn.GRU if self.options.cell == "gru" else nn.LSTM
        self.rnn = cell(config.input_dim, self.options.channels, batch_first=True,
                        bidirectional=True)

    def feature_width(self) -> int:
        return 2 * self.options.channels

    def sequence_features(self, tokens, mask):
        lengths = mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(tokens, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        last = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        return torch.cat([last[0], last[1]], dim=1)  # forward and backward final states
