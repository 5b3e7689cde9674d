r"""Arc-cosine kernels (Cho and Saul 2009, "Kernel Methods for Deep Learning"), written once.

For :math:`w\sim\mathcal N(0, s^2 I)` and inputs at angle :math:`\theta`,
:math:`\cos\theta = \langle u,u'\rangle/(\|u\|\|u'\|)`,

.. math::
    \mathbb E[\mathrm{ReLU}\langle w,u\rangle\,\mathrm{ReLU}\langle w,u'\rangle]
        = \frac{s^2}{2\pi}\,\|u\|\|u'\|\,J_1(\cos\theta), \qquad
    \mathbb E[\mathbf 1\{\langle w,u\rangle>0\}\,\mathbf 1\{\langle w,u'\rangle>0\}]
        = \frac{J_0(\cos\theta)}{2\pi},

with the angular parts :math:`J_0(c) = \pi - \arccos c` and
:math:`J_1(c) = \sqrt{1-c^2} + (\pi - \arccos c)\,c`. The infinite-head RFA kernel
(:mod:`rfattn.rfa.kernels`), the ReLU NNGP/NTK recursion (:mod:`rfattn.ntk.analytic`) and the
ReLU random features (:mod:`rfattn.ntk.random_features`) all use these functions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..core.checks import positive_int

SNAP_ULPS = 8  # cosines this many epsilons from +-1 are +-1 (see arccos_angular_)


def arccos_angular_(cos: Tensor, keep_j0: bool = False) -> tuple[Tensor, Tensor | None]:
    r"""Angular parts of the arc-cosine kernels, computed in place on ``cos``.

    Parameters
    ----------
    cos : Tensor
        Cosines of the angles; clipped to [-1, 1] in place, then overwritten with
        :math:`J_1`. Large blocks therefore cost one temporary, not three. Cosines within
        ``SNAP_ULPS`` machine epsilons of +-1 are taken as exactly +-1: a cosine formed from
        rounded inner products and norms carries errors of that size, which arccos would
        amplify to :math:`\sqrt{2 \cdot \mathrm{eps}}` (1.5e-8 in float64) at equal or
        opposite inputs; the snapped angle is as accurate as the data allow, and exact there.
    keep_j0 : bool
        Also return :math:`J_0(c) = \pi - \arccos c` (a second tensor).

    Returns
    -------
    (Tensor, Tensor or None)
        :math:`J_1(c) = \sqrt{1-c^2} + (\pi-\arccos c)\,c` (the storage of ``cos``) and
        :math:`J_0(c)` or None.
    """
    cos = cos.clamp_(-1.0, 1.0)
    snap = SNAP_ULPS * torch.finfo(cos.dtype).eps
    cos.masked_fill_(cos >= 1.0 - snap, 1.0).masked_fill_(cos <= snap - 1.0, -1.0)
    j0 = torch.arccos(cos).neg_().add_(math.pi)
    j0_cos = j0 * cos if keep_j0 else j0.mul_(cos)
    j1 = cos.mul_(cos).neg_().add_(1.0).clamp_(min=0.0).sqrt_().add_(j0_cos)
    return j1, (j0 if keep_j0 else None)


def relu_arccos_kernel(inner: Tensor, sq_norm_product: Tensor, variance: float = 1.0) -> Tensor:
    r""":math:`\mathbb E[\mathrm{ReLU}\langle w,u\rangle\mathrm{ReLU}\langle w,u'\rangle]` for
    :math:`w\sim\mathcal N(0, s^2 I)` (the first-order arc-cosine kernel).

    Parameters
    ----------
    inner : Tensor
        :math:`\langle u, u'\rangle`, any shape.
    sq_norm_product : Tensor
        :math:`\|u\|^2\|u'\|^2`, broadcastable against ``inner``.
    variance : float
        The entry variance :math:`s^2` of w.

    Returns
    -------
    Tensor
        :math:`\frac{s^2}{2\pi}\|u\|\|u'\|\,J_1(\cos\theta)`; 0 where a norm is 0.
    """
    norm_product = sq_norm_product.sqrt()
    cos = inner / norm_product.clamp_min(torch.finfo(inner.dtype).tiny)
    j1, _ = arccos_angular_(cos)
    return j1.mul_(norm_product).mul_(variance / (2 * math.pi))


def rectified_gaussian_moment(a: Tensor, b: Tensor, rho: Tensor, nodes: int = 6) -> Tensor:
    r""":math:`R(a, b, \rho) = \mathbb E[(a+X)^+(b+Y)^+]` for standard normals X, Y with
    correlation :math:`\rho`: the rectified moment of a bivariate Gaussian with means a, b.

    Price's theorem, :math:`\partial_\rho^2 R = \varphi_2(a, b; \rho)` (the bivariate
    normal density), integrated twice from :math:`\rho = 0`, where X and Y are independent:

    .. math::
        R = m(a)\,m(b) + \rho\,\Phi(a)\Phi(b) + \frac{1}{2\pi}\int_0^{\arcsin\rho}
            (\rho - \sin\theta)\,
            e^{-(a^2 - 2ab\sin\theta + b^2)/(2\cos^2\theta)}\,d\theta,

    :math:`m(a) = a\Phi(a) + \varphi(a)` (the rectified mean). With :math:`r = \sin\theta`
    the integrand stays bounded up to :math:`|\rho| = 1`; Gauss-Legendre converges
    exponentially for :math:`|\rho|` away from 1 and algebraically at it. Measured against
    200 nodes for :math:`|a|, |b| \le 4`, absolute errors: 6 nodes 6e-8 for
    :math:`|\rho| \le 0.9` and 2.5e-5 at worst near :math:`|\rho| = 1`; 16 nodes 1.4e-7
    at worst. At a = b = 0 it is the arc-cosine kernel's :math:`J_1(\rho)/(2\pi)` (Cho and
    Saul 2009).

    Parameters
    ----------
    a, b : Tensor
        Means of the two pre-activations over their standard deviations (broadcastable).
    rho : Tensor
        Their correlation, clipped to [-1, 1].
    nodes : int
        Gauss-Legendre nodes.

    Returns
    -------
    Tensor
        R, of the broadcast shape.
    """
    nodes = positive_int("nodes", nodes)
    rho = rho.clamp(-1.0, 1.0)
    cdf = torch.special.ndtr

    def rectified_mean(t):
        return t * cdf(t) + torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)

    out = rectified_mean(a) * rectified_mean(b) + rho * (cdf(a) * cdf(b))
    return out.add_(_price_integral(a, b, rho, nodes))


def _price_integral(a: Tensor, b: Tensor, rho: Tensor, nodes: int) -> Tensor:
    """The integral term of :func:`rectified_gaussian_moment`, by Gauss-Legendre (three
    buffers, reused at every node: fresh temporaries cost more than the arithmetic)."""
    half_width = torch.asin(rho).mul_(0.5)
    minus_half_squares, ab = (a * a + b * b).mul_(-0.5), a * b
    x, w = np.polynomial.legendre.leggauss(nodes)
    integral = torch.zeros_like(half_width)
    sin, cos_squared, term = (torch.empty_like(half_width) for _ in range(3))
    for xk, wk in zip(x.tolist(), w.tolist()):
        torch.mul(half_width, 1.0 + xk, out=sin).sin_()
        torch.mul(sin, sin, out=cos_squared).neg_().add_(1.0)  # nodes stay off pi/2: accurate
        torch.addcmul(minus_half_squares, ab, sin, out=term).div_(cos_squared).exp_()
        integral.addcmul_(term, sin.neg_().add_(rho), value=wk)
    return integral.mul_(half_width).div_(2 * math.pi)


def gram_matrix(features: Tensor, blocks: int = 4) -> Tensor:
    r""":math:`\Phi\Phi^\top` from its upper block rows only (about 70% of the products).

    Parameters
    ----------
    features : Tensor
        (n, p) features, one row per sample.
    blocks : int
        Row blocks; block (i, j >= i) is computed, block (j, i) is its transpose.

    Returns
    -------
    Tensor
        The symmetric (n, n) Gram matrix.
    """
    n = features.shape[0]
    out = torch.zeros(n, n, dtype=features.dtype, device=features.device)
    return add_gram_(out, features, blocks=blocks)


def add_gram_(out: Tensor, features: Tensor, alpha: float = 1.0, blocks: int = 4) -> Tensor:
    r"""``out`` :math:`\mathrel{+}= \alpha\,\Phi\Phi^\top` in place, from the upper block rows
    (a temporary of one block row, n / blocks x n, instead of an n x n one).

    Parameters
    ----------
    out : Tensor
        (n, n), updated in place.
    features : Tensor
        (n, p) features, one row per sample.
    alpha : float
        Weight of the product.
    blocks : int
        Row blocks; block (i, j >= i) is computed, block (j, i) is its transpose.

    Returns
    -------
    Tensor
        ``out``.
    """
    n = features.shape[0]
    if out.shape != (n, n):
        raise ValueError(f"out must have shape ({n}, {n}) (got {tuple(out.shape)})")
    edges = [round(i * n / blocks) for i in range(blocks + 1)]
    for a, b in zip(edges[:-1], edges[1:]):
        block = features[a:b] @ features[a:].T
        if alpha != 1.0:
            block.mul_(alpha)
        out[a:b, a:] += block
        out[b:, a:b] += block[:, b - a:].T
    return out

