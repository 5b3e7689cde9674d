r"""Closed-form gradient flow of a network in the kernel regime (Jacot et al. 2018, Sec. 5).

Least squares :math:`C = \frac{1}{2N}\sum_i (f(x_i) - y_i)^2` and continuous time t (learning
rate x steps). With the NTK :math:`\Theta` and the NNGP :math:`\Sigma` (the law of f at init):

.. math::
    A_t(x) = \Theta(x,X)\,\Theta^{-1}\big(I - e^{-t\Theta/N}\big), \qquad
    \mathbb E f_t(x) = A_t(x)\,y,

    \operatorname{Var} f_t(x) = \Sigma(x,x) - 2A_t(x)\Sigma(X,x) + A_t(x)\Sigma(X,X)A_t(x)^\top.

On the training set :math:`f_t = y + e^{-t\Theta/N}(f_0 - y)`; as :math:`t\to\infty` the mean is
kernel regression :math:`\Theta(x,X)\Theta^{-1}y`. One eigendecomposition of
:math:`\Theta(X,X)` serves every t; :math:`(1-e^{-te/N})/e` uses ``expm1`` and tends to t/N for
zero eigenvalues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.checks import ConfigError


@dataclass
class GradientFlowPrediction:
    """Mean (m, T) and variance (m, T) of f_t at the evaluation points for each time t."""

    times: Tensor
    mean: Tensor
    variance: Tensor | None


def gradient_flow(ntk_train: Tensor, ntk_eval_train: Tensor, y: Tensor, times,
                  nngp_train: Tensor | None = None, nngp_eval_train: Tensor | None = None,
                  nngp_eval_diag: Tensor | None = None,
                  f0_train: Tensor | None = None, f0_eval: Tensor | None = None
                  ) -> GradientFlowPrediction:
    r"""Predictions of gradient flow at times ``times`` (module docstring; ``math.inf`` allowed).

    With ``f0_*`` (one network's outputs at init) the prediction is that network's; else the
    mean over initializations, with the variance when the NNGP blocks are given.

    Parameters
    ----------
    ntk_train : Tensor
        :math:`\Theta(X, X)`, (n, n).
    ntk_eval_train : Tensor
        :math:`\Theta(x, X)`, (m, n).
    y : Tensor
        Training targets, (n,).
    times : sequence of float
        Times t = learning rate x steps, >= 0.
    nngp_train, nngp_eval_train, nngp_eval_diag : Tensor, optional
        :math:`\Sigma(X, X)`, :math:`\Sigma(x, X)` and the diagonal :math:`\Sigma(x, x)` (m,).
    f0_train, f0_eval : Tensor, optional
        One network's outputs at initialization on X and on x.

    Returns
    -------
    GradientFlowPrediction
        ``mean`` (m, T) and ``variance`` (m, T) or None.
    """
    n = ntk_train.shape[0]
    if ntk_train.shape != (n, n) or ntk_eval_train.shape[1] != n or y.shape[0] != n:
        raise ConfigError(f"ntk_train must be (n, n), ntk_eval_train (m, n), y (n,); got "
                          f"{tuple(ntk_train.shape)}, {tuple(ntk_eval_train.shape)}, "
                          f"{tuple(y.shape)}")
    t = torch.as_tensor(times, dtype=ntk_train.dtype, device=ntk_train.device).reshape(-1)
    if (t < 0).any() or torch.isnan(t).any():
        raise ConfigError(f"times must be >= 0 (got {times!r})")
    e, U = torch.linalg.eigh(ntk_train)
    e = e.clamp_min(0.0)
    rate = e[:, None] / n
    tt = t[None, :]
    with torch.no_grad():
        decay = -torch.expm1(-rate * torch.where(torch.isinf(tt), torch.zeros_like(tt), tt))
        decay = torch.where(torch.isinf(tt).expand_as(decay), torch.ones_like(decay), decay)
        small = e[:, None] <= 1e-12 * e.max()
        # (1 - exp(-t e/N)) / e, with its limit t/N at e = 0 (inf at t = inf: undetermined)
        g = torch.where(small, (tt / n).expand_as(decay), decay / e[:, None].clamp_min(1e-300))
        g = torch.where(small & torch.isinf(tt), torch.zeros_like(g), g)
    residual = y if f0_train is None else y - f0_train
    coef = U.T @ residual  # (n,)
    B = ntk_eval_train @ U  # (m, n)
    mean = B @ (g * coef[:, None])
    if f0_eval is not None:
        mean = mean + f0_eval[:, None]
    variance = None
    if nngp_train is not None and nngp_eval_train is not None and nngp_eval_diag is not None:
        variance = torch.empty_like(mean)
        SU = U.T @ nngp_train @ U
        cross = nngp_eval_train @ U  # (m, n)
        for k in range(t.numel()):
            A = B * g[:, k]  # A_t in the eigenbasis: (m, n)
            variance[:, k] = (nngp_eval_diag - 2 * (A * cross).sum(1)
                              + ((A @ SU) * A).sum(1)).clamp_min(0.0)
    return GradientFlowPrediction(t, mean, variance)


def gaussian_quantiles(pred: GradientFlowPrediction, q: float) -> Tensor:
    r"""The q-quantile of the Gaussian law of :math:`f_t`: mean + :math:`z_q` sqrt(variance).

    Parameters
    ----------
    pred : GradientFlowPrediction
        With its variance (the NNGP blocks were given).
    q : float
        In (0, 1).

    Returns
    -------
    Tensor
        (m, T).
    """
    if pred.variance is None:
        raise ConfigError("quantiles need the variance: pass the NNGP blocks")
    z = math.sqrt(2) * torch.erfinv(torch.tensor(2 * q - 1, dtype=pred.mean.dtype))
    return pred.mean + z * pred.variance.sqrt()
