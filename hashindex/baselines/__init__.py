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


def describe_method(name: str) -> str:
    """What a method is, in one line (the variant's or baseline's own description)."""
    if name.startswith("ae:") and name[3:] in VARIANTS:
        return f"autoencoder: {VARIANTS[name[3:]].description}"
    method = BASELINES.get(name)
    return method.description if method is not None else ""


def create_method(name: str, bits: int, seed: int) -> HashingMethod:
    if name not in METHODS:
        raise HashIndexError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name](bits, seed)
