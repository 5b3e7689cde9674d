r"""The two towers of an SNNK layer (Sehanobish et al. 2024): random features of the inputs
and of the weight rows, drawn from one shared random matrix G, with
:math:`f(w^\top x + b) \approx \Psi(w, b)^\top \phi(x)`.

- ``exp``, ``cos``, ``sin``, ``gerf``, ``relu``: G is Gaussian (m, d); see
  :mod:`rfattn.ntk.snnk`.
- ``tanh``, ``gelu`` (series features): random Maclaurin features (Kar and Karnick 2012) of
  the polynomial :math:`f_K(z) = \sum_{k \le K} a_k z^k` (the Maclaurin series truncated at
  ``SERIES_DEGREE``), with :math:`z = w'^\top x'`, :math:`x' = (x, 1)`, :math:`w' = (w, b)`.
  Feature j has a degree :math:`k_j` drawn with probability :math:`p_k \propto |a_k|` and
  :math:`k_j` Gaussian projections :math:`\omega_{j,i}`:
  :math:`\phi_j(x) = \sqrt{|a_k|/(p_k m)}\prod_i \omega_{j,i}^\top x'` and
  :math:`\psi_j(w, b) = \mathrm{sign}(a_k)\sqrt{|a_k|/(p_k m)}\prod_i \omega_{j,i}^\top w'`,
  so that :math:`\mathbb E[\psi^\top\phi] = \sum_k a_k (w'^\top x')^k = f_K(w^\top x + b)`:
  the negative coefficients sit in the weight tower, which keeps both towers real. G is
  (m, K, d + 2): the unused projections of feature j are the last unit vector, against a
  constant last coordinate 1 appended to both towers, so G alone carries the degrees. The
  estimate is unbiased for :math:`f_K`; :math:`f - f_K` is the truncation error (tanh's series
  converges for :math:`|z| < \pi/2` only).
"""

from __future__ import annotations

import cmath
import math
from fractions import Fraction

import numpy as np
import torch
from scipy.special import factorial
from torch import Tensor

SERIES = ("tanh", "gelu")
SERIES_DEGREE = 11  # highest Maclaurin degree the series features keep
TANH_RADIUS = math.pi / 2  # tanh's Maclaurin series converges for |z| < pi/2
ROTATION = cmath.exp(1j * math.pi / 4)  # a with a^2 = i: e^{i w^T x}


