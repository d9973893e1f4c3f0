"""Frozen configuration dataclasses: one per concern, saved with the model and the index."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from hashindex.errors import HashIndexError


def option(default, help: str = "", low: float | None = None, high: float | None = None,
           low_open: bool = False):
    """A config field with its allowed range: low ≤ value ≤ high (low < value if low_open)."""
    return field(default=default, metadata={"help": help, "low": low, "high": high,
                                            "low_open": low_open})


def check_ranges(config) -> None:
    """Raise naming the first field outside its declared range (and the range)."""
    for item in fields(config):
        low, high = item.metadata.get("low"), item.metadata.get("high")
        if low is None and high is None:
            continue
        value = getattr(config, item.name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            below = v is not None and low is not None and (
                v <= low if item.metadata.get("low_open") else v < low)
            above = v is not None and high is not None and v > high
            if below or above or (isinstance(v, float) and not math.isfinite(v)):
                shown = ",".join(map(str, values))
                raise HashIndexError(
                    f"option {item.name}={shown} is out of range: {describe_range(item)}"
                )


def describe_range(item) -> str:
    low, high = item.metadata.get("low"), item.metadata.get("high")
    what = "each width" if item.name == "hidden" else "it"
    if low is not None and high is not None:
        return f"{what} must be from {low} to {high}"
    if low is not None:
        return f"{what} must be {'above' if item.metadata.get('low_open') else 'at least'} {low}"
    return f"{what} must be at most {high}"


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a binary autoencoder. Variant-specific knobs live here too, flat, so that one
    config.json says exactly how a model was made; each variant reads only its own fields."""

    variant: str = "vanilla"
    bits: int = 64
    input_dim: int = option(384, low=1)
    hidden: tuple[int, ...] | None = option(None, low=1)  # None: the variant's default widths
    activation: str = "gelu"
    code_estimator: str = "ste"  # ste | bernoulli | noise-sigmoid | gumbel
    code_noise_std: float = option(4.0, low=0.0)  # noise-sigmoid: std of the noise
    gumbel_temperature: float = option(0.5, low=0.0, low_open=True)
    # sparse variants
    sparse_k: int = option(32, low=1)
    sparse_rho: float = option(0.05, low=0.0, high=1.0, low_open=True)
    sparse_weight: float = option(1e-3, low=0.0)
    # denoising
    noise: str = "gaussian"  # gaussian | masking | salt-pepper
    noise_level: float = option(0.2, low=0.0, high=1.0)
    # contractive
    contractive_weight: float = option(1e-3, low=0.0)
    # variational
    kl_weight: float = option(1e-2, low=0.0)
    relaxation: str = "gumbel"  # gumbel | ste
    # concrete
    concrete_features: int = option(64, low=1)
    concrete_start_temperature: float = option(10.0, low=0.0, low_open=True)
    concrete_end_temperature: float = option(0.01, low=0.0, low_open=True)
    concrete_unique_weight: float = option(1.0, low=0.0)
    # rbm-deep
    rbm_epochs: int = option(20, low=0)
    rbm_learning_rate: float = option(0.1, low=0.0, low_open=True)

    def __post_init__(self):
        check_ranges(self)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["hidden"] = list(self.hidden) if self.hidden is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return dataclass_from_dict(cls, data)


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained. Bit-balance and decorrelation spread documents over the table."""

    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    patience: int = 10
    seed: int = 0
    balance_weight: float = 0.1
    decorrelation_weight: float = 0.1
    # Similarity preservation: each document's neighbour distribution by code agreement is
    # distilled from its distribution by cosine (training.py). 0 = pure autoencoder.
    similarity_weight: float = 1.0
    similarity_teacher_temperature: float = 0.05
    similarity_code_temperature: float = 0.1
    max_train_docs: int = 200_000
    show_progress: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return dataclass_from_dict(cls, data)


def dataclass_from_dict(cls, data: dict):
    """Build a frozen dataclass from a dict, rejecting unknown keys by name."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise HashIndexError(
            f"unknown {cls.__name__} field(s) {unknown}; allowed: {sorted(names)}"
        )
    values = dict(data)
    if values.get("hidden") is not None:
        values["hidden"] = tuple(int(w) for w in values["hidden"])
    return cls(**values)


# Fields set by their own flags or by the data, never by --option.
NOT_OPTIONS = {"variant": "pass --variant", "bits": "pass --bits",
               "input_dim": "it is the embedding model's dimension"}


def parse_options(cls, options: list[str]) -> dict:
    """`KEY=VALUE` strings → typed field values of the dataclass `cls` (e.g. ModelConfig)."""
    defaults = {f.name: f.default for f in fields(cls) if f.name not in NOT_OPTIONS}
    out = {}
    for option in options:
        key, sep, raw = option.partition("=")
        key = key.strip().replace("-", "_")
        if key in NOT_OPTIONS:
            raise HashIndexError(f"--option {option!r}: {key} is not an option; "
                                 f"{NOT_OPTIONS[key]}")
        if not sep or key not in defaults:
            raise HashIndexError(
                f"--option {option!r} is not KEY=VALUE with KEY one of: {', '.join(defaults)}"
            )
        default = defaults[key]
        try:
            if key == "hidden":
                value = tuple(int(w) for w in raw.split(",") if w.strip())
            elif isinstance(default, bool):
                value = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                value = int(raw)
            elif isinstance(default, float):
                value = float(raw)
            else:
                value = raw
        except ValueError:
            raise HashIndexError(
                f"--option {option!r}: {raw!r} is not a valid {type(default).__name__}"
            ) from None
        out[key] = value
    return out


def replace_fields(config, **changes):
    """dataclasses.replace that ignores None values (CLI options left unset)."""
    from dataclasses import replace

    return replace(config, **{k: v for k, v in changes.items() if v is not None})


__all__ = ["ModelConfig", "TrainConfig"]
