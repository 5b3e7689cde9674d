r"""Nuclear-norm KQ-SVM by a primal-dual interior-point method.

The (K, Q)-parameterized attention converges in direction to the KQ-SVM
:math:`\min \|W\|_*` s.t. :math:`\langle A_j, W\rangle \ge 1` (Tarzanagh, Li, Thrampoulidis,
Oymak 2023, arXiv 2308.16898, Theorem 5). With
:math:`B_j = \begin{pmatrix} 0 & A_j \\ A_j^\top & 0 \end{pmatrix}` it is the semidefinite pair

.. math::
    (P)\ \min \operatorname{tr} X \ \text{s.t.}\ \langle B_j, X\rangle - s_j = 1,\ X \succeq 0,
    \ s \ge 0; \qquad
    (D)\ \max 1^\top y \ \text{s.t.}\ Z = I - \textstyle\sum_j y_j B_j \succeq 0,\ y \ge 0,

with :math:`W = 2 X_{12}`: :math:`\operatorname{tr} X \ge \|W\|_*` with equality at the optimum
(Fazel, Hindi, Boyd 2001; Recht, Fazel, Parrilo 2010), and :math:`Z \succeq 0` is
:math:`\|G(y)\|_2 \le 1` for :math:`G(y) = \sum_j y_j A_j`. The dual variable y holds the SVM's
multipliers. The solver is infeasible-start path following with the HKM direction (Helmberg,
Rendl, Vanderbei, Wolkowicz 1996; Kojima, Shindoh, Hara 1997; Monteiro 1997) and Mehrotra's
predictor-corrector, as in SDPT3 (Toh, Todd, Tütüncü 1999). Each iteration solves the Schur
system :math:`(M + \mathrm{diag}(s / y))\,\Delta y = r` with
:math:`M_{jk} = \langle B_j, X B_k Z^{-1}\rangle`; for rank-one rows
:math:`A_j = u_j v_j^\top` (every Att-SVM constraint) that is

.. math:: M = P^\top \circ Q + P \circ Q^\top + (V X_{22} V^\top) \circ (U Y_{11} U^\top)
          + (U X_{11} U^\top) \circ (V Y_{22} V^\top),

:math:`P = U X_{12} V^\top`, :math:`Q = U Y_{12} V^\top`, :math:`Y = Z^{-1}`: :math:`O(m^2 d)`
work. With many more constraints than the support can hold, the method runs on a working set
grown by the most violated constraints; a relaxation's multipliers stay dual feasible, so every
round's bounds are valid for the whole problem.

Results are certified by :func:`nuclear_bounds`: the feasible rescaling of W bounds the optimum
from above, the rescaled multipliers from below. Near the optimum the iterate's residual
infeasibility limits the upper bound, so each certified W is also tried after a least-norm
correction onto its support constraints (:func:`_onto_support`).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.linalg import lapack
from threadpoolctl import ThreadpoolController

from .problems import AttSVMProblem
from .solvers import SVMResult, matrix_rank, solve_frobenius

SINGLE_THREAD_BELOW = 1500  # Schur systems smaller than this run on one BLAS thread
PRUNE_GAP = 1e-4  # relative gap from which clearly inactive constraints leave the IPM


@functools.cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()  # built once: scanning the loaded libraries is slow


def _blas_threads(limit: int | None):
    """Context limiting BLAS threads (small dense steps lose to thread wake-up costs)."""
    return _threadpools().limit(limits=limit, user_api="blas")


def nuclear_bounds(problem: AttSVMProblem, W: np.ndarray, lam: np.ndarray
                   ) -> tuple[float, float, np.ndarray]:
    """Rigorous bounds (upper, lower, feasible W) on the KQ-SVM optimum from any W, any lam >= 0.

    Constraints are homogeneous in W, so :math:`W / \\min_j m_j` is feasible and
    :math:`\\|W\\|_* / \\min_j m_j` bounds the optimum from above. The dual
    :math:`\\max 1^\\top\\lambda` s.t. :math:`\\lambda \\ge 0`, :math:`\\|G(\\lambda)\\|_2 \\le 1`
    gives :math:`1^\\top\\lambda / \\|G(\\lambda)\\|_2` from below.
    """
    margin = float(problem.margins(W).min())
    upper = float(np.linalg.svd(W, compute_uv=False).sum()) / margin if margin > 0 else np.inf
    G = (problem.A.T @ lam).reshape(problem.shape)
    spectral = float(np.linalg.norm(G, 2))
    lower = float(lam.sum()) / spectral if spectral > 0 else 0.0
    return upper, lower, W / margin if margin > 0 else W


def _schur(X: np.ndarray, Y: np.ndarray, d1: int, A: np.ndarray, U, V) -> np.ndarray:
    """:math:`M_{jk} = \\langle B_j, X B_k Y\\rangle`; rank-one form when U, V are given."""
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


def _cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor through LAPACK directly (small matrices: call overhead matters)."""
    L, info = lapack.dpotrf(S, lower=1)
    if info:
        raise np.linalg.LinAlgError(f"matrix not positive definite (dpotrf info {info})")
    return L


