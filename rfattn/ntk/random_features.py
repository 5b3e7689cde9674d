r"""Universal random features (Sehanobish et al. 2024, "Scalable Neural Network Kernels").

A layer :math:`x\mapsto f(w^\top x + b)` is written as :math:`\Phi(x)^\top\Psi(w, b)`, an
average over m random features, unbiased, with mean squared error falling like 1/m.
Gaussian trick: for complex a, c with :math:`a c = \kappa`,
:math:`e^{\kappa\,x^\top w} = \mathbb E_g[e^{a g^\top x - a^2\|x\|^2/2}\,
e^{c g^\top w - c^2\|w\|^2/2}]`, :math:`g\sim\mathcal N(0, I)`.

- ``exp``: :math:`a = c = 1` (Performer's positive features),
  :math:`e^{w^\top x + b}`;
- ``cos`` / ``sin``: :math:`\kappa = i`, :math:`a = c = e^{i\pi/4}`,
  :math:`e^{i(w^\top x + b)}` then its real or imaginary part;
- ``relu``: :math:`\Phi(x)=\mathrm{ReLU}(Gx)/\sqrt m` estimates the arc-cosine kernel
  :math:`\mathbb E_g[\mathrm{ReLU}(g^\top x)\mathrm{ReLU}(g^\top w)]`, the ReLU layer's kernel.
"""

from __future__ import annotations

import cmath
import math

import torch
from torch import Tensor

from ..core.checks import choice, positive_int
from ..linalg.kernels import relu_arccos_kernel

FUNCTIONS = ("exp", "cos", "sin", "relu")


def _gaussian_trick(x: Tensor, g: Tensor, a: complex) -> Tensor:
    z = (x.to(torch.complex128) @ g.T.to(torch.complex128)) * a
    return torch.exp(z - a * a * (x * x).sum(-1, keepdim=True) / 2)


def features(fn: str, x: Tensor, w: Tensor, b: Tensor, m: int,
             generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random features (Phi(x) (n, m), Psi(w, b) (k, m)); estimate = Re(Phi @ Psi.T) / m."""
    choice("function", fn, FUNCTIONS)
    m = positive_int("m", m)
    g = torch.randn(m, x.shape[1], generator=generator, dtype=torch.float64)
    if fn == "relu":
        return torch.relu(x @ g.T).to(torch.complex128), torch.relu(w @ g.T).to(torch.complex128)
    a = 1.0 if fn == "exp" else cmath.exp(1j * math.pi / 4)
    phase = torch.exp(b.to(torch.complex128) * (1.0 if fn == "exp" else 1j))
    return _gaussian_trick(x, g, a), _gaussian_trick(w, g, a) * phase[:, None]


def estimate(fn: str, x: Tensor, w: Tensor, b: Tensor, m: int,
             generator: torch.Generator) -> Tensor:
    """Random-feature estimate of f(w_k^T x_i + b_k) (or the ReLU kernel), shape (n, k)."""
    phi, psi = features(fn, x, w, b, m, generator)
    est = phi @ psi.T / m
    return est.imag if fn == "sin" else est.real


def exact(fn: str, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """The quantity the features estimate, shape (n, k)."""
    choice("function", fn, FUNCTIONS)
    if fn == "relu":
        sq = (x * x).sum(1)[:, None] * (w * w).sum(1)[None, :]
        return relu_arccos_kernel(x @ w.T, sq)
    s = x @ w.T + b[None, :]
    return {"exp": torch.exp, "cos": torch.cos, "sin": torch.sin}[fn](s)