def maclaurin_coefficients(kind: str, degree: int = SERIES_DEGREE) -> np.ndarray:
    r"""Coefficients :math:`a_0..a_K` of the Maclaurin series of tanh or GELU.

    tanh from :math:`\tanh' = 1 - \tanh^2`, in exact fractions:
    :math:`(k+1)\,a_{k+1} = [k = 0] - \sum_{i+j=k} a_i a_j`;
    :math:`\mathrm{GELU}(z) = z\Phi(z) = z/2 + \sum_{n\ge0} (-1)^n z^{2n+2} /
    (\sqrt{2\pi}\,2^n n!\,(2n+1))`.

    Parameters
    ----------
    kind : str
        ``tanh`` or ``gelu``.
    degree : int
        K.

    Returns
    -------
    ndarray
        (K + 1,) float64.
    """
    a = np.zeros(degree + 1)
    if kind == "tanh":
        t = [Fraction(0)] * (degree + 1)
        for k in range(degree):
            t[k + 1] = (int(k == 0) - sum(t[i] * t[k - i] for i in range(k + 1))) / (k + 1)
        a[:] = [float(v) for v in t]
    else:
        a[1] = 0.5
        for n in range(0, degree // 2):
            a[2 * n + 2] = (-1) ** n / (math.sqrt(2 * math.pi) * 2 ** n * factorial(n)
                                        * (2 * n + 1))
    return a


def series_polynomial(kind: str, z: Tensor) -> Tensor:
    """:math:`f_K(z)`, what the series features estimate."""
    out = torch.zeros_like(z)
    for a_k in maclaurin_coefficients(kind)[::-1]:  # Horner
        out = out * z + float(a_k)
    return out


def _degree_probabilities(kind: str) -> np.ndarray:
    a = np.abs(maclaurin_coefficients(kind))
    return a / a.sum()


def draw_tower(kind: str, m: int, d: int, generator: torch.Generator) -> Tensor:
    """The shared random matrix G of m features for inputs of dimension d: Gaussian (m, d),
    or for the series features (m, K, d + 2) with each feature's degree encoded (module
    docstring)."""
    if kind not in SERIES:
        return torch.randn(m, d, generator=generator, dtype=torch.float64)
    p = torch.tensor(_degree_probabilities(kind))
    degrees = torch.multinomial(p, m, replacement=True, generator=generator)
    G = torch.randn(m, SERIES_DEGREE, d + 2, generator=generator, dtype=torch.float64)
    G[..., -1] = 0.0
    unused = torch.arange(SERIES_DEGREE)[None, :] >= degrees[:, None]
    G[unused] = 0.0
    G[..., -1][unused] = 1.0
    return G


def tower_width(kind: str, G: Tensor) -> int:
    """The input dimension d of a tower drawn by :func:`draw_tower`."""
    return G.shape[-1] - 2 if kind in SERIES else G.shape[1]


def gerf_mu(d: int, sq_norm: float) -> float:
    r"""The GERF parameter :math:`\mu` minimizing the features' second moment at
    :math:`\|x + w\|^2` = ``sq_norm``: :math:`t = 1 + 8\mu` solves
    :math:`d t^2 - (d + 2s^2) t - 2s^2 = 0` (0 at s = 0).

    Parameters
    ----------
    d : int
        Input dimension.
    sq_norm : float
        :math:`s^2 = \|x + w\|^2`, typical for the layer's inputs and weight rows.

    Returns
    -------
    float
    """
    b = d + 2.0 * sq_norm
    t = (b + math.sqrt(b * b + 8.0 * d * sq_norm)) / (2.0 * d)
    return (t - 1.0) / 8.0


def input_features(kind: str, x: Tensor, G: Tensor, mu: float = 0.0) -> Tensor:
    r"""The input tower :math:`\phi(x)`, real, (n, p): p = 2m for cos and sin, else m.

    Parameters
    ----------
    kind : str
        One of :data:`rfattn.ntk.snnk.SNNK_FEATURES`.
    x : Tensor
        Inputs (n, d).
    G : Tensor
        Shared random matrix (:func:`draw_tower`).
    mu : float
        GERF parameter (``gerf`` only).

    Returns
    -------
    Tensor
    """
    phi = _tower(kind, x, G, mu)
    return torch.cat([phi.real, phi.imag], -1).to(x.dtype) if phi.is_complex() else phi


def weight_features(kind: str, W: Tensor, b: Tensor, G: Tensor, mu: float = 0.0) -> Tensor:
    r"""The parameter tower :math:`\Psi(W, b)` as the real matrix M (l, p) with
    :math:`f(w_k^\top x + b_k) \approx (M \phi(x))_k` (for relu: the arc-cosine kernel, and b
    is not used).

    Parameters
    ----------
    kind : str
        One of :data:`rfattn.ntk.snnk.SNNK_FEATURES`.
    W : Tensor
        Weight rows (l, d).
    b : Tensor
        Biases (l,).
    G : Tensor
        Shared random matrix (:func:`draw_tower`).
    mu : float
        GERF parameter (``gerf`` only).

    Returns
    -------
    Tensor
    """
    psi = _tower(kind, W, G, mu, b if kind != "relu" else None)
    if not psi.is_complex():
        return psi
    if kind == "cos":  # Re(psi phi) = Re psi Re phi - Im psi Im phi
        return torch.cat([psi.real, -psi.imag], -1).to(W.dtype)
    return torch.cat([psi.imag, psi.real], -1).to(W.dtype)  # Im(psi phi)


def _tower(kind: str, rows: Tensor, G: Tensor, mu: float, bias: Tensor | None = None) -> Tensor:
    r"""One tower's features over :math:`\sqrt m`: ReLU(rows G^T), the exponential ones, the
    complex URFs :math:`e^{a g^\top r - i\|r\|^2/2}`, or the series features; ``bias``
    multiplies row k by :math:`e^{b_k}` (exp) or :math:`e^{i b_k}` (cos, sin), is the
    appended coordinate of the series features (1 on the input side), and marks the weight
    tower."""
    m = G.shape[0]
    if kind in SERIES:
        return _series(kind, rows, G, bias)
    if kind == "relu":
        return torch.relu(rows @ G.T) / math.sqrt(m)
    if kind in ("exp", "gerf"):
        out = _exponential(rows, G, mu if kind == "gerf" else 0.0)
        return (out if bias is None else out * torch.exp(bias)[:, None]) / math.sqrt(m)
    z = (rows @ G.T).to(torch.complex128) * ROTATION \
        - (1j / 2) * (rows * rows).sum(-1, keepdim=True)
    if bias is not None:
        z = z + 1j * bias.to(torch.complex128)[:, None]
    return torch.exp(z) / math.sqrt(m)


def _series(kind: str, rows: Tensor, G: Tensor, bias: Tensor | None) -> Tensor:
    ones = rows.new_ones(rows.shape[0], 1)
    extended = torch.cat([rows, ones if bias is None else bias.to(rows)[:, None], ones], 1)
    features = torch.einsum("nd,mkd->nmk", extended, G.to(rows)).prod(-1)
    degrees = (G[..., -1] == 0).sum(-1)
    a = torch.tensor(maclaurin_coefficients(kind), dtype=rows.dtype, device=rows.device)
    p = torch.tensor(_degree_probabilities(kind), dtype=rows.dtype, device=rows.device)
    a_j, p_j = a[degrees], p[degrees]
    scale = (a_j.abs() / (p_j * G.shape[0])).sqrt()
    if bias is not None:
        scale = scale * torch.sign(a_j)
    return features * scale


def _exponential(x: Tensor, G: Tensor, mu: float) -> Tensor:
    r""":math:`(1+4\mu)^{d/4} e^{\sqrt{1+4\mu}\,g^\top x - \mu\|g\|^2 - \|x\|^2/2}`, (n, m)."""
    d = x.shape[-1]
    scale = math.sqrt(1.0 + 4.0 * mu)
    log = (scale * (x @ G.T) - mu * (G * G).sum(-1) - (x * x).sum(-1, keepdim=True) / 2
           + d / 4 * math.log1p(4.0 * mu))
    return torch.exp(log)
