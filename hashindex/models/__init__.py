"""The registry of autoencoder variants: one file each, one line here, selected by name."""

from __future__ import annotations

from hashindex.config import ModelConfig
from hashindex.errors import HashIndexError
from hashindex.models.base import BinaryAutoencoder
from hashindex.models.concrete import ConcreteAutoencoder
from hashindex.models.contractive import ContractiveAutoencoder
from hashindex.models.deep import DeepAutoencoder
from hashindex.models.denoising import DenoisingAutoencoder
from hashindex.models.rbm_deep import RBMDeepAutoencoder
from hashindex.models.sparse_k import KSparseAutoencoder
from hashindex.models.sparse_kl import KLSparseAutoencoder
from hashindex.models.sparse_l1 import L1SparseAutoencoder
from hashindex.models.sparse_l2 import L2SparseAutoencoder
from hashindex.models.vanilla import VanillaAutoencoder
from hashindex.models.variational import VariationalAutoencoder

VARIANTS: dict[str, type[BinaryAutoencoder]] = {
    cls.name: cls
    for cls in (
        VanillaAutoencoder,
        DeepAutoencoder,
        KSparseAutoencoder,
        KLSparseAutoencoder,
        L1SparseAutoencoder,
        L2SparseAutoencoder,
        DenoisingAutoencoder,
        ContractiveAutoencoder,
        VariationalAutoencoder,
        ConcreteAutoencoder,
        RBMDeepAutoencoder,
    )
}

DEFAULT_VARIANT = "vanilla"


def check_variant(name: str) -> str:
    if name not in VARIANTS:
        raise HashIndexError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return name


def create_model(config: ModelConfig) -> BinaryAutoencoder:
    return VARIANTS[check_variant(config.variant)](config)


__all__ = ["VARIANTS", "DEFAULT_VARIANT", "BinaryAutoencoder", "check_variant", "create_model"]
