"""Any registered autoencoder variant as a hashing method, with `hashindex build`'s defaults."""

from hashindex.baselines.base import HashingMethod
from hashindex.config import TrainConfig
from hashindex.encoding import encode_codes
from hashindex.models import DEFAULT_VARIANT
from hashindex.training import train


class AutoencoderMethod(HashingMethod):
    def __init__(self, bits, seed=0, variant=DEFAULT_VARIANT):
        super().__init__(bits, seed)
        self.variant = variant
        self.name = f"ae:{variant}"

    def fit(self, embeddings):
        config = TrainConfig(seed=self.seed, show_progress=False)
        self.model = train(embeddings, self.variant, self.bits, config).model
        return self

    def encode(self, embeddings):
        return encode_codes(self.model, embeddings)