def _inverse_cholesky(S: np.ndarray) -> np.ndarray:
    """:math:`L^{-1}` for :math:`S = L L^\\top` (raises LinAlgError when S is not PD)."""
    return lapack.dtrtri(_cholesky(S), lower=1)[0]


def _step_to_boundary(Li: np.ndarray, dS: np.ndarray, s: np.ndarray, ds: np.ndarray) -> float:
    """Largest step in (0, 1] keeping :math:`S + a\\,dS \\succeq 0` (S = L L^T), s + a ds >= 0.

    The smallest eigenvalue by bisection to 1e-6: the step changes by at most that relative
    amount, well inside the 1 - gamma >= 1% the caller keeps from the boundary."""
    smallest = lapack.dsyevx(Li @ dS @ Li.T, compute_v=0, range="I", il=1, iu=1,
                             abstol=1e-6)[0][0]
    low = min(smallest, float((ds / s).min()))
    return 1.0 if low >= -1.0 else -1.0 / low


def _central_path(A, U, V, shape, prune_gap: float = PRUNE_GAP):
    r"""HKM predictor-corrector iterates on (P)/(D) for constraint rows A (m, d1 d2).

    Yields (W, y, relative gap, largest infeasibility) before each step, y over all m rows;
    ends when a factorization fails (the iterates have reached the limits of float64) or
    when the complementarity :math:`\mu` stops falling (less than halved over 6 steps).
    Once the gap is below ``prune_gap``, constraints that are clearly inactive
    (:math:`s_j > 10^{-3}` and :math:`s_j > 100\,y_j`) leave the system: their multipliers
    are set to 0 (the small dual residual this leaves is removed by the following steps),
    and the remaining Schur systems are smaller.
    """
    d1, d2 = shape
    m, n = A.shape[0], d1 + d2
    eye = np.eye(n)
    X, Z, s, y = eye.copy(), eye.copy(), np.ones(m), np.ones(m)
    rows, y_all = np.arange(m), np.zeros(m)

    def minus_lift(R, v):  # R - sum_j v_j B_j
        G = (A.T @ v).reshape(d1, d2)
        out = R.copy()
        out[:d1, d1:] -= G
        out[d1:, :d1] -= G.T
        return out

    def pair(N):  # <B_j, N> for every j
        return A @ (N[:d1, d1:] + N[d1:, :d1].T).ravel()

    mus = []
    while True:
        try:
            Lzi, Lxi = _inverse_cholesky(Z), _inverse_cholesky(X)
        except np.linalg.LinAlgError:
            return
        Zi = Lzi.T @ Lzi
        trace = X.trace()
        gap = abs(trace - y.sum()) / (1 + abs(trace))
        if gap <= prune_gap and len(rows) == len(y_all):
            keep = (s <= 1e-3) | (s <= 100 * y)
            rows, A, s, y = rows[keep], A[keep], s[keep], y[keep]
            U, V = (U[keep], V[keep]) if U is not None else (None, None)
            m = len(y)
            y_all[:] = 0
        W = 2 * X[:d1, d1:]
        rp = 1 + s - A @ W.ravel()
        Rd = minus_lift(eye - Z, y)
        mu = (np.vdot(X, Z) + s @ y) / (n + m)
        y_all[rows] = y
        yield W, y_all.copy(), gap, max(np.abs(rp).max(), np.abs(Rd).max())
        mus.append(mu)
        if len(mus) > 6 and mu > 0.5 * mus[-7]:
            return
        M = _schur(X, Zi, d1, A, U, V)
        M.ravel()[::m + 1] += s / y
        try:
            factor = _cholesky(M)
        except np.linalg.LinAlgError:
            return
        X_Rd_Zi = X @ Rd @ Zi

        def direction(Rc_Zi, r_lin):
            dy = lapack.dpotrs(factor, rp - pair(Rc_Zi - X_Rd_Zi) + r_lin / y, lower=1)[0]
            dZ = minus_lift(Rd, dy)
            dX = Rc_Zi - X @ dZ @ Zi
            dX += dX.T
            dX *= 0.5
            return dX, (r_lin - s * dy) / y, dZ, dy

        dXa, dsa, dZa, dya = direction(-X, -s * y)  # predictor (affine scaling)
        ap, ad = _step_to_boundary(Lxi, dXa, s, dsa), _step_to_boundary(Lzi, dZa, y, dya)
        mu_affine = (np.vdot(X + ap * dXa, Z + ad * dZa)
                     + (s + ap * dsa) @ (y + ad * dya)) / (n + m)
        sigma = min(1.0, (mu_affine / mu) ** max(1.0, 3 * min(ap, ad) ** 2))  # as SDPT3
        dX, ds, dZ, dy = direction(sigma * mu * Zi - X - dXa @ dZa @ Zi,
                                   sigma * mu - s * y - dsa * dya)
        ap, ad = _step_to_boundary(Lxi, dX, s, ds), _step_to_boundary(Lzi, dZ, y, dy)
        gamma = 0.9 + 0.09 * min(ap, ad)
        ap, ad = min(1.0, gamma * ap), min(1.0, gamma * ad)
        X, s, Z, y = X + ap * dX, s + ap * ds, Z + ad * dZ, y + ad * dy


