r"""The infinite-head kernel of softmax random-feature attention, deterministically, by a
Mehler-Hermite expansion [ours].

A head's query-key matrix W enters sample a only through :math:`u_a = W^\top\tilde x_0^a`
(the scores are :math:`s_{ai} = \langle\tilde x_i^a, u_a\rangle`). With entries
:math:`W_{pq}\sim\mathcal N(W_0, s^2)` (zero-mean heads: :math:`W_0 = 0`; biased heads,
Fu et al. 2023: :math:`W_0 = c\,\mathrm{blockdiag}(I_d, 0)`), :math:`u_a` is Gaussian with mean
:math:`\mu_a = W_0^\top\tilde x_0^a` and covariance :math:`\sigma_a^2 I`,
:math:`\sigma_a = s\|\tilde x_0^a\|`, and two samples' :math:`u` have the *isotropic* cross
correlation :math:`\rho_{ab} I`, :math:`\rho_{ab} = \cos(\tilde x_0^a, \tilde x_0^b)`. The
softmax ignores the common shift of the scores, so the feature

.. math:: f_a(z) = \sum_i \mathrm{softmax}_i\big(X_a(\mu_a + \sigma_a z)\big)\,\tilde x_i^a,
          \qquad z\sim\mathcal N(0, I_d),

depends on the first d coordinates only. Mehler's formula for correlated Gaussians turns the
2d-dimensional expectation of a pair into a sum over the Hermite coefficients of each sample,

.. math:: K(a, b) = \mathbb E[f_a(z)^\top f_b(z')] = \sum_{k\ge 0}\rho_{ab}^k
          \sum_{|\alpha| = k}\langle \hat f_{a,\alpha}, \hat f_{b,\alpha}\rangle,
          \qquad \hat f_{a,\alpha} = \mathbb E[f_a(z)\,h_\alpha(z)],

with :math:`h_\alpha = \prod_j \mathrm{He}_{\alpha_j}(z_j)/\sqrt{\alpha_j!}` the orthonormal
Hermite polynomials. The softmax is analytic, so the coefficients fall off fast:

- the coefficients of total degree at most ``degree`` come from a tensor Gauss-Hermite rule of
  ``nodes`` points per coordinate (``nodes**d`` points per sample), and the kernel is ``degree + 1``
  Gram products of them, summed in :math:`\rho` by Horner's rule;
- the truncation error of an entry is at most :math:`|\rho_{ab}|^{K+1}\sqrt{t_a t_b}` (Cauchy-
  Schwarz), with :math:`t_a = \mathbb E\|f_a\|^2 - \sum_{|\alpha|\le K}\|\hat f_{a,\alpha}\|^2`
  from the same rule; the returned bound is their Frobenius norm relative to the kernel's;
- the diagonal of a Gram matrix (:math:`\rho = 1`, where the series converges slowest) is the
  rule's :math:`\mathbb E\|f_a\|^2` itself, without truncation (2-3x closer to the converged
  value than the truncated series on the lab's tokens).

Gauss-Hermite rules converge only root-exponentially for a function analytic in a strip, as
the softmax is, so the entries closest to the diagonal carry the largest error.

On the lab's tokens (d = N = 4, sphere, :math:`s^2 = 1/4`, 256 samples) degree 6 with 8 nodes
is within 9.1e-7 (relative Frobenius) of the degree-14 kernel on 16 nodes, with a bound of
2.2e-6, and within 3e-5 entrywise (64 samples); degree 4 with 6 nodes within 7.5e-6.
``benchmarks/bench_attention_kernel.py`` times it against Monte Carlo. The rule has
``nodes**d`` points, so the expansion is for small d (at most :data:`MAX_GRID_POINTS` points
per sample); beyond that,
:func:`~rfattn.rfa.softmax_kernel.softmax_attention_kernel` estimates the kernel by Monte Carlo.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..core.checks import ConfigError, nonnegative_int, positive, positive_int, real
from ..linalg.blocks import block_rows
from .sampling import augment, check_tokens

MAX_GRID_POINTS = 2**16  # Gauss-Hermite points per sample (nodes**d)
DEGREE = 6  # default total degree of the expansion
NODES = 8  # default Gauss-Hermite nodes per coordinate


def grid_fits(d: int, nodes: int = NODES) -> bool:
    """Whether the tensor rule of ``nodes`` points per coordinate in d dimensions has at most
    :data:`MAX_GRID_POINTS` points (else the kernel is left to Monte Carlo)."""
    return nodes**d <= MAX_GRID_POINTS


def check_hermite_grid(d: int, degree: int, nodes: int) -> tuple[int, int]:
    """``degree`` >= 0 and ``nodes`` >= ``degree + 2``, with ``nodes**d`` at most
    :data:`MAX_GRID_POINTS`; one line otherwise. With fewer nodes the rule's aliasing error
    of the coefficients reaches their truncation bound (on the lab's tokens, degree 6 with 7
    nodes is 2.4e-6 off, its bound 2.0e-6; with 8 nodes 0.9e-6, bound 2.2e-6)."""
    degree = nonnegative_int("degree", degree)
    nodes = positive_int("nodes", nodes)
    if nodes < degree + 2:
        raise ConfigError(f"nodes must be >= degree + 2 = {degree + 2} (with fewer, the "
                          f"quadrature error exceeds the truncation bound; got {nodes})")
    if not grid_fits(d, nodes):
        raise ConfigError(f"nodes**d must be <= {MAX_GRID_POINTS} Gauss-Hermite points per "
                          f"sample (got {nodes}**{d} = {nodes**d}): use fewer nodes, or the "
                          "Monte Carlo softmax_attention_kernel at this d")
    return degree, nodes


def hermite_basis(d: int, degree: int, nodes: int, dtype=torch.float64, device="cpu"
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The tensor Gauss-Hermite rule of the standard Gaussian in d dimensions and the
    orthonormal Hermite polynomials of total degree at most ``degree`` on it.

    Returns
    -------
    (Tensor, Tensor, Tensor, Tensor)
        Points (P, d), weights (P,) summing to 1, the weighted basis (P, B) with columns
        :math:`w_p h_\alpha(z_p)` ordered by total degree, and each column's degree (B,).
    """
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    z, w = torch.tensor(z, dtype=torch.float64), torch.tensor(w / w.sum(), dtype=torch.float64)
    one_dimensional = torch.empty(degree + 1, nodes, dtype=torch.float64)  # h_k(z_j)
    one_dimensional[0] = 1.0
    for k in range(1, degree + 1):
        previous = one_dimensional[k - 2] * math.sqrt(k - 1) if k > 1 else 0.0
        one_dimensional[k] = (z * one_dimensional[k - 1] - previous) / math.sqrt(k)
    index = torch.cartesian_prod(*[torch.arange(nodes)] * d).reshape(-1, d)
    alphas = torch.cartesian_prod(*[torch.arange(degree + 1)] * d).reshape(-1, d)
    degrees = alphas.sum(1)
    alphas = alphas[degrees <= degree][torch.argsort(degrees[degrees <= degree], stable=True)]
    weights = w[index].prod(1)
    basis = weights.repeat(alphas.shape[0], 1)  # (B, P)
    for j in range(d):
        basis.mul_(one_dimensional[alphas[:, j]][:, index[:, j]])
    convert = dict(dtype=dtype, device=device)
    return (z[index].to(**convert), weights.to(**convert), basis.T.to(**convert),
            alphas.sum(1).to(device))


