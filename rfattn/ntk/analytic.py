r"""Analytic NNGP and NTK of fully connected networks (Jacot, Gabriel, Hongler 2018).

Network with ``depth`` = L linear layers, widths :math:`\to\infty`:
:math:`\tilde\alpha^{(l+1)} = \frac{\sigma_w}{\sqrt{n_l}} W^{(l)}\alpha^{(l)} + \sigma_b b^{(l)}`,
:math:`\alpha^{(l)} = \phi(\tilde\alpha^{(l)})`, all parameters i.i.d. N(0, 1) (NTK
parameterization; Jacot's form is :math:`\sigma_w = 1`, :math:`\sigma_b = \beta`). Recursion

.. math::
    \Sigma^{(1)} = \sigma_w^2 x^\top x'/n_0 + \sigma_b^2, \quad
    \Sigma^{(l+1)} = \sigma_w^2\,\mathbb E[\phi(u)\phi(v)] + \sigma_b^2, \quad
    \dot\Sigma^{(l+1)} = \sigma_w^2\,\mathbb E[\phi'(u)\phi'(v)],

    \Theta^{(1)} = \Sigma^{(1)}, \quad
    \Theta^{(l+1)} = \Theta^{(l)}\dot\Sigma^{(l+1)} + \Sigma^{(l+1)},

with :math:`(u, v) \sim \mathcal N(0, \Sigma^{(l)})` restricted to the pair. The NNGP is
:math:`\Sigma^{(L)}`, the NTK :math:`\Theta^{(L)}`. Check value: L = 4, beta = 0.1,
x = x' = (1, 0) gives 0.2825.

*Standard parameterization* (``parameterization="standard"``): weights
:math:`W \sim \mathcal N(0, \sigma_w^2/n_l)`, biases :math:`\mathcal N(0, \sigma_b^2)`, and the
learning rate of each weight matrix scaled by 1/fan-in (Sohl-Dickstein et al. 2020,
arXiv 2001.07301). The NNGP is unchanged; each weight layer contributes
:math:`(\Sigma - \sigma_b^2)/\sigma_w^2` and each bias 1, so
:math:`\Theta^{(1)} = x^\top x'/n_0 + 1` and
:math:`\Theta^{(l+1)} = \Theta^{(l)}\dot\Sigma^{(l+1)}
+ (\Sigma^{(l+1)}-\sigma_b^2)/\sigma_w^2 + 1`.

Closed forms: ReLU (arc-cosine, Cho & Saul 2009) and erf (Williams 1997); any other
elementwise activation by two-dimensional Gauss-Hermite quadrature. Cosines are clipped to
[-1, 1], so equal and nearly equal inputs are stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core.checks import ConfigError, choice, nonnegative, positive_int
from ..linalg.blocks import block_rows
from ..linalg.kernels import arccos_angular_

CLOSED_FORM = ("relu", "erf", "identity")
QUADRATURE = {
    "tanh": (torch.tanh, lambda x: 1 - torch.tanh(x) ** 2),
    "sigmoid": (torch.sigmoid, lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x))),
    "softplus": (torch.nn.functional.softplus, torch.sigmoid),
    "gelu": (torch.nn.functional.gelu,
             lambda x: 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * torch.exp(-x * x / 2)
             / math.sqrt(2 * math.pi)),
    "sin": (torch.sin, torch.cos),
}
ACTIVATIONS = CLOSED_FORM + tuple(QUADRATURE)
PARAMETERIZATIONS = ("ntk", "standard")


@dataclass
class Kernels:
    """NNGP and NTK Gram matrices, shape (n1, n2)."""

    nngp: Tensor
    ntk: Tensor


def _derivative(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    grad = torch.func.vmap(torch.func.grad(lambda x: fn(x)))
    return lambda x: grad(x.reshape(-1)).reshape(x.shape)


def _gauss_hermite(points: int, dtype, device) -> tuple[Tensor, Tensor]:
    z, w = np.polynomial.hermite_e.hermegauss(points)
    return (torch.as_tensor(z, dtype=dtype, device=device),
            torch.as_tensor(w / math.sqrt(2 * math.pi), dtype=dtype, device=device))


def pair_expectations(activation, k12: Tensor, k1: Tensor, k2: Tensor, points: int,
                      symmetric: bool, block_bytes: int = 64 * 2**20
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """E[phi(u) phi(v)], E[phi'(u) phi'(v)] for the pair, and E[phi(u)^2], E[phi(v)^2].

    Quadrature treats u and v asymmetrically; the exact expectation is symmetric, so for a
    kernel of inputs against themselves the quadrature result is symmetrized.
    """
    if activation == "identity":
        return k12, torch.ones_like(k12), k1, k2
    tiny = torch.finfo(k12.dtype).tiny
    norm = torch.outer(k1.sqrt(), k2.sqrt())
    cos = k12.div(norm.clamp_min(tiny)).clamp_(-1.0, 1.0)
    if activation == "relu":  # arc-cosine kernels, in place on cos
        ee, pi_minus_theta = arccos_angular_(cos, keep_j0=True)
        ee.mul_(norm).div_(2 * math.pi)
        return ee, pi_minus_theta.div_(2 * math.pi), k1 / 2, k2 / 2
    if activation == "erf":
        a1, a2 = 1 + 2 * k1, 1 + 2 * k2
        prod = a1[:, None] * a2[None, :]
        ee = 2 / math.pi * torch.arcsin((2 * k12 / prod.sqrt()).clamp(-1.0, 1.0))
        dd = 4 / math.pi / (prod - 4 * k12 * k12).clamp_min(torch.finfo(k12.dtype).tiny).sqrt()
        return ee, dd, 2 / math.pi * torch.arcsin(2 * k1 / a1), 2 / math.pi * torch.arcsin(
            2 * k2 / a2)
    fn, dfn = QUADRATURE[activation] if isinstance(activation, str) else (activation,
                                                                          _derivative(activation))
    z, w = _gauss_hermite(points, k12.dtype, k12.device)
    ww = w[:, None] * w[None, :]
    s1, s2 = k1.sqrt(), k2.sqrt()
    ee, dd = torch.empty_like(k12), torch.empty_like(k12)
    n2 = k12.shape[1]
    step = block_rows(k12.element_size() * n2 * points * points * 4, block_bytes)
    for s in range(0, k12.shape[0], step):
        e = slice(s, s + step)
        c = cos[e][..., None, None]
        u = s1[e, None, None, None] * z[:, None]  # (B, 1, K, 1)
        v = s2[None, :, None, None] * (c * z[:, None] + (1 - c * c).clamp_min(0).sqrt() * z)
        ee[e] = (fn(u) * fn(v) * ww).sum((-1, -2))
        dd[e] = (dfn(u) * dfn(v) * ww).sum((-1, -2))
    if symmetric:
        ee, dd = (ee + ee.T) / 2, (dd + dd.T) / 2
    diag = [(fn(s[:, None] * z) ** 2 * w).sum(-1) for s in (s1, s2)]
    return ee, dd, diag[0], diag[1]


def fc_kernels(x1: Tensor, x2: Tensor | None = None, depth: int = 2,
               activation: str | Callable = "relu", w_std: float = 1.0, b_std: float = 0.1,
               parameterization: str = "ntk", quadrature_points: int = 100) -> Kernels:
    r"""NNGP and NTK of an infinitely wide fully connected network (Jacot et al. 2018, Thm. 1).

    The recursion of the module docstring, over ``depth`` linear layers: closed form for ReLU
    and erf, Gauss-Hermite quadrature for any other activation (``quadrature_points``^2 nodes
    per pair: about 1e-6 relative error at 100 points for erf-like activations at unit
    variance).

    Parameters
    ----------
    x1 : Tensor
        Inputs, (n1, n0).
    x2 : Tensor, optional
        Inputs, (n2, n0); None for ``x1`` against itself.
    depth : int
        Linear layers L (depth 2: one hidden layer).
    activation : str or callable
        ``relu``, ``erf``, ``tanh``, ``identity``, ``sigmoid``, ``softplus``, ``gelu``, ``sin``,
        or an elementwise torch function (quadrature).
    w_std, b_std : float
        :math:`\sigma_w` and :math:`\beta`.
    parameterization : str
        ``ntk`` (Jacot's) or ``standard``.
    quadrature_points : int
        Gauss-Hermite nodes per axis.

    Returns
    -------
    Kernels
        ``nngp`` and ``ntk``, each (n1, n2), on the inputs' device and dtype.
    """
    depth = positive_int("depth", depth)
    w_std, b_std = nonnegative("w_std", w_std), nonnegative("b_std", b_std)
    choice("parameterization", parameterization, PARAMETERIZATIONS)
    if isinstance(activation, str):
        choice("activation", activation, ACTIVATIONS)
    elif not callable(activation):
        raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)} or a callable "
                          f"(got {activation!r})")
    if parameterization == "standard" and w_std == 0:
        raise ConfigError("w_std must be > 0 for the standard parameterization")
    symmetric = x2 is None
    x2 = x1 if symmetric else x2
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ConfigError(f"x1 and x2 must be (n, n0) with the same input width n0; got "
                          f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if not (torch.isfinite(x1).all() and torch.isfinite(x2).all()):
        raise ConfigError("x1 and x2 must be finite")
    n0 = x1.shape[1]
    sigma = w_std**2 * (x1 @ x2.T) / n0 + b_std**2
    k1 = w_std**2 * (x1 * x1).sum(1) / n0 + b_std**2
    k2 = w_std**2 * (x2 * x2).sum(1) / n0 + b_std**2
    standard = parameterization == "standard"
    ntk = ((x1 @ x2.T) / n0 + 1.0) if standard else sigma.clone()
    for _ in range(depth - 1):
        ee, dd, e1, e2 = pair_expectations(activation, sigma, k1, k2, quadrature_points, symmetric)
        ntk.mul_(dd.mul_(w_std**2))
        if standard:
            ntk.add_(ee).add_(1.0)
        sigma = ee.mul_(w_std**2).add_(b_std**2)
        if not standard:
            ntk.add_(sigma)
        k1, k2 = w_std**2 * e1 + b_std**2, w_std**2 * e2 + b_std**2
    return Kernels(sigma, ntk)