def _support(y: np.ndarray) -> np.ndarray:
    """Constraints whose multiplier exceeds 1e-6 of the largest."""
    return np.flatnonzero(y > 1e-6 * max(y.max(), 1e-300))


def _onto_support(problem: AttSVMProblem, W: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Least-norm correction of W that makes the support constraints tight:
    :math:`W + \mathrm{mat}(A_S^\top (A_S A_S^\top)^{-1} (1 - A_S w))`, S = {j : y_j > 1e-6 max y}.

    Near the optimum the iterate's residual infeasibility, not its objective, limits the upper
    bound; this removes it to first order on the constraints that carry the multipliers.
    """
    A = problem.A[_support(y)]
    residual = 1 - A @ W.ravel()
    factor, info = lapack.dpotrf(A @ A.T, lower=1)
    if info:  # dependent support rows: least-norm solution through the SVD
        correction = np.linalg.lstsq(A, residual, rcond=None)[0]
    else:
        correction = A.T @ lapack.dpotrs(factor, residual, lower=1)[0]
    return W + correction.reshape(W.shape)


def solve_nuclear(problem: AttSVMProblem, rank_rtol: float = 1e-6, gap_tol: float = 1e-8,
                  max_iter: int = 300, working_set: int | None = None,
                  frobenius: SVMResult | None = None) -> SVMResult:
    r"""Nuclear-norm KQ-SVM :math:`\min \|W\|_*` s.t. :math:`A\,\mathrm{vec}(W) \ge 1`.

    Interior-point method of this module, certified by the relative duality gap
    (upper - lower) / upper of :func:`nuclear_bounds`. It iterates until that gap is below
    ``gap_tol / 10`` or float64 stops it; ``status`` is ``optimal`` when the gap is at most
    ``gap_tol``; otherwise the problem goes to the Frobenius solve, which decides
    infeasibility exactly with a Farkas certificate (same constraints), and a feasible problem
    that could not be certified within ``max_iter`` steps is reported as ``iteration_limit``
    with its valid bounds. ``working_set``: size of the first working set (default
    :math:`\max(d_1 d_2, 2 (d_1 + d_2), 2\times` the Frobenius support); the whole problem when
    it has no more constraints): the smallest margins under the Frobenius solution. From
    relative gap 1e-4 on, constraints outside it that the iterate violates more than those
    inside join it and the method restarts. From the same gap on, clearly inactive
    constraints leave the interior-point system (:func:`_central_path`); should that keep the
    certificate above its aim, the round runs again without pruning. ``rank`` counts singular
    values above ``rank_rtol`` times the largest. ``frobenius``: the Frobenius solve of the
    same problem, when the caller already has it.
    """
    if not 0 < gap_tol < 1:
        raise ValueError(f"gap_tol must lie in (0, 1) (got {gap_tol})")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1 (got {max_iter})")
    m, (d1, d2) = problem.n_constraints, problem.shape
    if m == 0 or not np.abs(problem.A).sum(axis=1).all():  # nothing to separate, or a zero row
        return frobenius or solve_frobenius(problem, rank_rtol)
    scale = float(np.median(np.linalg.norm(problem.A, axis=1)))  # rows of unit size inside
    factored = problem.left is not None and problem.right is not None
    size = working_set or max(d1 * d2, 2 * (d1 + d2))
    active = np.ones(m, dtype=bool)
    if size < m:
        frobenius = frobenius or solve_frobenius(problem, rank_rtol)
        if not frobenius.optimal:
            return frobenius
        size = max(size, 2 * len(frobenius.support))
        if size < m:
            active[np.argsort(problem.margins(frobenius.W))[size:]] = False
    best = {"upper": np.inf, "lower": 0.0, "W": None, "y": np.zeros(m)}

    def certify(W, y_rows, rows):
        y = np.zeros(m)
        y[rows] = y_rows / scale
        W = W / scale
        upper, lower, feasible = nuclear_bounds(problem, W, y)
        if lower > best["lower"]:
            best.update(lower=lower, y=y)
        if upper < best["upper"]:
            best.update(upper=upper, W=feasible)
        if best_gap() > aim and y.any():
            upper, _, feasible = nuclear_bounds(problem, _onto_support(problem, W, y), y)
            if upper < best["upper"]:
                best.update(upper=upper, W=feasible)
        return best_gap()

    def best_gap():
        return (best["upper"] - best["lower"]) / best["upper"] if best["W"] is not None else np.inf

    iterations, rounds, aim = 0, 0, 0.1 * gap_tol
    with _blas_threads(1 if min(size, m) < SINGLE_THREAD_BELOW else None):
        grown, prune_gap = True, PRUNE_GAP
        while grown:
            grown, rounds, reason = False, rounds + 1, "stalled"
            rows = np.flatnonzero(active)
            A = problem.A[rows] / scale
            U = problem.left[rows] / scale if factored else None
            V = problem.right[rows] if factored else None
            for W, y, gap, infeasibility in _central_path(A, U, V, problem.shape, prune_gap):
                if iterations == max_iter:
                    reason = "iteration_limit"
                    break
                iterations += 1
                if gap > 1e-4:
                    continue
                if not active.all():
                    violation = 1 - problem.margins(W) / scale
                    inside = max(float(violation[rows].max()), aim)
                    new = np.flatnonzero(~active & (violation > inside))
                    if len(new):
                        top = np.argsort(violation[new])[::-1][:max(len(rows) // 2, d1 + d2)]
                        active[new[top]] = grown = True
                        break
                if gap <= 10 * aim and certify(W, y, rows) <= aim:
                    reason = "certified"
                    break
                if max(gap, infeasibility) <= 0.1 * aim:
                    reason = "converged"
                    break
            pruned = not y.all()  # pruned rows carry y = 0 (the IPM keeps y > 0)
            if not grown and reason != "iteration_limit" and pruned and best_gap() > aim:
                grown, prune_gap = True, 0.0  # a pruned constraint mattered: again, none pruned
    if best_gap() > gap_tol:
        frobenius = frobenius or solve_frobenius(problem, rank_rtol)
        if not frobenius.optimal:
            return frobenius
        if best["W"] is None:
            certify(frobenius.W * scale, np.zeros(len(rows)), rows)
    gap, lam = best_gap(), best["y"]
    return SVMResult("optimal" if gap <= gap_tol else "iteration_limit", best["W"],
                     best["upper"], gap, _support(lam), lam, matrix_rank(best["W"], rank_rtol),
                     details={"lower_bound": best["lower"], "iterations": iterations,
                              "rounds": rounds, "working_set": int(active.sum()),
                              "stop": reason})
