"""Any registered autoencoder variant as a hashing method, with `hashindex build`'s defaults
(or the training config and variant options given)."""

from hashindex.baselines.base import HashingMethod
from hashindex.encoding import encode_codes
from hashindex.models import DEFAULT_VARIANT, VARIANTS
from hashindex.training import TrainConfig, train


class AutoencoderMethod(HashingMethod):
    def __init__(self, bits, seed=0, variant=DEFAULT_VARIANT, train_config=None, options=None):
        super().__init__(bits, seed)
        self.variant = variant
        self.name = f"ae:{variant}"
        self.train_config = train_config or TrainConfig(show_progress=False)
        self.options = options or VARIANTS[variant].options()
        self.reads_tokens = VARIANTS[variant].tokens

    def input_dim(self, rows) -> int | None:
        """A packed row is d + 1 + max_tokens·d wide (models/sequence.py)."""
        if not self.reads_tokens:
            return None
        return (rows.shape[1] - 1) // (self.options.max_tokens + 1)

    def fit(self, embeddings):
        from dataclasses import replace

        config = replace(self.train_config, seed=self.seed)
        self.model = train(embeddings, self.variant, self.bits, config, self.options,
                           input_dim=self.input_dim(embeddings)).model
        self.encoder = self.model.export_encoder()
        return self

    def encode(self, embeddings):
        if self.reads_tokens:
            from hashindex.models.sequence import unpack_rows

            return self.encoder.encode_tokens(*unpack_rows(embeddings, self.input_dim(embeddings)))
        return encode_codes(self.encoder, embeddings)
