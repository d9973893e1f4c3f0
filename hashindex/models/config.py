"""ModelConfig: which variant, how many bits, the input dimension, and the variant's options.

Saved as `{"variant", "bits", "input_dim", "options": {...}}` in a model's config.json (model
format 2). Format 1 kept every variant's fields flat in one list; such a config loads by
keeping the fields of its own variant's options, which were the only ones its model read, so
an old model loads with the same weights and gives the same codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from hashindex.codes import check_bits
from hashindex.errors import HashIndexError
from hashindex.models import DEFAULT_VARIANT, VARIANTS, check_variant
from hashindex.options import Options, parse_pairs

# Format 1 models of these variants used ReLU whatever their config's activation said.
FORMAT_1_FIXED_ACTIVATION = ("sparse-k", "sparse-l1", "sparse-l2")
# Fields set by their own flags or by the data, never by --option.
NOT_OPTIONS = {"variant": "pass --variant", "bits": "pass --bits",
               "input_dim": "it is the embedding model's dimension"}


@dataclass(frozen=True)
class ModelConfig:
    variant: str = DEFAULT_VARIANT
    bits: int = 64
    input_dim: int = 384
    options: Options | None = None  # None: the variant's defaults

    def __post_init__(self):
        check_variant(self.variant)
        check_bits(self.bits)
        if isinstance(self.input_dim, bool) or not isinstance(self.input_dim, int) \
                or self.input_dim < 1:
            raise HashIndexError(f"input_dim={self.input_dim!r} must be an integer ≥ 1")
        expected = VARIANTS[self.variant].options
        if self.options is None:
            object.__setattr__(self, "options", expected())
        elif type(self.options) is not expected:
            raise HashIndexError(f"variant {self.variant} takes {expected.__name__}, not "
                                 f"{type(self.options).__name__}")

    def to_dict(self) -> dict:
        return {"variant": self.variant, "bits": self.bits, "input_dim": self.input_dim,
                "options": self.options.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        variant = check_variant(data.get("variant", DEFAULT_VARIANT))
        options_class = VARIANTS[variant].options
        if "options" in data:
            options = options_class.from_dict(data["options"], f"variant {variant}")
        else:  # model format 1: every variant's fields, flat; keep this variant's own
            own = {k: v for k, v in data.items() if k in options_class.names()}
            if own.get("hidden") is None:
                own.pop("hidden", None)
            if variant in FORMAT_1_FIXED_ACTIVATION:
                own.pop("activation", None)
            options = options_class.from_dict(own, f"variant {variant}")
        return cls(variant, int(data["bits"]), int(data["input_dim"]), options)


def variant_options(variant: str, pairs: list[str]) -> Options:
    """`--option KEY=VALUE` strings → the variant's options, every key and value checked."""
    options_class = VARIANTS[check_variant(variant)].options
    values = parse_pairs(options_class, list(pairs), "--option", f"variant {variant}",
                         reserved=NOT_OPTIONS)
    return options_class(**values)
