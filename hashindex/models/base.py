"""The one model shape every variant shares: encoder → binary code layer → decoder.

A variant subclasses `BinaryAutoencoder` and overrides only what makes it different: its
default widths, `corrupt` (input noise), `transform_hidden` (e.g. k-sparse), `penalty` (its
extra loss term), `on_epoch` (schedules) or `pretrain`. The interface follows PyTorch-VAE:
`encode`, `decode`, `forward`, `loss_function`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from hashindex.code_encoder import CodeEncoder, Layer
from hashindex.models.code_layer import BinaryCodeLayer
from hashindex.models.config import ModelConfig

ACTIVATION_MODULES = {"gelu": nn.GELU, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def build_mlp(widths: list[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive widths, each followed by the activation."""
    layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width_in, width_out), ACTIVATION_MODULES[activation]()]
    return nn.Sequential(*layers)


class BinaryAutoencoder(nn.Module):
    """Reads its shape from `config.options` (the variant's options class): `hidden` widths
    (none: one layer each way), `activation` (or the variant's `fixed_activation`) and the code
    layer's estimator settings."""

    fixed_activation: ClassVar[str] = "gelu"  # for variants whose options have no activation
    code_estimator_override: ClassVar[str | None] = None
    reads_tokens: ClassVar[bool] = False  # the sequence variants (models/sequence.py)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.options = options = config.options
        activation = getattr(options, "activation", self.fixed_activation)
        self.hidden_widths = tuple(getattr(options, "hidden", ()))
        self.register_buffer("input_mean", torch.zeros(config.input_dim))
        self.register_buffer("input_std", torch.ones(config.input_dim))
        encoder_input = self.encoder_input_dim()
        self.encoder = build_mlp([encoder_input, *self.hidden_widths], activation)
        last = self.hidden_widths[-1] if self.hidden_widths else encoder_input
        self.code_layer = BinaryCodeLayer(
            last,
            config.bits,
            estimator=self.code_estimator_override or getattr(options, "code_estimator", "ste"),
            noise_std=getattr(options, "code_noise_std", 0.0),
            temperature=options.gumbel_temperature,
        )
        decoder_widths = [config.bits, *reversed(self.hidden_widths)]
        self.decoder = build_mlp(decoder_widths, activation)
        self.decoder.append(nn.Linear(decoder_widths[-1], config.input_dim))

    # ---- hooks a variant may override -------------------------------------------------
    def encoder_input_dim(self) -> int:
        return self.config.input_dim

    def select_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalised embeddings to the encoder's input (the concrete selector's hook)."""
        return x

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """Input corruption applied in training only (denoising variants)."""
        return x

    def transform_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden

    def penalty(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The variant's extra loss term (0 for a plain autoencoder)."""
        return out["x"].new_zeros(())

    def on_epoch(self, epoch: int, epochs: int) -> None:
        """Called before each training epoch (temperature schedules)."""

    def pretrain(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """Optional unsupervised pre-training on normalised inputs before fine-tuning."""

    @property
    def can_stop_early(self) -> bool:
        return True

    # ---- shared machinery ---------------------------------------------------------------
    def teacher_view(self, rows: torch.Tensor) -> torch.Tensor:
        """What neighbours and the similarity teacher compare: the embeddings themselves."""
        return rows

    @property
    def teacher_center(self) -> torch.Tensor:
        return self.input_mean

    def fit_normalization(self, rows: torch.Tensor) -> None:
        self.set_normalization(rows.mean(dim=0), rows.std(dim=0))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.input_mean.copy_(mean)
        self.input_std.copy_(std.clamp_min(1e-6))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def hidden(self, x_normalized: torch.Tensor) -> torch.Tensor:
        return self.transform_hidden(self.encoder(self.select_inputs(x_normalized)))

    def logits_from_normalized(self, x_normalized: torch.Tensor) -> torch.Tensor:
        return self.code_layer.logits(self.hidden(x_normalized))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Raw embeddings → code-layer logits; the bits are `logits > 0`."""
        return self.logits_from_normalized(self.normalize(x))

    def export_encoder(self) -> CodeEncoder:
        """The inference path (normalise → encoder → code layer) as numpy arrays: what the
        build and the queries encode with (code_encoder.py)."""
        names = {module: name for name, module in ACTIVATION_MODULES.items()}
        modules = list(self.encoder)
        layers = []
        for i, module in enumerate(modules):
            if isinstance(module, nn.Linear):
                after = modules[i + 1] if i + 1 < len(modules) else None
                layers.append(self.exported(module, names.get(type(after))))
        layers.append(self.exported(self.code_layer.linear, None))
        return CodeEncoder(self.config.bits, self.input_mean.detach().numpy().copy(),
                           self.input_std.detach().numpy().copy(), layers,
                           meta={"variant": self.config.variant}, **self.export_extras())

    @staticmethod
    def exported(linear: nn.Linear, activation: str | None) -> Layer:
        return Layer(linear.weight.detach().numpy().astype(np.float32).copy(),
                     linear.bias.detach().numpy().astype(np.float32).copy(), activation)

    def export_extras(self) -> dict:
        """What a variant adds to the inference path: `selected` input features, `sparse_k`."""
        return {}

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """A ±1 (or relaxed) code → reconstruction in normalised embedding space."""
        return self.decoder(code)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x_normalized = self.normalize(x)
        x_in = self.corrupt(x_normalized) if self.training else x_normalized
        hidden = self.hidden(x_in)
        logits, code = self.code_layer(hidden)
        return {
            "x": x_normalized,
            "x_in": x_in,
            "hidden": hidden,
            "logits": logits,
            "code": code,
            "reconstruction": self.decode(code),
        }

    def loss_function(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        reconstruction = torch.mean((out["reconstruction"] - out["x"]) ** 2)
        penalty = self.penalty(out)
        return {
            "loss": reconstruction + penalty,
            "reconstruction": reconstruction,
            "penalty": penalty,
        }
