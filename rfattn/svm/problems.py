r"""Att-SVM constraint systems (Tarzanagh, Li, Thrampoulidis, Oymak 2023, arXiv 2308.16898;
Tarzanagh, Li, Zhang, Oymak, NeurIPS 2023, arXiv 2306.13596).

For data :math:`(Y_i, X_i, z_i)`, :math:`X_i \in \mathbb{R}^{N \times d}` (N tokens: the
paper's T), and a token selection
:math:`\alpha`, the Att-SVM constraints are

.. math:: (x_{i\alpha_i} - x_{it})^\top W z_i \ge 1 \quad \text{for all } i,\ t \ne \alpha_i,

linear in :math:`W`: row :math:`a_{it} = \mathrm{vec}((x_{i\alpha_i} - x_{it}) z_i^\top)` of a
matrix ``A`` with :math:`A\,\mathrm{vec}(W) \ge 1` (row-major ``vec``). Sequence-to-sequence
attention has one block per query position k (:math:`z = x_{ik}`, selection
:math:`\alpha_{ik}`); causal attention keeps keys :math:`t \le k` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.checks import ConfigError, choice

ATTENTIONS = ("cross", "self", "seq2seq", "causal")


def _finite(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ConfigError(f"{name} holds NaN or inf entries")
    return x


@dataclass(frozen=True)
class AttSVMProblem:
    r"""The constraint system :math:`A\,\mathrm{vec}(W) \ge 1` of an Att-SVM and where each row
    comes from (Tarzanagh et al. 2023, eq. Att-SVM).

    Parameters
    ----------
    A : ndarray
        Constraint rows, (m, d*d).
    rows : ndarray
        ``rows[j] = (i, k, t)``: sample i, query position k (0 for cross and self attention),
        non-selected token t; (m, 3).
    shape : (int, int)
        The shape of W.
    left, right : ndarray, optional
        A rank-one factorization of every row, :math:`A_j = \mathrm{left}_j
        \mathrm{right}_j^\top` (token gap :math:`x_{i\alpha_i} - x_{it}` and query
        :math:`z_i`); the nuclear solver builds its Schur complement from them in
        :math:`O(m^2 d)`.
    """

    A: np.ndarray
    rows: np.ndarray
    shape: tuple[int, int]
    left: np.ndarray | None = None
    right: np.ndarray | None = None

    @property
    def n_constraints(self) -> int:
        return self.A.shape[0]

    def margins(self, W: np.ndarray) -> np.ndarray:
        """:math:`A\\,\\mathrm{vec}(W)`: one margin per constraint."""
        return self.A @ np.asarray(W, dtype=np.float64).reshape(-1)


def check_data(X, z=None, attention: str = "cross") -> tuple[np.ndarray, np.ndarray]:
    """Validate tokens (n, N, d) and queries (n, d); returns them as float64 arrays."""
    choice("attention", attention, ATTENTIONS)
    X = _finite("X", X)
    if X.ndim != 3:
        raise ConfigError(f"X must have shape (n, N, d) (got {X.shape})")
    n, N, d = X.shape
    if n < 1 or d < 1:
        raise ConfigError(f"X must hold at least one sample and one feature (got {X.shape})")
    if N < 2:
        raise ConfigError(f"N (tokens) must be >= 2: with one token there is nothing to select "
                          f"(got {N})")
    if attention == "cross":
        if z is None:
            raise ConfigError("cross attention needs queries z of shape (n, d)")
        z = _finite("z", z)
        if z.shape != (n, d):
            raise ConfigError(f"z must have shape (n, d) = {(n, d)} (got {z.shape})")
    else:
        if z is not None:
            raise ConfigError(f"{attention} attention takes its queries from X; pass z=None")
        z = X[:, 0]
    if (np.abs(z).sum(axis=-1) == 0).any():
        bad = int(np.flatnonzero(np.abs(z).sum(axis=-1) == 0)[0])
        raise ConfigError(f"query z[{bad}] is zero: no W can separate its tokens")
    return X, z


def token_scores(X, Y, v) -> np.ndarray:
    r"""Token scores :math:`\gamma_{it} = Y_i\, v^\top x_{it}`.

    Parameters
    ----------
    X : array_like
        Tokens, (n, N, d).
    Y : array_like
        Labels :math:`\pm 1`, (n,).
    v : array_like
        Head, (d,).

    Returns
    -------
    ndarray
        (n, N).
    """
    X, Y, v = _finite("X", X), _finite("Y", Y), _finite("v", v)
    if Y.shape != X.shape[:1] or v.shape != X.shape[2:]:
        raise ConfigError(f"Y must have shape (n,) = {X.shape[:1]} and v shape (d,) = "
                          f"{X.shape[2:]} (got {Y.shape} and {v.shape})")
    return Y[:, None] * (X @ v)


def optimal_selection(X, Y, v) -> np.ndarray:
    r"""Globally optimal tokens :math:`\mathrm{opt}_i = \arg\max_t \gamma_{it}`.

    Parameters
    ----------
    X : array_like
        Tokens, (n, N, d).
    Y : array_like
        Labels :math:`\pm 1`, (n,).
    v : array_like
        Head, (d,).

    Returns
    -------
    ndarray of int
        (n,).
    """
    return np.argmax(token_scores(X, Y, v), axis=1)


def _selection(alpha, shape: tuple[int, ...], N: int) -> np.ndarray:
    alpha = np.asarray(alpha)
    if alpha.shape != shape or not np.issubdtype(alpha.dtype, np.integer):
        raise ConfigError(f"alpha must be integers of shape {shape} (got {alpha.shape}, "
                          f"{alpha.dtype})")
    if (alpha < 0).any() or (alpha >= N).any():
        raise ConfigError(f"alpha must lie in [0, N-1] = [0, {N - 1}] (got values "
                          f"{alpha.min()}..{alpha.max()})")
    return alpha


def constraints(X, alpha, z=None, attention: str = "cross") -> AttSVMProblem:
    r"""The Att-SVM constraint system for the selection ``alpha``.

    Row (i, k, t) is :math:`(x_{i\alpha_{ik}} - x_{it})^\top W z_{ik} \ge 1` for every
    non-selected token t. Duplicate tokens equal to the selected one give a zero row, which makes
    the problem infeasible (reported by the solvers), never a crash.

    Parameters
    ----------
    X : array_like
        Tokens, (n, N, d).
    alpha : array_like of int
        Selected tokens: (n,) for cross and self attention; (n, N) for seq2seq and causal (one
        per query position; causal requires ``alpha[i, k] <= k``).
    z : array_like, optional
        Queries (n, d) for cross attention; self, seq2seq and causal attention use the tokens.
    attention : str
        ``cross``, ``self``, ``seq2seq`` or ``causal``.

    Returns
    -------
    AttSVMProblem
    """
    X, z = check_data(X, z, attention) if attention in ("cross", "self") else (
        check_data(X, None, "self")[0], None)
    n, N, d = X.shape
    gaps, queries_of_rows, rows = [], [], []
    if attention in ("cross", "self"):
        alpha = _selection(alpha, (n,), N)
        queries = [(0, z)]
        select = alpha[:, None]
    else:
        alpha = _selection(alpha, (n, N), N)
        if attention == "causal" and (alpha > np.arange(N)).any():
            raise ConfigError("causal attention: alpha[i, k] must be <= k (a query sees keys "
                              "up to its own position)")
        queries = [(k, X[:, k]) for k in range(N)]
        select = alpha
    for k, zk in queries:
        if not np.abs(zk).sum(axis=-1).all():
            raise ConfigError(f"query of position {k} is zero for some sample: no W separates "
                              "its tokens")
        chosen = select[:, k if select.shape[1] > 1 else 0]
        sel = X[np.arange(n), chosen]  # (n, d)
        keys = range(k + 1) if attention == "causal" else range(N)
        for t in keys:
            mask = chosen != t
            gaps.append((sel - X[:, t])[mask])
            queries_of_rows.append(zk[mask])
            idx = np.flatnonzero(mask)
            rows.append(np.stack([idx, np.full_like(idx, k), np.full_like(idx, t)], 1))
    if not rows:
        empty = np.zeros((0, d))
        return AttSVMProblem(np.zeros((0, d * d)), np.zeros((0, 3), dtype=int), (d, d),
                             empty, empty)
    R = np.concatenate(rows)
    order = np.lexsort((R[:, 2], R[:, 1], R[:, 0]))
    left, right = np.concatenate(gaps)[order], np.concatenate(queries_of_rows)[order]
    A = np.einsum("ma,mb->mab", left, right).reshape(-1, d * d)
    return AttSVMProblem(A, R[order], (d, d), left, right)
