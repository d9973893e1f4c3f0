"""Each variant's options: a frozen dataclass per variant, with defaults, help and ranges.

Kept apart from the torch modules so that listing variants and checking `--option` values
imports no torch. A variant has exactly the options its model reads: `--variant vanilla
--option noise=masking` is an error, not a silently ignored field.
"""

from __future__ import annotations

from dataclasses import dataclass

from hashindex.errors import HashIndexError
from hashindex.options import Options, option

CODE_ESTIMATORS = ("ste", "bernoulli", "noise-sigmoid", "gumbel")
ACTIVATIONS = ("gelu", "relu", "sigmoid", "tanh")
NOISES = ("gaussian", "masking", "salt-pepper")
RELAXATIONS = ("gumbel", "ste")
JACOBIANS = ("auto", "closed", "projections", "exact")


@dataclass(frozen=True)
class CodeLayerOptions(Options):
    """How training passes gradients through the binary code layer (models/code_layer.py)."""

    code_estimator: str = option("ste", "gradient estimator through the bits",
                                 choices=CODE_ESTIMATORS)
    code_noise_std: float = option(4.0, "noise-sigmoid: std of the noise before the sigmoid",
                                   low=0.0)
    gumbel_temperature: float = option(0.5, "gumbel: relaxation temperature", low=0.0,
                                       low_open=True)


@dataclass(frozen=True)
class HiddenLayerOptions(Options):
    hidden: tuple[int, ...] = option((512, 256), "hidden widths from the input to the code, "
                                     "e.g. 512,256", low=1)
    activation: str = option("gelu", "activation after every hidden layer", choices=ACTIVATIONS)


@dataclass(frozen=True)
class LayerOptions(CodeLayerOptions, HiddenLayerOptions):
    """Hidden layers and the code layer (listed in that order)."""


@dataclass(frozen=True)
class VanillaOptions(CodeLayerOptions):
    pass


@dataclass(frozen=True)
class DeepOptions(LayerOptions):
    """One 512-unit hidden layer by default: with neighbourhood training it kept the float
    neighbours' order best (Debian descriptions, 64 bits: Hamming R@10 0.41 against the
    linear code's 0.36 and ITQ's 0.29); more layers with hidden=512,256."""

    hidden: tuple[int, ...] = option((512,), "hidden widths from the input to the code",
                                     low=1)


@dataclass(frozen=True)
class SparseKOptions(LayerOptions):
    hidden: tuple[int, ...] = option((512,), "hidden widths; the last one is made k-sparse",
                                     low=1)
    activation: str = option("relu", "activation after every hidden layer", choices=ACTIVATIONS)
    sparse_k: int = option(32, "hidden units kept per document (the top k)", low=1)

    def __post_init__(self):
        super().__post_init__()
        if self.sparse_k > self.hidden[-1]:
            raise HashIndexError(f"option sparse_k={self.sparse_k} is out of range: it must be "
                                 f"from 1 to the last hidden width {self.hidden[-1]}")


@dataclass(frozen=True)
class SparseKLOptions(CodeLayerOptions):
    """Sigmoid hidden units (the KL target is a mean activation rate), so no activation."""

    hidden: tuple[int, ...] = option((512,), "hidden widths (sigmoid units)", low=1)
    sparse_rho: float = option(0.05, "target mean activation of each hidden unit", low=0.0,
                               high=1.0, low_open=True)
    sparse_weight: float = option(1e-3, "weight of the KL sparsity penalty", low=0.0)


@dataclass(frozen=True)
class ActivityPenaltyOptions(LayerOptions):
    hidden: tuple[int, ...] = option((512,), "hidden widths", low=1)
    activation: str = option("relu", "activation after every hidden layer", choices=ACTIVATIONS)
    sparse_weight: float = option(1e-3, "weight of the activity penalty", low=0.0)


@dataclass(frozen=True)
class DenoisingOptions(LayerOptions):
    noise: str = option("gaussian", "input corruption in training", choices=NOISES)
    noise_level: float = option(0.2, "gaussian: std (0–10); masking, salt-pepper: fraction of "
                                "inputs hit (0–1)", low=0.0)

    def __post_init__(self):
        super().__post_init__()
        high = 10.0 if self.noise == "gaussian" else 1.0
        if self.noise_level > high:
            unit = "standard deviations" if high > 1 else "a fraction"
            raise HashIndexError(
                f"option noise_level={self.noise_level} is out of range for {self.noise} noise: "
                f"it must be from 0 to {high:g} ({unit})"
            )