def hermite_coefficients(x0: Tensor, X: Tensor, variance: float, c: float, degree: int,
                         nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    r"""The Hermite coefficients :math:`\hat f_{a,\alpha}` of every sample's softmax feature
    (module docstring) and :math:`\mathbb E\|f_a\|^2`, by the tensor Gauss-Hermite rule.

    Returns
    -------
    (Tensor, Tensor, Tensor)
        Coefficients (n, B, d+1) (B multi-indices, ordered by total degree), the number of
        multi-indices of each degree (degree + 1,) and the second moments (n,).
    """
    n, N, d = X.shape
    points, weights, basis, degrees = hermite_basis(d, degree, nodes, X.dtype, X.device)
    keys = augment(X)
    sigma = math.sqrt(variance) * augment(x0).norm(dim=1)
    centre = torch.einsum("nid,nd->ni", X, x0) * c  # scores of the mean u: c <x_i, x_0>
    coefficients = torch.empty(n, basis.shape[1], d + 1, dtype=X.dtype, device=X.device)
    moments = torch.empty(n, dtype=X.dtype, device=X.device)
    step = block_rows(2 * X.element_size() * N * points.shape[0], None, X.device)
    for s in range(0, n, step):
        e = min(s + step, n)
        scores = (X[s:e] @ points.T).mul_(sigma[s:e, None, None]).add_(centre[s:e, :, None])
        attention = torch.softmax(scores, dim=1)  # over keys: (b, N, P)
        features = keys[s:e].transpose(1, 2) @ attention  # (b, d+1, P)
        moments[s:e] = (features * features).sum(1) @ weights
        coefficients[s:e] = (features @ basis).transpose(1, 2)
    return coefficients, torch.bincount(degrees, minlength=degree + 1), moments


def hermite_softmax_kernel(x0a: Tensor, Xa: Tensor, x0b: Tensor | None = None,
                           Xb: Tensor | None = None, variance: float = 0.25, c: float = 0.0,
                           degree: int = DEGREE, nodes: int = NODES) -> tuple[Tensor, float]:
    r"""The infinite-head kernel of softmax attention with zero-mean (``c = 0``) or biased
    heads, by the Mehler-Hermite expansion (module docstring), with its truncation bound.

    Parameters
    ----------
    x0a, Xa : Tensor
        Queries (na, d) and keys (na, N, d).
    x0b, Xb : Tensor, optional
        A second sample (None: the symmetric Gram matrix of the first, whose diagonal is
        the quadrature of :math:`\mathbb E\|f_a\|^2`).
    variance : float
        Entry variance :math:`s^2` of the heads, > 0.
    c : float
        Bias scale of biased heads (:func:`~rfattn.rfa.sample_query_key`); 0 for zero-mean.
    degree : int
        Total degree K of the expansion, >= 0.
    nodes : int
        Gauss-Hermite nodes per coordinate, >= ``degree + 2``; ``nodes**d`` at most
        :data:`MAX_GRID_POINTS`.

    Returns
    -------
    (Tensor, float)
        The kernel (na, nb), and the Frobenius norm of the entrywise truncation bounds
        :math:`|\rho_{ab}|^{K+1}\sqrt{t_a t_b}` (0 on a Gram matrix's diagonal) over that of
        the kernel.
    """
    check_tokens(x0a, Xa)
    variance = positive("variance", variance)
    c = real("c", c)
    degree, nodes = check_hermite_grid(x0a.shape[1], degree, nodes)
    symmetric = x0b is None
    if not symmetric:
        check_tokens(x0b, Xb, x0a.shape[1])

    def side(x0: Tensor, X: Tensor):
        """Unit queries, the coefficients of each degree (views), second moments and tails."""
        coefficients, counts, moments = hermite_coefficients(x0, X, variance, c, degree, nodes)
        ends = counts.cumsum(0).tolist()
        by_degree = [coefficients[:, end - count:end].flatten(1)
                     for end, count in zip(ends, counts.tolist())]
        tails = (moments - (coefficients * coefficients).sum((1, 2))).clamp_(min=0.0).sqrt_()
        queries = augment(x0)
        return queries / queries.norm(dim=1, keepdim=True), by_degree, moments, tails

    qa, fa, moments_a, tails_a = side(x0a, Xa)
    qb, fb, _, tails_b = (qa, fa, moments_a, tails_a) if symmetric else side(x0b, Xb)
    kernel = torch.empty(qa.shape[0], qb.shape[0], dtype=qa.dtype, device=qa.device)
    bound_squared = 0.0
    step = block_rows(2 * qa.element_size() * qb.shape[0], 64 * 2**20, qa.device)
    for s in range(0, qa.shape[0], step):
        e = min(s + step, qa.shape[0])
        rho = qa[s:e] @ qb.T
        block = torch.zeros_like(rho)
        for k in range(degree, -1, -1):  # Horner's rule in rho
            block.mul_(rho).add_(fa[k][s:e] @ fb[k].T)
        kernel[s:e] = block
        bound = rho.abs_().pow_(degree + 1).mul_(tails_a[s:e, None] * tails_b[None])
        if symmetric:
            bound[:, s:e].diagonal().zero_()
        bound_squared += float((bound * bound).sum())
    if symmetric:
        kernel.diagonal().copy_(moments_a)
    scale = float(kernel.norm())
    return kernel, math.sqrt(bound_squared) / scale if scale > 0 else math.inf
