r"""Rigorous bounds on the KQ-SVM optimum, the candidates that tighten them, and their keeper.

For any W and any :math:`y \ge 0` (inside the cones of the semidefinite form or not):

- constraints are homogeneous in W, so :math:`W / \min_j m_j` is feasible
  (:math:`m_j = \langle A_j, W\rangle`) and :math:`\|W\|_* / \min_j m_j` bounds the optimum
  from above;
- the dual :math:`\max 1^\top y` s.t. :math:`y \ge 0`, :math:`\|G(y)\|_2 \le 1`,
  :math:`G(y) = \sum_j y_j A_j`, gives :math:`1^\top y / \|G(y)\|_2` from below.

Near the optimum the plain bounds of an iterate keep first-order errors; the candidates of
this module (:func:`polish_primal`, :func:`polish_dual`, :func:`onto_support`) remove them.
:class:`Certificate` keeps the best bounds of a solve and tries the candidates in order of
cost and promise.
"""

from __future__ import annotations

import numpy as np

from ..problems import AttSVMProblem
from .dense import factor_rows, least_norm, revealed_rank, singular_values, svd
from .tolerances import Tolerances

SUPPORT_RTOL = 1e-6  # the support: constraints whose multiplier exceeds this times the largest


def nuclear_bounds(problem: AttSVMProblem, W: np.ndarray, lam: np.ndarray
                   ) -> tuple[float, float, np.ndarray]:
    """Rigorous bounds on the KQ-SVM optimum from any W and any multipliers lam >= 0.

    Parameters
    ----------
    problem : AttSVMProblem
        The constraints :math:`A\\,\\mathrm{vec}(W) \\ge 1`.
    W : ndarray
        Any matrix of the problem's shape.
    lam : ndarray
        Any non-negative multipliers, one per constraint.

    Returns
    -------
    (float, float, ndarray)
        Upper bound :math:`\\|W\\|_* / \\min_j m_j` (inf when some margin is <= 0), lower
        bound :math:`1^\\top\\lambda / \\|G(\\lambda)\\|_2`, and the feasible rescaling of W.
    """
    upper, feasible = upper_bound(problem, W)
    return upper, lower_bound(problem, lam), feasible


def upper_bound(problem: AttSVMProblem, W: np.ndarray) -> tuple[float, np.ndarray]:
    r""":math:`\|W\|_* / \min_j m_j` and the feasible :math:`W / \min_j m_j` (inf, W if none)."""
    margin = float(problem.margins(W).min())
    if margin <= 0:
        return np.inf, W
    return float(singular_values(W).sum()) / margin, W / margin


def lower_bound(problem: AttSVMProblem, lam: np.ndarray) -> float:
    r""":math:`1^\top\lambda / \|G(\lambda)\|_2` for lam >= 0 (0 when G vanishes)."""
    spectral = float(singular_values((problem.A.T @ lam).reshape(problem.shape))[0])
    return float(lam.sum()) / spectral if spectral > 0 else 0.0


def support(y: np.ndarray) -> np.ndarray:
    """Constraints whose multiplier exceeds ``SUPPORT_RTOL`` times the largest."""
    return np.flatnonzero(y > SUPPORT_RTOL * max(y.max(), 1e-300))