@dataclass(frozen=True)
class ContractiveOptions(LayerOptions):
    hidden: tuple[int, ...] = option((), "hidden widths (none: vanilla's one layer, whose "
                                     "Jacobian norm has a closed form)", low=1)
    contractive_weight: float = option(1e-3, "weight of ‖∂code/∂x‖²_F", low=0.0)
    jacobian: str = option("auto", "closed: Σ_j (c_j(1−c_j))²‖W_j‖² for a one-layer encoder "
                           "(free); projections: an unbiased estimate from random projections "
                           "(one backward pass each, any depth); exact: the full Jacobian per "
                           "sample (bits backward passes: slow); auto: closed when it applies",
                           choices=JACOBIANS)
    projections: int = option(1, "projections: random vectors per batch", low=1, high=64)


@dataclass(frozen=True)
class MDLOptions(LayerOptions):
    """Minimal description length: the code's cost under a learned prior over the bits plus
    the reconstruction error's cost, as one free energy (models/mdl.py)."""

    hidden: tuple[int, ...] = option((512,), "hidden widths", low=1)
    code_cost_weight: float = option(1.0, "β: weight of the code cost against the error's "
                                     "(1: the description length)", low=0.0)


@dataclass(frozen=True)
class VariationalOptions(HiddenLayerOptions):
    """The Bernoulli latent is relaxed by `relaxation`, which replaces the code estimator."""

    relaxation: str = option("gumbel", "gumbel (binary concrete) or ste (straight-through "
                             "Bernoulli samples)", choices=RELAXATIONS)
    gumbel_temperature: float = option(0.5, "gumbel: relaxation temperature", low=0.0,
                                       low_open=True)
    kl_weight: float = option(1e-2, "weight of KL(q(b|x) ‖ Bernoulli(½))", low=0.0)


@dataclass(frozen=True)
class ConcreteOptions(LayerOptions):
    hidden: tuple[int, ...] = option((256,), "hidden widths after the selector", low=1)
    concrete_features: int = option(64, "input features the selector keeps", low=1)
    concrete_start_temperature: float = option(10.0, "selector temperature at the first epoch",
                                               low=0.0, low_open=True)
    concrete_end_temperature: float = option(0.01, "selector temperature at the last epoch",
                                             low=0.0, low_open=True)
    concrete_unique_weight: float = option(1.0, "penalty on two selectors picking one feature",
                                           low=0.0)


@dataclass(frozen=True)
class RBMDeepOptions(CodeLayerOptions):
    """Sigmoid units throughout (RBMs are stochastic binary units), so no activation."""

    hidden: tuple[int, ...] = option((512, 256), "hidden widths, one RBM per layer", low=1)
    rbm_epochs: int = option(20, "contrastive-divergence epochs per RBM", low=0)
    rbm_learning_rate: float = option(0.1, "RBM learning rate", low=0.0, low_open=True)


SEQUENCE_RECONSTRUCTIONS = ("pooled", "tokens", "both")


@dataclass(frozen=True)
class SequenceOptions(CodeLayerOptions):
    """Variants that read the sequence of token embeddings the text model computes before
    pooling (models/sequence.py). Training keeps a bounded sample of sequences in memory:
    train_documents × (max_tokens + 1) × dimension × 4 bytes (8 192 × 33 × 384 × 4 = 415 MB)."""

    max_tokens: int = option(32, "tokens of each text read (the first ones, [CLS] included)",
                             low=1, high=512)
    train_documents: int = option(8_192, "documents whose token sequences are kept for "
                                  "training (the input's first ones)", low=2)
    channels: int = option(256, "width of the sequence layers", low=1)


@dataclass(frozen=True)
class ConvolutionalOptions(SequenceOptions):
    kernel: int = option(3, "1-D convolution width over the tokens", low=1, high=15)
    reconstruct: str = option("both", "what the decoder rebuilds: the pooled embedding, the "
                              "token sequence (8 segments, by transposed convolutions), or "
                              "both", choices=SEQUENCE_RECONSTRUCTIONS)
    token_weight: float = option(0.5, "weight of the token sequence's reconstruction error",
                                 low=0.0)


@dataclass(frozen=True)
class RecurrentOptions(SequenceOptions):
    cell: str = option("gru", "the recurrent cell (bidirectional)", choices=("gru", "lstm"))
