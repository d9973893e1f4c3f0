"""The registry of hashing methods compared by `hashindex bench`: the baselines by name, and
every autoencoder variant as `ae:<variant>`."""

from __future__ import annotations

from functools import partial

from hashindex.baselines.autoencoder import AutoencoderMethod
from hashindex.baselines.base import HashingMethod
from hashindex.baselines.itq import ITQMethod
from hashindex.baselines.lsh import LSHMethod
from hashindex.baselines.pca_sign import PCASignMethod
from hashindex.baselines.sign import SignMethod
from hashindex.baselines.spectral import SpectralMethod
from hashindex.errors import HashIndexError
from hashindex.models import VARIANTS

BASELINES = {cls.name: cls
             for cls in (SignMethod, PCASignMethod, LSHMethod, ITQMethod, SpectralMethod)}
METHODS = {**BASELINES,
           **{f"ae:{name}": partial(AutoencoderMethod, variant=name) for name in VARIANTS}}


def split_method(name: str) -> tuple[str, list[str]]:
    """`ae:<variant>+KEY=VALUE+…` → (the method, the variant's option pairs): a variant with
    other options than its defaults, e.g. ae:convolutional+reconstruct=pooled."""
    base, *pairs = name.split("+")
    if base not in METHODS:
        raise HashIndexError(f"unknown method {base!r}; choose from {', '.join(METHODS)}")
    if pairs and not base.startswith("ae:"):
        raise HashIndexError(f"method {base} has no options; only ae:<variant> takes "
                             "+KEY=VALUE")
    return base, pairs


def describe_method(name: str) -> str:
    """What a method is, in one line (the variant's or baseline's own description)."""
    base, pairs = split_method(name)
    if base.startswith("ae:"):
        options = f" ({', '.join(pairs)})" if pairs else ""
        return f"autoencoder: {VARIANTS[base[3:]].description}{options}"
    return BASELINES[base].description


def create_method(name: str, bits: int, seed: int) -> HashingMethod:
    base, pairs = split_method(name)
    if pairs:
        from hashindex.models.config import variant_options

        return METHODS[base](bits, seed, options=variant_options(base[3:], pairs))
    return METHODS[base](bits, seed)