def onto_support(problem: AttSVMProblem, W: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Least-norm correction of W that makes the support constraints tight:
    :math:`W + \mathrm{mat}(A_S^\top (A_S A_S^\top)^{-1} (1 - A_S w))`, S = :func:`support`.

    Near the optimum the iterate's residual infeasibility, not its objective, limits the upper
    bound; this removes it to first order on the constraints that carry the multipliers.
    """
    A = problem.A[support(y)]
    return W + least_norm(A, 1 - A @ W.ravel()).reshape(W.shape)


def polish_primal(problem: AttSVMProblem, W: np.ndarray, y: np.ndarray
                  ) -> tuple[np.ndarray, int]:
    r"""A candidate W' on the rank and the support that W and y reveal, and that rank r.

    At the optimum :math:`W^* = P \Sigma Q^\top` has rank r. The plain upper bound of a point
    near it keeps first-order errors: the trailing singular values of W in
    :math:`\|W\|_*` and the violated support constraints. With r the rank W reveals
    (:func:`~rfattn.svm.nuclear.dense.revealed_rank`) and :math:`W_r = P \Sigma_r Q^\top` its
    truncation, :math:`W' = W_r + P M^\top + N Q^\top`, a step in the tangent space of the
    rank-r matrices at :math:`W_r`, with (M, N) of least norm making the support
    constraints S tight.
    """
    (d1, d2), rows = problem.shape, problem.A[support(y)]
    left, values, right_t = svd(W)
    r = revealed_rank(values)
    P, Q = left[:, :r], right_t[:r].T
    W_r = (P * values[:r]) @ Q.T
    step = least_norm(factor_rows(rows, (d1, d2), P, Q), 1 - rows @ W_r.ravel())
    return W_r + step[:d1 * r].reshape(d1, r) @ Q.T + P @ step[d1 * r:].reshape(d2, r).T, r


def polish_dual(problem: AttSVMProblem, y: np.ndarray, r: int) -> np.ndarray:
    r"""A candidate y' >= 0 whose G has r top singular values equal to 1 to first order.

    At the optimum :math:`G(y^*) = P Q^\top + P_\perp R\, Q_\perp^\top` with
    :math:`\|R\|_2 \le 1` (subgradient of the nuclear norm at :math:`W^*` of rank r); near it
    the r top singular values of G(y) split, a first-order error of the lower bound
    :math:`1^\top y / \|G(y)\|_2`. With P, Q the top r singular vectors of G(y),
    :math:`y' = y + \Delta y` on the support S, :math:`\Delta y` of least norm with
    :math:`P^\top G(y') Q = I_r`.
    """
    (d1, d2), rows = problem.shape, support(y)
    left, values, right_t = svd((problem.A.T @ y).reshape(d1, d2))
    P, Q = left[:, :r], right_t[:r].T
    blocks = P.T @ problem.A[rows].reshape(-1, d1, d2) @ Q  # P^T A_j Q for each j
    polished = y.copy()
    polished[rows] += least_norm(blocks.reshape(len(rows), -1).T,
                                 (np.eye(r) - np.diag(values[:r])).ravel())
    return np.maximum(polished, 0)


class Certificate:
    """The best certified bounds of one solve, and the candidates tried to tighten them.

    Every bound is rigorous (:func:`nuclear_bounds`), so the certificate only improves:
    ``upper`` falls, ``lower`` rises, ``W`` is the feasible matrix of ``upper`` and ``y`` the
    multipliers of ``lower``.

    Parameters
    ----------
    problem : AttSVMProblem
        The whole problem (never a working set: bounds on it are bounds on the solve).
    tolerances : Tolerances
        ``aim`` (the gap a candidate sequence stops at) and ``newton_residual``.
    """

    def __init__(self, problem: AttSVMProblem, tolerances: Tolerances):
        self.problem, self.tolerances = problem, tolerances
        self.upper, self.lower = np.inf, 0.0
        self.W: np.ndarray | None = None
        self.y = np.zeros(problem.n_constraints)

    @property
    def gap(self) -> float:
        """Relative duality gap (upper - lower) / upper; inf before a feasible W."""
        return (self.upper - self.lower) / self.upper if self.W is not None else np.inf

    @property
    def reached(self) -> bool:
        """Whether the gap is at most the aim."""
        return self.gap <= self.tolerances.aim

    def bound_above(self, W: np.ndarray) -> None:
        upper, feasible = upper_bound(self.problem, W)
        if upper < self.upper:
            self.upper, self.W = upper, feasible

    def bound_below(self, y: np.ndarray) -> None:
        lower = lower_bound(self.problem, y)
        if lower > self.lower:
            self.lower, self.y = lower, y

    def offer(self, W: np.ndarray, y: np.ndarray) -> bool:
        """Bounds from (W, y) and their polished candidates, in order of cost and promise,
        until the aim; returns :attr:`reached`."""
        if not y.any():
            self.bound_above(W)
            return self.reached
        W_polished, rank = polish_primal(self.problem, W, y)
        self.bound_above(W_polished)
        self.bound_below(y)
        if not self.reached:
            self.bound_below(polish_dual(self.problem, y, rank))
        if not self.reached:
            self.bound_above(W)
        if not self.reached:
            self.bound_above(onto_support(self.problem, W, y))
        return self.reached

    def offer_newton(self, points) -> bool:
        """Bounds from Newton points (W, y, residual) until the aim; points whose relative
        residual exceeds ``newton_residual`` are skipped (their bounds are off by about it).
        Returns :attr:`reached`."""
        for W, y, residual in points:
            if residual > self.tolerances.newton_residual:
                continue
            self.bound_above(W)
            self.bound_below(y)
            if self.reached:
                break
        return self.reached
