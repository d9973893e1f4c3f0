"""Deep autoencoder pretrained layer by layer as RBMs, then fine-tuned (Hinton & Salakhutdinov
2006; Salakhutdinov & Hinton 2009, semantic hashing).

The first RBM is Gaussian-Bernoulli (standardised real inputs), the rest Bernoulli-Bernoulli;
the last one maps to the code bits. Each is trained with one step of contrastive divergence
(CD-1); the stack is unrolled into the encoder and, transposed, the decoder, then fine-tuned with
the configured code estimator (`noise-sigmoid` is the paper's; with short fine-tuning its noise
swamps the small pretrained logits, so the shared default `ste` is kept).
"""

import torch
from torch import nn

from hashindex.models.base import BinaryAutoencoder


def train_rbm(
    visible: torch.Tensor,
    hidden_units: int,
    *,
    gaussian_visible: bool,
    epochs: int,
    learning_rate: float,
    generator: torch.Generator,
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CD-1 on `visible` (n, v). Returns weights (h, v), hidden bias (h,), visible bias (v,)."""
    n, v = visible.shape
    weights = 0.1 * torch.randn(hidden_units, v, generator=generator) / v**0.5
    hidden_bias = torch.zeros(hidden_units)
    visible_bias = visible.mean(dim=0).clone() if gaussian_visible else torch.zeros(v)
    # Gaussian visible units: the CD gradient grows with the visible dimension, so the rate is
    # scaled down past 32 inputs (lr 0.1 diverged on 384-d MiniLM embeddings)
    rate = learning_rate * min(1.0, 32 / v) if gaussian_visible else learning_rate
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            v0 = visible[order[start : start + batch_size]]
            h0 = torch.sigmoid(v0 @ weights.T + hidden_bias)
            h_sample = torch.bernoulli(h0, generator=generator)
            mean_v1 = h_sample @ weights + visible_bias
            v1 = mean_v1 if gaussian_visible else torch.sigmoid(mean_v1)
            h1 = torch.sigmoid(v1 @ weights.T + hidden_bias)
            size = len(v0)
            weights += rate * (h0.T @ v0 - h1.T @ v1) / size
            hidden_bias += rate * (h0 - h1).mean(dim=0)
            visible_bias += rate * (v0 - v1).mean(dim=0)
    return weights, hidden_bias, visible_bias


class RBMDeepAutoencoder(BinaryAutoencoder):
    fixed_activation = "sigmoid"  # the unrolled RBMs are sigmoid units

    @torch.no_grad()
    def pretrain(self, x, generator):
        encoder_linears = [m for m in self.encoder if isinstance(m, nn.Linear)]
        encoder_linears.append(self.code_layer.linear)
        decoder_linears = [m for m in self.decoder if isinstance(m, nn.Linear)]
        visible = self.select_inputs(x)
        stack = []
        for depth, layer in enumerate(encoder_linears):
            weights, hidden_bias, visible_bias = train_rbm(
                visible,
                layer.out_features,
                gaussian_visible=depth == 0,
                epochs=self.options.rbm_epochs,
                learning_rate=self.options.rbm_learning_rate,
                generator=generator,
            )
            layer.weight.copy_(weights)
            layer.bias.copy_(hidden_bias)
            stack.append((weights, visible_bias))
            visible = torch.sigmoid(visible @ weights.T + hidden_bias)
        # unroll: decoder layer i is the transpose of encoder RBM (depth-1-i). The first one reads
        # the ±1 code c, whose RBM units are b = (c + 1) / 2: W b + a = (W/2) c + (a + W·½).
        for index, (layer, (weights, visible_bias)) in enumerate(
            zip(decoder_linears, reversed(stack))
        ):
            if index == 0:
                layer.weight.copy_(weights.T / 2)
                layer.bias.copy_(visible_bias + weights.T.sum(dim=1) / 2)
            else:
                layer.weight.copy_(weights.T)
                layer.bias.copy_(visible_bias)
        # S&H threshold the code units where they split the data; moving each code unit's bias by
        # its median logit does the same, so every bit starts balanced before fine-tuning.
        logits = self.logits_from_normalized(x)
        self.code_layer.linear.bias -= logits.median(dim=0).values
