"""Frozen configuration dataclasses: one per concern, saved with the model and the index."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hashindex.errors import HashIndexError


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a binary autoencoder. Variant-specific knobs live here too, flat, so that one
    config.json says exactly how a model was made; each variant reads only its own fields."""

    variant: str = "vanilla"
    bits: int = 64
    input_dim: int = 384
    hidden: tuple[int, ...] | None = None  # None: the variant's default widths
    activation: str = "gelu"
    code_estimator: str = "ste"  # ste | bernoulli | noise-sigmoid | gumbel
    code_noise_std: float = 4.0  # noise-sigmoid: std of the noise before the sigmoid
    gumbel_temperature: float = 0.5
    # sparse variants
    sparse_k: int = 32
    sparse_rho: float = 0.05
    sparse_weight: float = 1e-3
    # denoising
    noise: str = "gaussian"  # gaussian | masking | salt-pepper
    noise_level: float = 0.2
    # contractive
    contractive_weight: float = 1e-3
    # variational
    kl_weight: float = 1e-2
    relaxation: str = "gumbel"  # gumbel | ste
    # concrete
    concrete_features: int = 64
    concrete_start_temperature: float = 10.0
    concrete_end_temperature: float = 0.01
    concrete_unique_weight: float = 1.0
    # rbm-deep
    rbm_epochs: int = 20
    rbm_learning_rate: float = 0.1

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


def parse_options(cls, options: list[str]) -> dict:
    """`KEY=VALUE` strings → typed field values of the dataclass `cls` (e.g. ModelConfig)."""
    defaults = {f.name: f.default for f in fields(cls)}
    out = {}
    for option in options:
        key, sep, raw = option.partition("=")
        key = key.strip().replace("-", "_")
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
