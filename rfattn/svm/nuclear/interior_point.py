r"""The interior-point path of the nuclear-norm KQ-SVM's semidefinite form.

With :math:`B_j = \begin{pmatrix} 0 & A_j \\ A_j^\top & 0 \end{pmatrix}` the KQ-SVM is the
semidefinite pair

.. math::
    (P)\ \min \operatorname{tr} X \ \text{s.t.}\ \langle B_j, X\rangle - s_j = 1,\ X \succeq 0,
    \ s \ge 0; \qquad
    (D)\ \max 1^\top y \ \text{s.t.}\ Z = I - \textstyle\sum_j y_j B_j \succeq 0,\ y \ge 0,

with :math:`W = 2 X_{12}`. :func:`central_path` follows it from an infeasible start with the
HKM direction (Helmberg, Rendl, Vanderbei, Wolkowicz 1996; Kojima, Shindoh, Hara 1997;
Monteiro 1997) and Mehrotra's predictor-corrector, as in SDPT3 (Toh, Todd, Tütüncü 1999).
Each iteration solves the Schur system :math:`(M + \mathrm{diag}(s / y))\,\Delta y = r` with
:math:`M_{jk} = \langle B_j, X B_k Z^{-1}\rangle` (:func:`schur`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.linalg import lapack

from .dense import cholesky, inverse_cholesky

PRUNE_SLACK = 1e-3  # a constraint is clearly inactive when its slack exceeds this ...
PRUNE_RATIO = 100.0  # ... and this many times its multiplier
STALL_STEPS = 6  # the path ends when mu has not halved over this many steps
STEP_FRACTION = (0.9, 0.09)  # step gamma = 0.9 + 0.09 min(primal, dual step) of the boundary


def schur(X: np.ndarray, Y: np.ndarray, d1: int, A: np.ndarray, U: np.ndarray | None,
          V: np.ndarray | None) -> np.ndarray:
    r"""The Schur matrix :math:`M_{jk} = \langle B_j, X B_k Y\rangle`.

    For rank-one rows :math:`A_j = u_j v_j^\top` (every Att-SVM constraint) it is

    .. math:: M = P^\top \circ Q + P \circ Q^\top + (V X_{22} V^\top) \circ (U Y_{11} U^\top)
              + (U X_{11} U^\top) \circ (V Y_{22} V^\top),

    :math:`P = U X_{12} V^\top`, :math:`Q = U Y_{12} V^\top`: :math:`O(m^2 d)` work.

    Parameters
    ----------
    X, Y : ndarray
        Symmetric (d1 + d2, d1 + d2) matrices (the primal iterate and :math:`Z^{-1}`).
    d1 : int
        Rows of W.
    A : ndarray
        Constraint rows, (m, d1 d2); used when U, V are None.
    U, V : ndarray or None
        Rank-one factors of the rows, (m, d1) and (m, d2).

    Returns
    -------
    ndarray
        M, (m, m).
    """
    X11, X12, X22 = X[:d1, :d1], X[:d1, d1:], X[d1:, d1:]
    Y11, Y12, Y22 = Y[:d1, :d1], Y[:d1, d1:], Y[d1:, d1:]
    if U is not None:
        P, Q = (U @ X12) @ V.T, (U @ Y12) @ V.T
        M = P.T * Q
        M += M.T
        M += ((V @ X22) @ V.T) * ((U @ Y11) @ U.T)
        M += ((U @ X11) @ U.T) * ((V @ Y22) @ V.T)
        return M
    # general rows: M = A K A^T, K the matrix of vec(A_k) -> vec((X B_k Y)_12 + (X B_k Y)_21^T)
    d2 = X.shape[0] - d1
    K = (X11[:, None, :, None] * Y22[None, :, None, :]
         + Y11[:, None, :, None] * X22[None, :, None, :]
         + X12[:, None, None, :] * Y12.T[None, :, :, None]
         + Y12[:, None, None, :] * X12.T[None, :, :, None]).reshape(d1 * d2, d1 * d2)
    return (A @ K) @ A.T


def step_to_boundary(Li: np.ndarray, dS: np.ndarray, s: np.ndarray, ds: np.ndarray) -> float:
    """Largest step in (0, 1] keeping :math:`S + a\\,dS \\succeq 0` (S = L L^T), s + a ds >= 0.

    The smallest eigenvalue comes by bisection to 1e-6: the step changes by at most that
    relative amount, well inside the 1 - gamma >= 1% the path keeps from the boundary.
    """
    smallest = lapack.dsyevx(Li @ dS @ Li.T, compute_v=0, range="I", il=1, iu=1,
                             abstol=1e-6)[0][0]
    low = min(smallest, float((ds / s).min()))
    return 1.0 if low >= -1.0 else -1.0 / low


class PathPoint(NamedTuple):
    """A point of the path for the certificate: an iterate, or the full step from it.

    ``solution()`` returns (W, y over all rows, the largest primal or dual residual; inf for
    a full step), computed on demand. ``gap``: relative gap |tr X - 1^T y| / (1 + |tr X|).
    ``pruned``: whether constraints have left the system (their y is 0).
    """

    gap: float
    full_step: bool
    pruned: bool
    solution: Callable[[], tuple[np.ndarray, np.ndarray, float]]


def _minus_lift(A: np.ndarray, R: np.ndarray, v: np.ndarray, d1: int) -> np.ndarray:
    """:math:`R - \\sum_j v_j B_j`."""
    G = (A.T @ v).reshape(d1, R.shape[0] - d1)
    out = R.copy()
    out[:d1, d1:] -= G
    out[d1:, :d1] -= G.T
    return out


def _pair(A: np.ndarray, N: np.ndarray, d1: int) -> np.ndarray:
    """:math:`\\langle B_j, N\\rangle` for every j."""
    return A @ (N[:d1, d1:] + N[d1:, :d1].T).ravel()


def central_path(A: np.ndarray, U: np.ndarray | None, V: np.ndarray | None,
                 shape: tuple[int, int], prune_gap: float):
    r"""HKM predictor-corrector iterates on (P)/(D) for constraint rows A.

    Yields each iterate and then the full step of its corrector direction, as
    :class:`PathPoint`. The full step leaves the cones' interior, which the certificate does
    not need (y clipped at 0); near the optimum it is much closer to the optimum than the
    damped step the path takes. The path ends when a factorization fails (the iterates have
    reached the limits of float64) or when the complementarity :math:`\mu` stops falling
    (less than halved over ``STALL_STEPS`` steps).

    Parameters
    ----------
    A : ndarray
        Constraint rows (m, d1 d2), scaled to size about 1.
    U, V : ndarray or None
        Their rank-one factors (m, d1), (m, d2), or None for general rows.
    shape : (int, int)
        (d1, d2), the shape of W.
    prune_gap : float
        From this relative gap on, constraints that are clearly inactive
        (:math:`s_j >` ``PRUNE_SLACK`` and :math:`s_j >` ``PRUNE_RATIO`` :math:`y_j`) leave the
        system: their multipliers are set to 0 (the small dual residual this leaves is removed
        by the following steps), and the remaining Schur systems are smaller. 0 prunes nothing.

    Yields
    ------
    PathPoint
    """
    d1, d2 = shape
    m, n = A.shape[0], d1 + d2
    eye = np.eye(n)
    X, Z, s, y = eye.copy(), eye.copy(), np.ones(m), np.ones(m)
    rows, total = np.arange(m), m

    def spread(v, rows):  # v on the system's rows -> all rows
        out = np.zeros(total)
        out[rows] = v
        return out

    mus = []
    while True:
        try:
            Lzi, Lxi = inverse_cholesky(Z), inverse_cholesky(X)
        except np.linalg.LinAlgError:
            return
        Zi = Lzi.T @ Lzi
        trace = X.trace()
        gap = abs(trace - y.sum()) / (1 + abs(trace))
        if gap <= prune_gap and m == total:
            keep = (s <= PRUNE_SLACK) | (s <= PRUNE_RATIO * y)
            rows, A, s, y = rows[keep], A[keep], s[keep], y[keep]
            U, V = (U[keep], V[keep]) if U is not None else (None, None)
            m = len(y)
        rp = 1 + s - 2 * (A @ X[:d1, d1:].ravel())
        Rd = _minus_lift(A, eye - Z, y, d1)

        def iterate(X=X, y=y, rows=rows, rp=rp, Rd=Rd):
            return 2 * X[:d1, d1:], spread(y, rows), max(np.abs(rp).max(), np.abs(Rd).max())

        yield PathPoint(gap, False, m < total, iterate)
        mu = (np.vdot(X, Z) + s @ y) / (n + m)
        mus.append(mu)
        if len(mus) > STALL_STEPS and mu > 0.5 * mus[-STALL_STEPS - 1]:
            return
        s_y = s / y
        M = schur(X, Zi, d1, A, U, V)
        M.ravel()[::m + 1] += s_y
        try:
            factor = cholesky(M)
        except np.linalg.LinAlgError:
            return
        X_Rd_Zi = X @ Rd @ Zi

        def direction(Rc_Zi, r_y):  # r_y: the linearized complementarity residual over y
            dy = lapack.dpotrs(factor, rp - _pair(A, Rc_Zi - X_Rd_Zi, d1) + r_y, lower=1)[0]
            dZ = _minus_lift(A, Rd, dy, d1)
            dX = Rc_Zi - X @ dZ @ Zi
            dX += dX.T
            dX *= 0.5
            return dX, r_y - s_y * dy, dZ, dy

        dXa, dsa, dZa, dya = direction(-X, -s)  # predictor (affine scaling)
        ap, ad = step_to_boundary(Lxi, dXa, s, dsa), step_to_boundary(Lzi, dZa, y, dya)
        mu_affine = (np.vdot(X + ap * dXa, Z + ad * dZa)
                     + (s + ap * dsa) @ (y + ad * dya)) / (n + m)
        sigma = min(1.0, (mu_affine / mu) ** max(1.0, 3 * min(ap, ad) ** 2))  # as SDPT3
        dX, ds, dZ, dy = direction(sigma * mu * Zi - X - dXa @ dZa @ Zi,
                                   (sigma * mu - dsa * dya) / y - s)
        full_trace = trace + dX.trace()

        def full_step(X=X, dX=dX, y=y, dy=dy, rows=rows):
            return 2 * (X[:d1, d1:] + dX[:d1, d1:]), spread(np.maximum(y + dy, 0), rows), np.inf

        yield PathPoint(abs(full_trace - y.sum() - dy.sum()) / (1 + abs(full_trace)), True,
                        m < total, full_step)
        ap, ad = step_to_boundary(Lxi, dX, s, ds), step_to_boundary(Lzi, dZ, y, dy)
        gamma = STEP_FRACTION[0] + STEP_FRACTION[1] * min(ap, ad)
        ap, ad = min(1.0, gamma * ap), min(1.0, gamma * ad)
        X, s, Z, y = X + ap * dX, s + ap * ds, Z + ad * dZ, y + ad * dy
