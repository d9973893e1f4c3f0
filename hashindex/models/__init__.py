"""The registry of autoencoder variants: one line each, selected by name.

A line names the variant, says what it is, gives its options class (models/options.py, free of
torch, so listing variants and checking `--option` needs no torch) and where its torch module
lives (imported only when a model is built). Adding a variant: its model file, its options
class, and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from hashindex.errors import HashIndexError
from hashindex.models.options import (
    ActivityPenaltyOptions,
    ConcreteOptions,
    ContractiveOptions,
    ConvolutionalOptions,
    DeepOptions,
    DenoisingOptions,
    MDLOptions,
    RBMDeepOptions,
    RecurrentOptions,
    SparseKLOptions,
    SparseKOptions,
    VanillaOptions,
    VariationalOptions,
)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    options: type
    module: str  # "package.module:Class" of the torch model
    tokens: bool = False  # reads token embeddings (the sequence before pooling), not a vector

    def model_class(self):
        module, _, name = self.module.partition(":")
        return getattr(import_module(module), name)


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("vanilla", "undercomplete autoencoder, one layer each way: embedding → code → "
            "embedding", VanillaOptions, "hashindex.models.vanilla:VanillaAutoencoder"),
    Variant("deep", "deep MLP encoder/decoder (one 512-unit hidden layer by default) around "
            "the code",
            DeepOptions, "hashindex.models.deep:DeepAutoencoder"),
    Variant("sparse-k", "k-sparse hidden layer: keeps the top-k activations, gradient only "
            "through them", SparseKOptions, "hashindex.models.sparse_k:KSparseAutoencoder"),
    Variant("sparse-kl", "sigmoid hidden layer, KL(ρ‖ρ̂) pulls each unit's mean activation to a "
            "target rate", SparseKLOptions, "hashindex.models.sparse_kl:KLSparseAutoencoder"),
    Variant("sparse-l1", "hidden layer with an L1 activity penalty λ·Σ|h| (sparse activations)",
            ActivityPenaltyOptions, "hashindex.models.sparse_l1:L1SparseAutoencoder"),
    Variant("sparse-l2", "hidden layer with an L2 activity penalty λ·Σh² (shrinks activations)",
            ActivityPenaltyOptions, "hashindex.models.sparse_l2:L2SparseAutoencoder"),
    Variant("denoising", "corrupts inputs in training (gaussian, masking or salt-pepper noise)",
            DenoisingOptions, "hashindex.models.denoising:DenoisingAutoencoder"),
    Variant("contractive", "vanilla's shape plus λ·‖∂code/∂x‖²_F (closed form for one layer, "
            "random projections deeper): codes robust to small moves", ContractiveOptions,
            "hashindex.models.contractive:ContractiveAutoencoder"),
    Variant("variational", "Bernoulli latent with KL to a uniform prior, Gumbel-sigmoid or "
            "straight-through", VariationalOptions,
            "hashindex.models.variational:VariationalAutoencoder"),
    Variant("concrete", "a feature selector: the concrete layer keeps N of the embedding's "
            "dimensions (temperature annealed) and only they are encoded; for finding which "
            "dimensions carry the data, not for hashing: its codes see N dimensions only "
            "(bbc-news, 64 bits: P@100 0.610 against vanilla's 0.805)", ConcreteOptions,
            "hashindex.models.concrete:ConcreteAutoencoder"),
    Variant("mdl", "minimal description length (Hinton & Zemel): code cost under a learned "
            "prior over the bits + the error's cost, one free energy", MDLOptions,
            "hashindex.models.mdl:MDLAutoencoder"),
    Variant("rbm-deep", "deep autoencoder pretrained layer-wise as RBMs (CD-1), then fine-tuned "
            "(Hinton)", RBMDeepOptions, "hashindex.models.rbm_deep:RBMDeepAutoencoder"),
    Variant("convolutional", "1-D convolutions over the text model's token embeddings, pooled "
            "to the code; transposed convolutions rebuild the token sequence (and an MLP the "
            "pooled embedding)", ConvolutionalOptions,
            "hashindex.models.convolutional:ConvolutionalAutoencoder", tokens=True),
    Variant("recurrent", "a bidirectional GRU (or LSTM) over the text model's token "
            "embeddings to the code; an MLP rebuilds the pooled embedding", RecurrentOptions,
            "hashindex.models.recurrent:RecurrentAutoencoder", tokens=True),
)}

DEFAULT_VARIANT = "vanilla"


def reads_tokens(name: str) -> bool:
    """The variant encodes token sequences: it needs text, not precomputed embeddings."""
    return VARIANTS[check_variant(name)].tokens


def check_variant(name: str) -> str:
    if name not in VARIANTS:
        raise HashIndexError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return name


def create_model(config):
    """The torch model for a ModelConfig (models/config.py)."""
    return VARIANTS[check_variant(config.variant)].model_class()(config)


__all__ = ["VARIANTS", "DEFAULT_VARIANT", "Variant", "check_variant", "create_model",
           "reads_tokens"]
