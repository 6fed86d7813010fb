"""L2: the Gaussian log-likelihood with a fixed, isotropic σ² (the plain VAE baseline)."""

from blurbench.method_api import ReconstructionTerm, gaussian_nll

PARAMS: dict = {}


def validate(params: dict) -> None:
    """No parameters: σ² is the model's `model.sigma2`."""


class Term(ReconstructionTerm):
    def loss(self, x, x_hat, z, epoch):
        nll = gaussian_nll(x, x_hat, self.sigma2)
        return nll, {"recon_nll": float(nll.detach())}
