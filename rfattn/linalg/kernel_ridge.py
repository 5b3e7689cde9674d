r"""Kernel ridge regression with this lab's ridge, and generalized cross-validation (GCV), a
test-error estimate from the training data alone.

For kernel ridge regression with this lab's ridge r (objective
:math:`\frac1n|y - f|^2 + r|f|_K^2`), the fit on the training points is :math:`\hat y = H y`,
:math:`H = K(K + nrI)^{-1}`, and (Golub, Heath, Wahba, Technometrics 1979)

.. math:: \mathrm{GCV}(r) = \frac{\frac1n |y - Hy|^2}{(1 - \operatorname{tr}H/n)^2}
          = \frac{n \sum_i z_i^2/(s_i + nr)^2}{\big(\sum_i 1/(s_i + nr)\big)^2},

with :math:`K = U\,\mathrm{diag}(s)\,U^\top` and :math:`z = U^\top y`. The right-hand form is
finite at r = 0 (ridgeless interpolation) for a positive definite K. It estimates the test
error :math:`\mathbb E(y_{\rm new} - \hat f(x_{\rm new}))^2` (noise included) uniformly in the
ridge under random-matrix assumptions (Misiakiewicz and Saeed, 2024, arXiv 2403.08938;
Jacot et al. 2020's KARE is the same estimator).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..core.checks import ConfigError


def kernel_ridge_gcv(gram: Tensor, y: Tensor, ridges) -> np.ndarray:
    r"""GCV of kernel ridge regression at each ridge (module docstring).

    Parameters
    ----------
    gram : Tensor
        (n, n) symmetric kernel matrix of the training points.
    y : Tensor
        (n,) training targets.
    ridges : sequence of float
        This lab's ridges r >= 0 (0: interpolation, which needs a positive definite K).

    Returns
    -------
    ndarray
        (len(ridges),) GCV estimates of the test error; ``inf`` where K + nrI is singular
        (r = 0 with a singular K: the interpolant's GCV is undefined).

    Raises
    ------
    ConfigError
        A ridge is negative.
    """
    n = gram.shape[0]
    s, U = torch.linalg.eigh(gram.to(torch.float64))
    z2 = ((U.T @ y.to(torch.float64)) ** 2).cpu().numpy()
    s = s.cpu().numpy()
    out = []
    for r in ridges:
        if r < 0:
            raise ConfigError(f"ridges must be >= 0 (got {r})")
        shifted = s + n * r
        if shifted.min() <= 1e-12 * max(s.max(), 1e-300):
            out.append(np.inf)
            continue
        out.append(n * float((z2 / shifted**2).sum()) / float((1 / shifted).sum()) ** 2)
    return np.array(out)


def kernel_ridge_solve(gram: Tensor, y: Tensor, ridge: float) -> Tensor:
    r"""Dual coefficients :math:`\alpha = (K + n\,r I)^{-1} y` of kernel ridge regression with
    this lab's ridge :math:`r` (objective :math:`\frac1n|y - f|^2 + r|f|_K^2`); ridge 0 is
    the minimum-norm interpolant (gradient flow at t = infinity), by least squares.

    Parameters
    ----------
    gram : Tensor
        (n, n) kernel matrix of the training points.
    y : Tensor
        (n,) targets.
    ridge : float
        r >= 0.

    Returns
    -------
    Tensor
        (n,) coefficients: predictions are ``K_test_train @ alpha``.
    """
    n = gram.shape[0]
    system = gram + n * ridge * torch.eye(n, dtype=gram.dtype, device=gram.device)
    return torch.linalg.lstsq(system, y).solution
