r"""What the low-rank and pruning study measures (Li, Wang, Zhang, Liu, Chen, arXiv 2406.17167).

- Spectra of the updates :math:`\Delta W = W(T) - W(0)`: singular values over the largest,
  numerical rank :math:`\#\{i: \sigma_i \ge \mathrm{tol}\,\sigma_1\}`, stable rank
  :math:`\|\Delta W\|_F^2 / \|\Delta W\|_2^2` and effective rank :math:`\exp H(p)`,
  :math:`p_i = \sigma_i / \sum_j \sigma_j` (Roy and Vetterli 2007).
- Energy share on the label-relevant span :math:`\|\Delta W P\|_F^2 / \|\Delta W\|_F^2`,
  :math:`P` the projector on :math:`\mathrm{span}\{\mu_1..\mu_{2K}\}` (input side).
- Rank-r truncation :math:`W(0) + [\Delta W]_r` (Eckart-Young best rank-r approximation).
- Pruning of rows ("neurons") of :math:`W_O` by row norm: small-first, large-first or random,
  ranked within each sign group of ``a`` (``sign``: the same share of each group) or globally.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..core.checks import ConfigError, choice, real

ORDERS = ("small", "large", "random")
RANKINGS = ("sign", "global")


def normalized_spectrum(dW: torch.Tensor) -> torch.Tensor:
    """Singular values over the largest, per seed.

    Parameters
    ----------
    dW : Tensor
        Matrices, (S, out, in).

    Returns
    -------
    Tensor
        (S, min(out, in)), decreasing.
    """
    s = torch.linalg.svdvals(dW)
    return s / s[..., :1].clamp_min(torch.finfo(s.dtype).tiny)


def numerical_rank(dW: torch.Tensor, tol: float) -> torch.Tensor:
    """Numerical rank: the number of singular values at least ``tol`` times the largest.

    Parameters
    ----------
    dW : Tensor
        Matrices, (S, out, in).
    tol : float
        Relative threshold in (0, 1).

    Returns
    -------
    Tensor
        (S,), 0 for a zero matrix.
    """
    real("rank_tol", tol, low=0.0, high=1.0, low_open=True)
    s = torch.linalg.svdvals(dW)
    return ((s >= tol * s[..., :1]) & (s[..., :1] > 0)).sum(-1)


def stable_rank(dW: torch.Tensor) -> torch.Tensor:
    r"""Stable rank :math:`\|\Delta W\|_F^2 / \sigma_1^2`, between 1 and the rank.

    Parameters
    ----------
    dW : Tensor
        Matrices, (S, out, in).

    Returns
    -------
    Tensor
        (S,).
    """
    s = torch.linalg.svdvals(dW)
    return (s**2).sum(-1) / (s[..., 0] ** 2)


def effective_rank(dW: torch.Tensor) -> torch.Tensor:
    r"""Entropy (effective) rank :math:`\exp(-\sum_i p_i \log p_i)`, :math:`p = \sigma / \sum\sigma`
    (Roy and Vetterli 2007).

    Parameters
    ----------
    dW : Tensor
        Matrices, (S, out, in).

    Returns
    -------
    Tensor
        (S,).
    """
    s = torch.linalg.svdvals(dW)
    p = s / s.sum(-1, keepdim=True)
    return torch.exp(-(torch.xlogy(p, p)).sum(-1))


def span_energy(dW: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    r"""Share of an update's energy on a subspace,
    :math:`\|\Delta W P\|_F^2 / \|\Delta W\|_F^2`, with P the projection on the rows of
    ``basis``.

    Parameters
    ----------
    dW : Tensor
        Updates acting on :math:`\mathbb R^d` from the right, (S, out, d).
    basis : Tensor
        Orthonormal rows, (k, d).

    Returns
    -------
    Tensor
        (S,), in [0, 1].
    """
    projected = dW @ basis.T
    return (projected**2).sum((-1, -2)) / (dW**2).sum((-1, -2))


def truncate(dW: torch.Tensor, r: int) -> torch.Tensor:
    """Best rank-r approximation of each matrix of the batch (Eckart-Young).

    Parameters
    ----------
    dW : Tensor
        Matrices, (S, out, in).
    r : int
        Rank, >= 0 (0 gives zero).

    Returns
    -------
    Tensor
        (S, out, in).
    """
    if r < 0:
        raise ConfigError(f"r must be an integer >= 0 (got {r})")
    if r == 0:
        return torch.zeros_like(dW)
    U, s, Vh = torch.linalg.svd(dW, full_matrices=False)
    r = min(r, s.shape[-1])
    return (U[..., :r] * s[..., None, :r]) @ Vh[..., :r, :]


def prune_mask(row_norms: torch.Tensor, a: torch.Tensor, rate: float, order: str,
               ranking: str, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
    """Keep-mask removing ``rate`` of the rows of :math:`W_O` (Li et al. 2024, magnitude pruning).

    Parameters
    ----------
    row_norms : Tensor
        Norms of the rows of :math:`W_O`, (S, m).
    a : Tensor
        The head's signs, (m,).
    rate : float
        Share of rows removed, in [0, 1].
    order : str
        ``small`` (smallest norms first), ``large`` or ``random``.
    ranking : str
        ``sign``: remove ``floor(rate * |group|)`` rows from each sign group of ``a``;
        ``global``: ``floor(rate * m)`` rows over all of them.
    generators : sequence of torch.Generator, optional
        One per seed, for ``random``.

    Returns
    -------
    Tensor
        (S, m), 1.0 for kept rows and 0.0 for removed ones.
    """
    rate = real("rate", rate, low=0.0, high=1.0)
    choice("order", order, ORDERS)
    choice("ranking", ranking, RANKINGS)
    S, m = row_norms.shape
    if order == "random":
        if generators is None or len(generators) != S:
            raise ConfigError(f"random pruning needs one generator per seed ({S})")
        score = torch.stack([torch.rand(m, generator=g, dtype=torch.float64)
                             for g in generators]).to(row_norms.device)
    else:
        score = row_norms if order == "small" else -row_norms
    keep = torch.ones(S, m, dtype=torch.bool, device=row_norms.device)
    groups = [a > 0, a < 0] if ranking == "sign" else [torch.ones_like(a, dtype=torch.bool)]
    for group in groups:
        members = group.nonzero().flatten()
        n_drop = int(rate * len(members) + 1e-9)
        if n_drop:
            drop = members[torch.argsort(score[:, members], dim=1)[:, :n_drop]]
            keep.scatter_(1, drop, False)
    return keep
