"""Contractive autoencoder (Rifai et al. 2011): λ·‖∂c/∂x‖²_F with c = sigmoid(code logits).

With one layer to the code (the default, vanilla's shape) the Jacobian is diag(c(1−c))·W and
its norm has a closed form, Σ_j (c_j(1−c_j))²‖W_j‖², at the cost of a matrix-vector product.
With hidden layers the penalty is the whole encoder's Jacobian norm, estimated without
forming the Jacobian: for v ~ N(0, I), E‖Jᵀv‖² = ‖J‖²_F (Hutchinson), and Jᵀv for every
sample of a batch is one backward pass (a vector-Jacobian product). One projection per batch
costs about one extra forward-backward; the exact Jacobian (`--option jacobian=exact`, torch.func
vmap over jacrev) costs `bits` of them.
"""

import torch
from torch.func import jacrev, vmap

from hashindex.errors import HashIndexError
from hashindex.models.base import BinaryAutoencoder


class ContractiveAutoencoder(BinaryAutoencoder):
    """The weight λ is ContractiveOptions.contractive_weight."""

    def code_probabilities(self, x_normalized: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits_from_normalized(x_normalized))

    @property
    def closed_form(self) -> bool:
        """One linear layer to the code: the Jacobian is diag(c(1−c))·W, no autograd needed."""
        if self.options.jacobian == "closed" and self.hidden_widths:
            raise HashIndexError("--option jacobian=closed needs a one-layer encoder "
                                 "(hidden=none); use projections or exact with hidden layers")
        return self.options.jacobian in ("auto", "closed") and not self.hidden_widths

    def jacobian_penalty(self, x_normalized: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of ‖∂c/∂x‖²_F per sample (closed form, estimated or exact)."""
        if self.closed_form:
            codes = self.code_probabilities(x_normalized)
            row_norms = (self.code_layer.linear.weight ** 2).sum(dim=1)  # ‖W_j‖²
            return ((codes * (1 - codes)) ** 2 @ row_norms).mean()
        if self.options.jacobian == "exact":
            return self.exact_penalty(x_normalized)
        training = torch.is_grad_enabled()  # a validation pass only reads the value
        with torch.enable_grad():
            x = x_normalized.detach().requires_grad_(True)
            codes = self.code_probabilities(x)
            total = codes.new_zeros(())
            for _ in range(self.options.projections):
                direction = torch.randn_like(codes)
                (product,) = torch.autograd.grad(codes, x, grad_outputs=direction,
                                                 create_graph=training, retain_graph=True)
                total = total + (product**2).sum(dim=1).mean()
        estimate = total / self.options.projections
        return estimate if training else estimate.detach()

    def exact_penalty(self, x_normalized: torch.Tensor) -> torch.Tensor:
        def single(sample: torch.Tensor) -> torch.Tensor:
            return self.code_probabilities(sample.unsqueeze(0)).squeeze(0)

        jacobians = vmap(jacrev(single))(x_normalized)  # (batch, bits, input_dim)
        return (jacobians**2).sum(dim=(1, 2)).mean()

    def penalty(self, out):
        return self.options.contractive_weight * self.jacobian_penalty(out["x_in"])
