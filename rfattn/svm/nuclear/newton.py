r"""Newton steps on the optimality conditions of the rank and the support an iterate reveals.

With :math:`W = \hat P \hat Q^\top` of rank r, :math:`\|W\|_* = \min \tfrac12
(\|\hat P\|_F^2 + \|\hat Q\|_F^2)` over such factorizations (Recht, Fazel, Parrilo 2010), so
the KQ-SVM optimum solves, with multipliers :math:`y_S` of the tight support constraints,

.. math:: F = \big(\langle A_j, \hat P \hat Q^\top\rangle - 1\ (j \in S),\;
          G(y)\hat Q - \hat P,\; G(y)^\top \hat P - \hat Q\big) = 0.

Its Jacobian is the symmetric saddle matrix :math:`J = [[0, C], [C^\top, H]]` with rows
:math:`(A_j \hat Q, A_j^\top \hat P)` in C and
:math:`H = [[-I, G \otimes I_r], [G^\top \otimes I_r, -I]]`. At the solution J is singular
along the rotations :math:`(\hat P \Omega, \hat Q \Omega)`, :math:`\Omega` skew
(:func:`rotations`, columns E); each step is therefore taken orthogonal to them, from the
bordered system :math:`[[J, E], [E^\top, 0]]\,(\delta, \nu) = (-F, 0)`, nonsingular at a
nondegenerate optimum, where Newton's method converges quadratically.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.linalg import lapack

from ..problems import AttSVMProblem
from .dense import factor_rows, revealed_rank, svd, transposed_rows

NEWTON_SIZE = 200  # largest Newton system (unknowns) tried: dense, O(N^3)
START_RESIDUAL = 0.1  # no start from a larger relative residual (a wrong rank or support)
CONTRACTION = 0.25  # steps stop once the residual shrinks by less than this factor


@functools.cache
def _rotation_index(rows: int, r: int) -> tuple[np.ndarray, ...]:
    """Pairs a < b of range(r) and where :func:`rotations` puts F[:, a] and -F[:, b]."""
    first, second = np.triu_indices(r, 1)
    pairs, row = np.arange(len(first)), np.arange(rows)[:, None]
    return (first, second, ((row * r + second) * len(first) + pairs).ravel(),
            ((row * r + first) * len(first) + pairs).ravel())


def rotations(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    r"""Columns :math:`(P\Omega, Q\Omega)` for :math:`\Omega = e_a e_b^\top - e_b e_a^\top`,
    a < b, flattened by rows: the directions along which :math:`P Q^\top` and the balance of
    P, Q do not change.

    Parameters
    ----------
    P, Q : ndarray
        Factors (d1, r) and (d2, r).

    Returns
    -------
    ndarray
        ((d1 + d2) r, r (r - 1) / 2).
    """
    F = np.vstack([P, Q])
    rows, r = F.shape
    first, second, plus, minus = _rotation_index(rows, r)
    E = np.zeros(rows * r * len(first))
    E[plus] = F[:, first].ravel()
    E[minus] = -F[:, second].ravel()
    return E.reshape(rows * r, len(first))


def newton(problem: AttSVMProblem, W: np.ndarray, y: np.ndarray, support: np.ndarray,
           steps: int = 6):
    r"""Newton steps (module docstring) from (W, y) on the support S.

    The block :math:`-I` of :math:`\delta\hat P` is eliminated first: with B the system's
    columns of :math:`\hat P` in its other rows and R those rows and columns,
    :math:`(R + B B^\top)\,x = -F_o - B F_P` and :math:`\delta\hat P = B^\top x + F_P`, a dense
    LU of size :math:`|S| + d_2 r + r (r - 1) / 2`. The steps start from the balanced factors
    of the SVD of W (rank: :func:`~rfattn.svm.nuclear.dense.revealed_rank`). The support is
    corrected on the way: a row whose multiplier turns negative leaves S, the constraint the
    step violates most joins it (when by more than a tenth of the residual), and the steps go
    on. Cost :math:`O(N^3)`, :math:`N = |S| + (d_1 + d_2) r + r (r - 1) / 2`, tried up to
    ``NEWTON_SIZE`` unknowns.

    Parameters
    ----------
    problem : AttSVMProblem
        The constraints.
    W : ndarray
        The start, near the optimum.
    y : ndarray
        Multipliers over all constraints.
    support : ndarray
        Indices of the constraints taken as tight.
    steps : int
        Most steps taken.

    Yields
    ------
    (ndarray, ndarray, float)
        After each step: W, the multipliers over all constraints (clipped at 0) and the
        relative residual |F|: its largest entry on the corrected support, the blocks of
        :math:`\hat P, \hat Q` over :math:`\sqrt{\sigma_1(W)}` (relative, like the duality gap
        it tracks). Nothing is yielded from a start whose residual exceeds
        ``START_RESIDUAL``; the steps stop once the residual no longer contracts by
        ``CONTRACTION`` or has grown tenfold.
    """
    (d1, d2), k = problem.shape, len(support)
    left, values, right_t = svd(W)
    r = revealed_rank(values)
    n_P, n_Q, n_rot = d1 * r, d2 * r, r * (r - 1) // 2
    if not k or values[0] <= 0 or k + n_P + n_Q + n_rot > NEWTON_SIZE:
        return
    P, Q = left[:, :r] * np.sqrt(values[:r]), right_t[:r].T * np.sqrt(values[:r])
    root = np.sqrt(values[0])
    y_S, previous, size, W = y[support], np.inf, np.inf, None
    for taken in range(steps + 1):
        if taken:  # after a step: rows leave and join the support
            y_new = np.zeros_like(y)
            y_new[support] = np.maximum(y_S, 0)
            if (y_S < 0).any():
                support, y_S, previous = support[y_S >= 0], y_S[y_S >= 0], np.inf
            violation = 1 - problem.margins(W)
            violation[support] = 0
            worst = int(np.argmax(violation))
            if violation[worst] > max(0.1 * size, 1e-12):
                support, y_S, previous = np.append(support, worst), np.append(y_S, 0.0), np.inf
        if previous == np.inf:  # (re)build for the current support
            k, rows = len(support), problem.A[support]
            if not k:
                return
            # unknowns other than P's, in blocks: multipliers, Q, rotations
            mult, q, rot = slice(0, k), slice(k, k + n_Q), slice(k + n_Q, k + n_Q + n_rot)
            transposed = transposed_rows(rows, (d1, d2))
            coupling = np.zeros((k + n_Q + n_rot, n_P))  # J's columns of P, other rows
            kron_t = coupling[q].reshape(d2, r, d1, r)  # the block G^T (x) I_r
            rest = np.zeros((k + n_Q + n_rot,) * 2)  # J without P's rows and columns
            np.fill_diagonal(rest[q, q], -1.0)
        G = (rows.T @ y_S).reshape(d1, d2)
        residual_P = (P - G @ Q).ravel()  # -F by blocks: P, then (y_S, Q, rotations)
        residual = np.zeros(len(rest))
        residual[mult] = 1 - rows @ (P @ Q.T).ravel()
        residual[q] = (Q - G.T @ P).ravel()
        size = max(float(np.abs(residual[mult]).max()),  # relative: P, Q scale as root
                   max(float(np.abs(residual[k:]).max()), float(np.abs(residual_P).max())) / root)
        if not taken:
            first = size
        if not size <= min(10 * first, START_RESIDUAL):  # far off: wrong rank or support
            return
        if taken:
            yield W, y_new, size
        if size > CONTRACTION * previous or taken == steps:
            return
        previous = size
        C = factor_rows(rows, (d1, d2), P, Q, transposed)
        E = rotations(P, Q)
        coupling[mult] = C[:, :n_P]
        for i in range(r):
            kron_t[:, i, :, i] = G.T
        coupling[rot] = E[:n_P].T
        rest[mult, q] = C[:, n_P:]
        rest[q, mult] = C[:, n_P:].T
        rest[q, rot] = E[n_P:]
        rest[rot, q] = E[n_P:].T
        other, info = lapack.dgesv(rest + coupling @ coupling.T,
                                   residual + coupling @ residual_P)[2:]
        if info or not np.isfinite(other).all():
            return
        y_S = y_S + other[mult]
        P = P + (coupling.T @ other - residual_P).reshape(d1, r)
        Q = Q + other[q].reshape(d2, r)
        W = P @ Q.T
