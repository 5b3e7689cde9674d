r"""Which tokens a trained attention selects, and the SVMs that predict its direction.

Tarzanagh, Li, Thrampoulidis, Oymak (2023), arXiv 2308.16898:

- a selection :math:`\alpha` is *locally optimal* when its W-SVM is feasible and every support
  token t of every sample scores below the selected one, :math:`\gamma_{i\alpha_i} >
  \gamma_{it}`; *globally optimal* when :math:`\alpha = \mathrm{opt}`;
- a trained run is classified ``global``, ``local`` or ``neither`` from the tokens its final
  softmax selects;
- nonlinear head (multi-token) SVM-equivalence: with :math:`O_i = \{t : s_{it} \ge 10^{-3}\}`,
  :math:`W_{dir} = \arg\min \|W\|_F` s.t. equal scores inside :math:`O_i` and margin 1 against
  tokens outside; :math:`W_{fin} = \arg\min \|W\|_F` s.t.
  :math:`(x_{it_2} - x_{it_1})^\top W z_i = \log(s_{it_2}/s_{it_1})` inside :math:`O_i`; the
  prediction is :math:`W_{fin} + R\,W_{dir}` with R fitted to the final iterate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problems import constraints, token_scores
from .solvers import SVMResult, least_distance, matrix_rank, solve_frobenius



def is_locally_optimal(X, z, Y, v, alpha, result: SVMResult | None = None) -> bool:
    r"""Local optimality of a selection (Tarzanagh et al. 2023): the W-SVM is feasible and
    :math:`\gamma_{i\alpha_i} > \gamma_{it}` for every support token t.

    Parameters
    ----------
    X, z, Y, v : array_like
        Tokens (n, N, d), queries (n, d), labels (n,) and head (d,).
    alpha : array_like of int
        The selection, (n,).
    result : SVMResult, optional
        The W-SVM of this selection, when already solved.

    Returns
    -------
    bool
    """
    problem = constraints(X, alpha, z)
    result = result or solve_frobenius(problem)
    if not result.optimal:
        return False
    gamma = token_scores(X, Y, v)
    i, _, t = problem.rows[result.support].T
    return bool((gamma[i, np.asarray(alpha)[i]] > gamma[i, t]).all())


def classify(X, z, Y, v, alpha, result: SVMResult | None = None) -> str:
    """Classify a trained run's selection: ``global``, ``local`` or ``neither``.

    Parameters
    ----------
    X, z, Y, v : array_like
        Tokens (n, N, d), queries (n, d), labels (n,) and head (d,).
    alpha : array_like of int
        The tokens the run selects, (n,).
    result : SVMResult, optional
        The W-SVM of this selection, when the caller already solved it.

    Returns
    -------
    str
        ``global`` (alpha = opt and the W-SVM is feasible), ``local`` (locally optimal) or
        ``neither``.
    """
    alpha = np.asarray(alpha)
    result = result or solve_frobenius(constraints(X, alpha, z))
    if not result.optimal:
        return "neither"
    if (alpha == np.argmax(token_scores(X, Y, v), axis=1)).all():
        return "global"
    return "local" if is_locally_optimal(X, z, Y, v, alpha, result) else "neither"


def _least_norm_with_equalities(A: np.ndarray, E: np.ndarray, b: np.ndarray,
                                shape) -> SVMResult:
    """:math:`\\min \\|w\\|` s.t. :math:`Aw \\ge 1`, :math:`Ew = b`.

    Split :math:`w = w_0 + N u` with :math:`w_0` the least-norm solution of :math:`Ew = b` and N
    an orthonormal basis of null(E); then :math:`\\|w\\|^2 = \\|w_0\\|^2 + \\|u\\|^2` and the
    inequalities become the LDP :math:`(AN)u \\ge 1 - Aw_0`.
    """
    p = A.shape[1] if A.size else E.shape[1]
    if E.shape[0]:
        w0, *_ = np.linalg.lstsq(E, b, rcond=None)
        _, s, Vh = np.linalg.svd(E)
        rank = int((s > 1e-12 * max(s[0], 1e-300)).sum())
        N = Vh[rank:].T
        if np.linalg.norm(E @ w0 - b) > 1e-9 * max(1.0, np.linalg.norm(b)):
            return SVMResult("infeasible", None, float("inf"),
                             float(np.linalg.norm(E @ w0 - b)), np.zeros(0, int), np.zeros(0))
    else:
        w0, N = np.zeros(p), np.eye(p)
    if A.shape[0] == 0:
        W = w0.reshape(shape)
        return SVMResult("optimal", W, float(np.linalg.norm(w0)), 0.0, np.zeros(0, int),
                         np.zeros(0), matrix_rank(W))
    status, u, lam = least_distance(A @ N, 1 - A @ w0)
    if status != "optimal":
        return SVMResult(status, None, float("inf"), float("inf"), np.zeros(0, int), lam)
    w = w0 + N @ u
    W = w.reshape(shape)
    residual = max(0.0, float((1 - A @ w).max()), float(np.abs(E @ w - b).max(initial=0.0)))
    return SVMResult("optimal", W, float(np.linalg.norm(w)), residual,
                     np.flatnonzero(lam > 0), lam, matrix_rank(W))


@dataclass
class MultiTokenSVM:
    """``W_dir``, ``W_fin`` and the selected sets ``O`` (one list of token indices per sample)."""

    W_dir: SVMResult
    W_fin: np.ndarray
    selected: list[np.ndarray]

    def prediction(self, W_final: np.ndarray) -> np.ndarray:
        """:math:`W_{fin} + R W_{dir}` with R the 1-D least-squares fit to ``W_final``."""
        D = self.W_dir.W
        R = float(((W_final - self.W_fin) * D).sum() / (D * D).sum())
        return self.W_fin + R * D


def multi_token_svm(X, z, scores, threshold: float = 1e-3) -> MultiTokenSVM:
    r"""The nonlinear-head SVM-equivalence (Tarzanagh et al. 2023) from final softmax
    ``scores``: the tokens above ``threshold`` form the selected set :math:`O_i`; ``W_fin``
    equalizes their scores within each set, and ``W_dir`` separates each set from the rest with
    margin 1 at least norm. The final iterate is predicted as :math:`W_{fin} + R\,W_{dir}`.

    Parameters
    ----------
    X : array_like
        Tokens, (n, N, d).
    z : array_like
        Queries, (n, d).
    scores : array_like
        Final softmax weights, (n, N).
    threshold : float
        Smallest weight of a selected token.

    Returns
    -------
    MultiTokenSVM
        ``W_dir`` (an SVMResult), ``W_fin`` and the selected sets; ``prediction(W_final)``.
    """
    X, z, scores = (np.asarray(a, dtype=np.float64) for a in (X, z, scores))
    n, N, d = X.shape
    eq_rows, eq_log, ineq = [], [], []
    selected = []
    for i in range(n):
        O = np.flatnonzero(scores[i] >= threshold)
        selected.append(O)
        for t1, t2 in zip(O[:-1], O[1:]):
            eq_rows.append(np.outer(X[i, t2] - X[i, t1], z[i]).ravel())
            eq_log.append(np.log(scores[i, t2] / scores[i, t1]))
        for t in np.setdiff1d(np.arange(N), O):
            ineq.append(np.outer(X[i, O[0]] - X[i, t], z[i]).ravel())
    E = np.array(eq_rows).reshape(-1, d * d)
    A = np.array(ineq).reshape(-1, d * d)
    W_dir = _least_norm_with_equalities(A, E, np.zeros(len(E)), (d, d))
    w_fin, *_ = np.linalg.lstsq(E, np.array(eq_log), rcond=None) if len(E) else (np.zeros(d * d),)
    return MultiTokenSVM(W_dir, np.asarray(w_fin).reshape(d, d), selected)
