r"""The infinite-head kernel of zero-mean softmax random-feature attention, with a control variate.

Softmax attention has no closed-form infinite-head kernel: it is an expectation over a
:math:`2N`-dimensional Gaussian (the scores of two samples' keys). Plain Monte Carlo over M
heads (:func:`~rfattn.rfa.monte_carlo_attention_kernel`) has a relative error of about
:math:`0.1/\sqrt{M}` on the lab's tokens. This module removes most of that error [ours]:

- **Control variate.** The softmax of the centred scores :math:`c = s - \bar s` is replaced by
  its second-order Taylor polynomial at :math:`c = 0`,

  .. math:: P_i(c) = \frac1N + \frac{c_i}{N} + \frac{1}{2N}\Big(c_i^2
            - \frac1N\sum_j c_j^2\Big) \qquad (\textstyle\sum_i P_i = 1),

  giving features :math:`\psi_m = \sum_i P_i\,\tilde x_i` beside :math:`\phi_m = \sum_i
  \mathrm{softmax}_i\,\tilde x_i`. The kernel of :math:`\psi` has a closed form
  (:func:`taylor_softmax_kernel`), and the estimate is
  :math:`\frac1M\sum_m(\phi_m\phi_m'^\top - \psi_m\psi_m'^\top) + K_\psi`.
- **Antithetic heads.** Each head W comes with -W (the zero-mean Gaussian is symmetric): the
  odd orders of the residual :math:`\phi\phi' - \psi\psi'` cancel within a pair.
- **Quasi-random heads** (``sampler="sobol"``, an option). Each draw's heads come from one
  scrambled Sobol sequence in the :math:`(d+1)^2` entries of W, mapped to the Gaussian by its
  inverse CDF (randomized quasi-Monte Carlo, Owen 1997): each draw is still an unbiased
  estimate, the draws are independent, and the points of one draw cover the Gaussian more
  evenly than i.i.d. heads. On the lab's tokens (d = N = 4, 4096 heads in draws of 512) the
  relative error falls from 7.2e-4 to 4.0e-4 at equal heads and about equal time.

The estimate stays unbiased; its error is measured from the spread of the per-draw kernels, as
for plain Monte Carlo (:func:`softmax_attention_kernel`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.checks import ConfigError, choice, positive, positive_int
from ..core.runtime import generator
from ..linalg.blocks import block_rows
from .features import RandomFeatureAttention
from .kernels import monte_carlo_attention_kernel
from .sampling import augment, check_tokens, sample_query_key


def taylor_softmax_features(rfa: RandomFeatureAttention, x0: Tensor, X: Tensor) -> Tensor:
    r"""The control features :math:`\psi`: the heads of ``rfa`` with the softmax over keys
    replaced by its second-order Taylor polynomial in the centred scores (module docstring),
    scaled like :meth:`RandomFeatureAttention.features` (:math:`1/\sqrt M`).

    Parameters
    ----------
    rfa : RandomFeatureAttention
        The heads (any activation: only their matrices are used).
    x0, X : Tensor
        Queries (n, d) and keys (n, N, d).

    Returns
    -------
    Tensor
        (n, M (d+1)).
    """
    check_tokens(x0, X, rfa.W.shape[1] - 1)
    x0, X = x0.to(rfa.W), X.to(rfa.W)
    M, q = rfa.W.shape[0], rfa.W.shape[1]
    n, N = X.shape[:2]
    keys = augment(X)
    step = block_rows(x0.element_size() * M * max(q, N), None, rfa.W.device)
    out = torch.empty(n, M * q, dtype=rfa.W.dtype, device=rfa.W.device)
    for s in range(0, n, step):
        scores = torch.einsum("bmq,biq->bmi", torch.einsum("bp,mpq->bmq", augment(x0[s:s + step]),
                                                           rfa.W), keys[s:s + step])
        c = scores - scores.mean(-1, keepdim=True)
        square = c * c
        weights = (1.0 + c + 0.5 * (square - square.mean(-1, keepdim=True))) / N
        out[s:s + step] = torch.einsum("bmi,biq->bmq", weights, keys[s:s + step]).reshape(
            -1, M * q)
    return out.mul_(M ** -0.5)


def taylor_softmax_kernel(x0a: Tensor, Xa: Tensor, x0b: Tensor | None = None,
                          Xb: Tensor | None = None, variance: float = 0.25) -> Tensor:
    r"""The infinite-head kernel of the control features :math:`\psi`, in closed form, (na, nb).

    With zero-mean heads of entry variance :math:`s^2`, the centred scores of two samples are
    jointly Gaussian, :math:`\mathrm{Cov}(c, c') = C = s^2\langle\tilde x_0,\tilde x_0'\rangle
    \,\tilde A\tilde B^\top` (:math:`\tilde A`: the augmented keys minus their mean, N x (d+1)).
    Isserlis' theorem gives

    .. math:: K_\psi = \langle \mu, \mu'\rangle + \frac{1}{N^2}\sum_{ij} G_{ij} C_{ij}
              + \frac{1}{2N^2}\sum_{ij} G_{ij}\Big(C_{ij}^2 - \frac{(CC^\top)_{ii}
              + (C^\top C)_{jj}}{N} + \frac{\|C\|_F^2}{N^2}\Big),

    :math:`G_{ij} = \langle\tilde x_i, \tilde x_j'\rangle`, :math:`\mu = \sum_i \mathbb E[P_i]
    \tilde x_i`, :math:`\mathbb E[P_i] = (1 + (C^{aa}_{ii} - \mathrm{tr}\,C^{aa}/N)/2)/N`.

    Parameters
    ----------
    x0a, Xa : Tensor
        Queries (na, d) and keys (na, N, d).
    x0b, Xb : Tensor, optional
        A second sample (default: the first).
    variance : float
        Entry variance :math:`s^2` of the heads.

    Returns
    -------
    Tensor
        (na, nb).
    """
    check_tokens(x0a, Xa)
    positive("variance", variance)
    if x0b is None:
        x0b, Xb = x0a, Xa
    check_tokens(x0b, Xb, x0a.shape[1])
    qa, qb = augment(x0a), augment(x0b)
    ka, kb = augment(Xa), augment(Xb)
    N = ka.shape[1]
    ca, cb = ka - ka.mean(1, keepdim=True), kb - kb.mean(1, keepdim=True)

    def mean_features(q, k, c):
        own = variance * (q * q).sum(1)[:, None] * (c * c).sum(-1)  # C^{aa}_ii
        expected = (1.0 + 0.5 * (own - own.mean(1, keepdim=True))) / N
        return torch.einsum("ni,niq->nq", expected, k)

    # Every sum over key pairs is an inner product of per-sample features (sums over keys of
    # outer products), so the kernel is a few matrix products, scaled by rho and rho^2.
    def sums(k, c):
        first = k.sum(1)  # sum_i x_i, (n, q)
        square = torch.einsum("nip,niq->npq", c, c).flatten(1)  # S = sum_i c_i c_i^T
        pairs = torch.einsum("nip,niq->npq", k, c).flatten(1)  # sum_i x_i c_i^T
        triples = torch.einsum("nip,niq,nir->npqr", k, c, c).flatten(1)  # sum_i x_i c_i c_i
        spread = torch.einsum("np,nq->npq", first, square).flatten(1)  # (sum_i x_i) S
        return first, square, pairs, triples, spread

    fa, sa, pa, ta, ha = sums(ka, ca)
    fb, sb, pb, tb, hb = sums(kb, cb)
    means_a, means_b = mean_features(qa, ka, ca), mean_features(qb, kb, cb)
    out = torch.empty(qa.shape[0], qb.shape[0], dtype=qa.dtype, device=qa.device)
    step = block_rows(4 * x0a.element_size() * qb.shape[0], None, x0a.device)
    for s in range(0, qa.shape[0], step):
        e = min(s + step, qa.shape[0])
        rho = variance * (qa[s:e] @ qb.T)
        fourth = (ta[s:e] @ tb.T - (ta[s:e] @ hb.T + ha[s:e] @ tb.T) / N
                  + (sa[s:e] @ sb.T) * (fa[s:e] @ fb.T) / N**2)
        out[s:e] = (means_a[s:e] @ means_b.T + rho * (pa[s:e] @ pb.T) / N**2
                    + rho * rho * fourth / (2 * N**2))
    return out


def antithetic_heads(M: int, d: int, gen: torch.Generator, variance: float = 0.25,
                     dtype: torch.dtype = torch.float64, device="cpu") -> RandomFeatureAttention:
    """M zero-mean softmax heads in antithetic pairs: ceil(M/2) drawn matrices W, then -W
    (the last one left out when M is odd)."""
    M = positive_int("M", M)
    W = sample_query_key(-(-M // 2), d, gen, "zero", variance, 0.0, dtype, device)
    return RandomFeatureAttention(torch.cat([W, -W])[:M], "softmax")


def sobol_heads(M: int, d: int, seed: int, variance: float = 0.25,
                dtype: torch.dtype = torch.float64, device="cpu") -> RandomFeatureAttention:
    """M zero-mean softmax heads in antithetic pairs whose ceil(M/2) matrices W are the first
    points of one scrambled Sobol sequence (``seed``) in the (d+1)^2 entries, mapped to
    N(0, variance) by the inverse normal CDF."""
    M = positive_int("M", M)
    q, half = d + 1, -(-M // 2)
    engine = torch.quasirandom.SobolEngine(q * q, scramble=True, seed=seed)
    u = engine.draw(half, dtype=torch.float64).clamp_(1e-16, 1 - 1e-16)
    W = (math.sqrt(2 * variance) * torch.erfinv(2 * u - 1)).reshape(half, q, q)
    return RandomFeatureAttention(torch.cat([W, -W])[:M].to(dtype=dtype, device=device),
                                  "softmax")


SAMPLERS = ("iid", "sobol")


def softmax_attention_kernel(x0a: Tensor, Xa: Tensor, x0b: Tensor | None = None,
                             Xb: Tensor | None = None, variance: float = 0.25,
                             total_heads: int = 1024, seed: int = 0,
                             heads_per_draw: int = 128,
                             error_rows: int | None = None,
                             sampler: str = "iid") -> tuple[Tensor, Tensor]:
    r"""The infinite-head kernel of zero-mean softmax attention: antithetic heads and the Taylor
    control variate (module docstring), with the entrywise standard error of the estimate.

    Parameters
    ----------
    x0a, Xa : Tensor
        Queries (na, d) and keys (na, N, d).
    x0b, Xb : Tensor, optional
        A second sample (None: the symmetric Gram matrix of the first).
    variance : float
        Entry variance of the heads.
    total_heads : int
        Heads in all (both members of each antithetic pair count).
    seed : int
        Seed of the heads (stream ``(seed, "softmax-kernel", draw)``).
    heads_per_draw : int
        Heads per draw; the error comes from the spread of the per-draw kernels.
    error_rows : int, optional
        Rows whose standard error is estimated (default: all).
    sampler : str
        ``iid`` (Gaussian heads, the default) or ``sobol`` (one scrambled Sobol sequence per
        draw; ``heads_per_draw`` a power of two >= 2).

    Returns
    -------
    (Tensor, Tensor)
        The kernel (na, nb) and the entrywise standard error of its first ``error_rows`` rows.
    """
    d = x0a.shape[1]
    choice("sampler", sampler, SAMPLERS)
    if sampler == "sobol" and (heads_per_draw < 2 or heads_per_draw & (heads_per_draw - 1)):
        raise ConfigError("heads_per_draw must be a power of two >= 2 with sampler=sobol (a "
                          f"Sobol sequence is balanced at powers of two; got {heads_per_draw})")

    def heads(m: int, draw: int) -> RandomFeatureAttention:
        stream = generator(seed, "softmax-kernel", draw)
        if sampler == "sobol":
            scramble = int(torch.randint(2**62, (1,), generator=stream))
            return sobol_heads(m, d, scramble, variance, x0a.dtype, x0a.device)
        return antithetic_heads(m, d, stream, variance, x0a.dtype, x0a.device)

    residual, stderr = monte_carlo_attention_kernel(
        x0a, Xa, x0b, Xb, heads, total_heads, heads_per_draw, error_rows,
        control=taylor_softmax_features)
    return residual.add_(taylor_softmax_kernel(x0a, Xa, x0b, Xb, variance)), stderr


def relative_error(kernel: Tensor, stderr: Tensor) -> float:
    """The Frobenius norm of the standard errors relative to that of the kernel's same rows."""
    scale = float(kernel[:stderr.shape[0]].norm())
    return float(stderr.norm()) / scale if scale > 0 else math.inf
