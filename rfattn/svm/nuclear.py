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
from above, the rescaled multipliers from below; both hold for any W and any y >= 0, inside the
cones or not. Near the optimum the certificate is tried on more than the damped iterate:

- on small problems, from relative gap 1e-2, on Newton steps for the optimality conditions of
  the rank and the support the iterate reveals (:func:`_newton`), quadratically convergent;
- on the full (undamped) step of each corrector direction, and on candidates that remove
  the first-order errors of its plain bounds (:func:`_polish_primal`, :func:`_polish_dual`),
  then on a least-norm correction onto the support (:func:`_onto_support`).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, NamedTuple

import numpy as np
from scipy.linalg import blas, lapack
from threadpoolctl import ThreadpoolController

from .problems import AttSVMProblem
from .solvers import SVMResult, matrix_rank, solve_frobenius

SINGLE_THREAD = (150, 1500)  # Schur systems of these sizes run on one BLAS thread
PRUNE_GAP = 1e-4  # relative gap from which clearly inactive constraints leave the IPM
NEWTON_GAP = 1e-2  # relative gap from which Newton steps on the revealed solution are tried
NEWTON_SIZE = 200  # largest Newton system (see _newton) tried: dense, O(N^3)


@functools.cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()  # built once: scanning the loaded libraries is slow


def _blas_threads(system: int):
    """Context for Schur systems of this size: one BLAS thread within ``SINGLE_THREAD`` (such
    dense steps lose to thread wake-up costs); unchanged below it, where OpenBLAS keeps the
    products on one thread itself and setting the limit costs more, and above it."""
    low, high = SINGLE_THREAD
    if low <= system < high:
        return _threadpools().limit(limits=1, user_api="blas")
    return contextlib.nullcontext()


def _singular_values(M: np.ndarray) -> np.ndarray:
    """Singular values, largest first, through LAPACK dgesdd (SVD fallback if it fails)."""
    values, info = lapack.dgesdd(M, compute_uv=0)[1::2]
    return values if info == 0 else np.linalg.svd(M, compute_uv=False)


def _revealed_rank(values: np.ndarray) -> int:
    """Rank at the largest ratio of consecutive singular values (largest first)."""
    ratios = values[:-1] / np.maximum(values[1:], 1e-300)
    return int(np.argmax(ratios)) + 1 if len(ratios) else 1


def _svd(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U, s, V^T) through LAPACK dgesdd (numpy's SVD if it fails)."""
    left, values, right_t, info = lapack.dgesdd(M)
    return (left, values, right_t) if info == 0 else np.linalg.svd(M)


def nuclear_bounds(problem: AttSVMProblem, W: np.ndarray, lam: np.ndarray
                   ) -> tuple[float, float, np.ndarray]:
    """Rigorous bounds (upper, lower, feasible W) on the KQ-SVM optimum from any W, any lam >= 0.

    Constraints are homogeneous in W, so :math:`W / \\min_j m_j` is feasible and
    :math:`\\|W\\|_* / \\min_j m_j` bounds the optimum from above. The dual
    :math:`\\max 1^\\top\\lambda` s.t. :math:`\\lambda \\ge 0`, :math:`\\|G(\\lambda)\\|_2 \\le 1`
    gives :math:`1^\\top\\lambda / \\|G(\\lambda)\\|_2` from below.
    """
    upper, feasible = _upper_bound(problem, W)
    return upper, _lower_bound(problem, lam), feasible


def _upper_bound(problem: AttSVMProblem, W: np.ndarray) -> tuple[float, np.ndarray]:
    r""":math:`\|W\|_* / \min_j m_j` and the feasible :math:`W / \min_j m_j` (inf, W if none)."""
    margin = float(problem.margins(W).min())
    if margin <= 0:
        return np.inf, W
    return float(_singular_values(W).sum()) / margin, W / margin


def _lower_bound(problem: AttSVMProblem, lam: np.ndarray) -> float:
    r""":math:`1^\top\lambda / \|G(\lambda)\|_2` for lam >= 0 (0 when G vanishes)."""
    spectral = float(_singular_values((problem.A.T @ lam).reshape(problem.shape))[0])
    return float(lam.sum()) / spectral if spectral > 0 else 0.0


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


class PathPoint(NamedTuple):
    """A point of the path for the certificate: an iterate, or the full step from it."""

    gap: float  # relative gap |tr X - 1^T y| / (1 + |tr X|)
    full_step: bool
    pruned: bool  # whether constraints have left the system (their y is 0)
    solution: Callable[[], tuple[np.ndarray, np.ndarray, float]]  # W, y over all rows,
    # largest primal or dual residual (inf for a full step), computed on demand


def _central_path(A, U, V, shape, prune_gap: float = PRUNE_GAP):
    r"""HKM predictor-corrector iterates on (P)/(D) for constraint rows A (m, d1 d2).

    Yields each iterate and then the full step of its corrector direction, as
    :class:`PathPoint`. The full step leaves the cones' interior, which the certificate of
    :func:`nuclear_bounds` does not need (y clipped at 0); near the optimum the full
    step is much closer to it than the damped step the path takes. The path ends when a
    factorization fails (the iterates have reached the limits of float64) or when the
    complementarity :math:`\mu` stops falling (less than halved over 6 steps). Once the gap is
    below ``prune_gap``, constraints that are clearly inactive (:math:`s_j > 10^{-3}` and
    :math:`s_j > 100\,y_j`) leave the system: their multipliers are set to 0 (the small
    dual residual this leaves is removed by the following steps), and the remaining Schur
    systems are smaller.
    """
    d1, d2 = shape
    m, n = A.shape[0], d1 + d2
    eye = np.eye(n)
    X, Z, s, y = eye.copy(), eye.copy(), np.ones(m), np.ones(m)
    rows, total = np.arange(m), m

    def minus_lift(R, v):  # R - sum_j v_j B_j
        G = (A.T @ v).reshape(d1, d2)
        out = R.copy()
        out[:d1, d1:] -= G
        out[d1:, :d1] -= G.T
        return out

    def pair(N):  # <B_j, N> for every j
        return A @ (N[:d1, d1:] + N[d1:, :d1].T).ravel()

    def spread(v, rows):  # v on the system's rows -> all rows
        out = np.zeros(total)
        out[rows] = v
        return out

    mus = []
    while True:
        try:
            Lzi, Lxi = _inverse_cholesky(Z), _inverse_cholesky(X)
        except np.linalg.LinAlgError:
            return
        Zi = Lzi.T @ Lzi
        trace = X.trace()
        gap = abs(trace - y.sum()) / (1 + abs(trace))
        if gap <= prune_gap and m == total:
            keep = (s <= 1e-3) | (s <= 100 * y)
            rows, A, s, y = rows[keep], A[keep], s[keep], y[keep]
            U, V = (U[keep], V[keep]) if U is not None else (None, None)
            m = len(y)
        rp = 1 + s - 2 * (A @ X[:d1, d1:].ravel())
        Rd = minus_lift(eye - Z, y)

        def iterate(X=X, y=y, rows=rows, rp=rp, Rd=Rd):
            return 2 * X[:d1, d1:], spread(y, rows), max(np.abs(rp).max(), np.abs(Rd).max())

        yield PathPoint(gap, False, m < total, iterate)
        mu = (np.vdot(X, Z) + s @ y) / (n + m)
        mus.append(mu)
        if len(mus) > 6 and mu > 0.5 * mus[-7]:
            return
        s_y = s / y
        M = _schur(X, Zi, d1, A, U, V)
        M.ravel()[::m + 1] += s_y
        try:
            factor = _cholesky(M)
        except np.linalg.LinAlgError:
            return
        X_Rd_Zi = X @ Rd @ Zi

        def direction(Rc_Zi, r_y):  # r_y: the linearized complementarity residual over y
            dy = lapack.dpotrs(factor, rp - pair(Rc_Zi - X_Rd_Zi) + r_y, lower=1)[0]
            dZ = minus_lift(Rd, dy)
            dX = Rc_Zi - X @ dZ @ Zi
            dX += dX.T
            dX *= 0.5
            return dX, r_y - s_y * dy, dZ, dy

        dXa, dsa, dZa, dya = direction(-X, -s)  # predictor (affine scaling)
        ap, ad = _step_to_boundary(Lxi, dXa, s, dsa), _step_to_boundary(Lzi, dZa, y, dya)
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
        ap, ad = _step_to_boundary(Lxi, dX, s, ds), _step_to_boundary(Lzi, dZ, y, dy)
        gamma = 0.9 + 0.09 * min(ap, ad)
        ap, ad = min(1.0, gamma * ap), min(1.0, gamma * ad)
        X, s, Z, y = X + ap * dX, s + ap * ds, Z + ad * dZ, y + ad * dy


def _support(y: np.ndarray) -> np.ndarray:
    """Constraints whose multiplier exceeds 1e-6 of the largest."""
    return np.flatnonzero(y > 1e-6 * max(y.max(), 1e-300))


def _least_norm(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x of least norm with L x = b (least squares through the SVD when L's rows are dependent)."""
    factor, info = lapack.dpotrf(blas.dsyrk(1.0, L.T, trans=1), lower=0)  # upper of L L^T
    if info:
        return np.linalg.lstsq(L, b, rcond=None)[0]
    return L.T @ lapack.dpotrs(factor, b, lower=0)[0]


def _transposed_rows(rows: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The rows of every :math:`A_j^\top`, stacked: (len(rows) d2, d1)."""
    d1, d2 = shape
    return rows.reshape(-1, d1, d2).transpose(0, 2, 1).reshape(-1, d1)


def _factor_rows(rows: np.ndarray, shape: tuple[int, int], P: np.ndarray, Q: np.ndarray,
                 transposed: np.ndarray | None = None) -> np.ndarray:
    r"""Row j: :math:`(\mathrm{vec}(A_j Q), \mathrm{vec}(A_j^\top P))`, the linear map
    :math:`(N, M) \mapsto \langle A_j, N Q^\top + P M^\top\rangle`; ``transposed``: the
    rows' :func:`_transposed_rows`, when the caller keeps them."""
    k = len(rows)
    if transposed is None:
        transposed = _transposed_rows(rows, shape)
    return np.hstack([(rows.reshape(-1, shape[1]) @ Q).reshape(k, -1),
                      (transposed @ P).reshape(k, -1)])


@functools.cache
def _rotation_index(rows: int, r: int) -> tuple[np.ndarray, ...]:
    """Pairs a < b of range(r) and where :func:`_rotations` puts F[:, a] and -F[:, b]."""
    first, second = np.triu_indices(r, 1)
    pairs, row = np.arange(len(first)), np.arange(rows)[:, None]
    return (first, second, ((row * r + second) * len(first) + pairs).ravel(),
            ((row * r + first) * len(first) + pairs).ravel())


def _rotations(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    r"""Columns :math:`(P\Omega, Q\Omega)` for :math:`\Omega = e_a e_b^\top - e_b e_a^\top`,
    a < b, flattened by rows: the directions along which :math:`P Q^\top` and the balance of
    P, Q do not change."""
    F = np.vstack([P, Q])
    rows, r = F.shape
    first, second, plus, minus = _rotation_index(rows, r)
    E = np.zeros(rows * r * len(first))
    E[plus] = F[:, first].ravel()
    E[minus] = -F[:, second].ravel()
    return E.reshape(rows * r, len(first))


def _newton(problem: AttSVMProblem, W: np.ndarray, y: np.ndarray, support: np.ndarray,
            steps: int = 6):
    r"""Newton steps on the optimality conditions of the rank and support that W, y reveal.

    With :math:`W = \hat P \hat Q^\top` of rank r, :math:`\|W\|_* = \min \tfrac12
    (\|\hat P\|_F^2 + \|\hat Q\|_F^2)` over such factorizations (Recht, Fazel, Parrilo 2010),
    so the optimum solves, with multipliers :math:`y_S` of the tight support constraints,

    .. math:: F = \big(\langle A_j, \hat P \hat Q^\top\rangle - 1\ (j \in S),\;
              G(y)\hat Q - \hat P,\; G(y)^\top \hat P - \hat Q\big) = 0.

    Its Jacobian is the symmetric saddle matrix :math:`J = [[0, C], [C^\top, H]]` with rows
    :math:`(A_j \hat Q, A_j^\top \hat P)` in C and
    :math:`H = [[-I, G \otimes I_r], [G^\top \otimes I_r, -I]]`. At the solution J is
    singular along the rotations :math:`(\hat P \Omega, \hat Q \Omega)`, :math:`\Omega`
    skew (:func:`_rotations`, columns E); each step is therefore taken orthogonal to them, from
    the bordered system :math:`[[J, E], [E^\top, 0]]\,(\delta, \nu) = (-F, 0)`, nonsingular
    at a nondegenerate optimum, where Newton's method converges quadratically. The block
    :math:`-I` of :math:`\delta\hat P` is eliminated first: with B the system's columns of
    :math:`\hat P` in its other rows and R those rows and columns,
    :math:`(R + B B^\top)\,x = -F_o - B F_P` and :math:`\delta\hat P = B^\top x + F_P`, a dense
    LU of size :math:`|S| + d_2 r + r (r - 1) / 2` instead of N (below). Starts from the
    balanced factors of the SVD of W (rank: :func:`_revealed_rank`) and yields (W, y, |F|)
    after each step, with |F| the largest entry of F on the corrected support (below), its
    blocks of :math:`\hat P, \hat Q` over :math:`\sqrt{\sigma_1(W)}`: relative, like the
    duality gap it tracks. It does not start from |F| > 0.1 (a wrong rank or support) and
    stops once F no longer contracts or grows tenfold. The support is corrected on the way: a row
    whose multiplier turns negative leaves S, the constraint the step violates most joins it
    (when by more than a tenth of F), and the steps go on. :math:`O(N^3)`,
    :math:`N = |S| + (d_1 + d_2) r + r (r - 1) / 2`, tried up to ``NEWTON_SIZE``.
    """
    (d1, d2), k = problem.shape, len(support)
    left, values, right_t = _svd(W)
    r = _revealed_rank(values)
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
            transposed = _transposed_rows(rows, (d1, d2))
            coupling = np.zeros((k + n_Q + n_rot, n_P))  # J's columns of P, other rows
            kron_t = coupling[k:k + n_Q].reshape(d2, r, d1, r)  # the block G^T (x) I_r
            rest = np.zeros((k + n_Q + n_rot,) * 2)  # J without P's rows and columns
            np.fill_diagonal(rest[k:k + n_Q, k:k + n_Q], -1.0)
        G = (rows.T @ y_S).reshape(d1, d2)
        residual_P = (P - G @ Q).ravel()  # -F by blocks: P, then (y_S, Q, rotations)
        residual = np.zeros(len(rest))
        residual[:k] = 1 - rows @ (P @ Q.T).ravel()
        residual[k:k + n_Q] = (Q - G.T @ P).ravel()
        size = max(float(np.abs(residual[:k]).max()),  # relative: P, Q scale as root
                   max(float(np.abs(residual[k:]).max()), float(np.abs(residual_P).max())) / root)
        if not taken:
            first = size
        if not size <= min(10 * first, 0.1):  # far off: wrong revealed rank or support
            return
        if taken:
            yield W, y_new, size
        if size > 0.25 * previous or taken == steps:
            return
        previous = size
        C = _factor_rows(rows, (d1, d2), P, Q, transposed)
        rotations = _rotations(P, Q)
        coupling[:k] = C[:, :n_P]
        for i in range(r):
            kron_t[:, i, :, i] = G.T
        coupling[k + n_Q:] = rotations[:n_P].T
        rest[:k, k:k + n_Q] = C[:, n_P:]
        rest[k:k + n_Q, :k] = C[:, n_P:].T
        rest[k:k + n_Q, k + n_Q:] = rotations[n_P:]
        rest[k + n_Q:, k:k + n_Q] = rotations[n_P:].T
        other, info = lapack.dgesv(rest + coupling @ coupling.T,
                                   residual + coupling @ residual_P)[2:]
        if info or not np.isfinite(other).all():
            return
        y_S = y_S + other[:k]
        P = P + (coupling.T @ other - residual_P).reshape(d1, r)
        Q = Q + other[k:k + n_Q].reshape(d2, r)
        W = P @ Q.T


def _onto_support(problem: AttSVMProblem, W: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Least-norm correction of W that makes the support constraints tight:
    :math:`W + \mathrm{mat}(A_S^\top (A_S A_S^\top)^{-1} (1 - A_S w))`, S = {j : y_j > 1e-6 max y}.

    Near the optimum the iterate's residual infeasibility, not its objective, limits the upper
    bound; this removes it to first order on the constraints that carry the multipliers.
    """
    A = problem.A[_support(y)]
    return W + _least_norm(A, 1 - A @ W.ravel()).reshape(W.shape)


def _polish_primal(problem: AttSVMProblem, W: np.ndarray, y: np.ndarray
                   ) -> tuple[np.ndarray, int]:
    r"""A candidate W' on the rank and the support that W and y reveal, and that rank r.

    At the optimum :math:`W^* = P \Sigma Q^\top` has rank r. The plain upper bound of a point
    near it keeps first-order errors: the trailing singular values of W in
    :math:`\|W\|_*` and the violated support constraints. With r the rank W reveals
    (:func:`_revealed_rank`) and :math:`W_r = P \Sigma_r Q^\top` its
    truncation, :math:`W' = W_r + P M^\top + N Q^\top`, a step in the tangent space of the
    rank-r matrices at :math:`W_r`, with (M, N) of least norm making the support
    constraints S tight.
    """
    (d1, d2), support = problem.shape, _support(y)
    rows = problem.A[support]
    left, values, right_t = _svd(W)
    r = _revealed_rank(values)
    P, Q = left[:, :r], right_t[:r].T
    W_r = (P * values[:r]) @ Q.T
    step = _least_norm(_factor_rows(rows, (d1, d2), P, Q), 1 - rows @ W_r.ravel())
    return W_r + step[:d1 * r].reshape(d1, r) @ Q.T + P @ step[d1 * r:].reshape(d2, r).T, r


def _polish_dual(problem: AttSVMProblem, y: np.ndarray, r: int) -> np.ndarray:
    r"""A candidate y' >= 0 whose G has r top singular values equal to 1 to first order.

    At the optimum :math:`G(y^*) = P Q^\top + P_\perp R\, Q_\perp^\top` with
    :math:`\|R\|_2 \le 1` (subgradient of the nuclear norm at :math:`W^*` of rank r); near it
    the r top singular values of G(y) split, a first-order error of the lower bound
    :math:`1^\top y / \|G(y)\|_2`. With P, Q the top r singular vectors of G(y),
    :math:`y' = y + \Delta y` on the support S, :math:`\Delta y` of least norm with
    :math:`P^\top G(y') Q = I_r`.
    """
    (d1, d2), support = problem.shape, _support(y)
    left, values, right_t = _svd((problem.A.T @ y).reshape(d1, d2))
    P, Q = left[:, :r], right_t[:r].T
    blocks = P.T @ problem.A[support].reshape(-1, d1, d2) @ Q  # P^T A_j Q for each j
    polished = y.copy()
    polished[support] += _least_norm(blocks.reshape(len(support), -1).T,
                                     (np.eye(r) - np.diag(values[:r])).ravel())
    return np.maximum(polished, 0)


def solve_nuclear(problem: AttSVMProblem, rank_rtol: float = 1e-6, gap_tol: float = 1e-8,
                  max_iter: int = 300, working_set: int | None = None,
                  frobenius: SVMResult | None = None) -> SVMResult:
    r"""Nuclear-norm KQ-SVM :math:`\min \|W\|_*` s.t. :math:`A\,\mathrm{vec}(W) \ge 1`.

    Interior-point method of this module, certified by the relative duality gap
    (upper - lower) / upper of :func:`nuclear_bounds`. It iterates until that gap is below
    ``gap_tol / 10`` or float64 stops it: iterates are certified from relative gap
    ``gap_tol`` on, full corrector steps once the iterate's gap is below ``1e3 gap_tol`` and the
    step's own below ``10 gap_tol``. ``status`` is ``optimal`` when the gap is at most
    ``gap_tol``; otherwise the problem goes to the Frobenius solve, which decides
    infeasibility exactly with a Farkas certificate (same constraints), and a feasible problem
    that could not be certified within ``max_iter`` steps is reported as ``iteration_limit``
    with its valid bounds. ``working_set``: size of the first working set (default
    :math:`\max(d_1 d_2, 2 (d_1 + d_2), 2\times` the Frobenius support); the whole problem when
    it has no more constraints): the smallest margins under the Frobenius solution. From
    relative gap 1e-4 on, constraints outside it that the iterate violates more than those
    inside join it and the method restarts. From relative gap 1e-2 on, and again each time
    the gap has fallen 100-fold, Newton steps on the revealed rank and support
    (:func:`_newton`; support: multiplier above slack) are certified when the system is
    small. From 1e-4 on, clearly inactive constraints leave the interior-point system
    (:func:`_central_path`); should that keep the certificate above its aim, the round runs
    again without pruning. ``rank`` counts singular values above ``rank_rtol`` times the
    largest. ``frobenius``: the Frobenius solve of the same problem, when the caller already
    has it.
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

    def unscaled(W, y_rows, rows):  # a path point in the problem's units, y over all rows
        y = np.zeros(m)
        y[rows] = y_rows / scale
        return W / scale, y

    def certify(W, y_rows, rows):  # candidates in order of cost and promise, until the aim
        W, y = unscaled(W, y_rows, rows)
        if not y.any():
            bound_above(W)
            return best_gap()
        W_polished, rank = _polish_primal(problem, W, y)
        bound_above(W_polished)
        bound_below(y)
        if best_gap() > aim:
            bound_below(_polish_dual(problem, y, rank))
        if best_gap() > aim:
            bound_above(W)
        if best_gap() > aim:
            bound_above(_onto_support(problem, W, y))
        return best_gap()

    def newton(W, y_rows, rows):  # support: multiplier above slack (complementarity)
        W, y = unscaled(W, y_rows, rows)
        support = np.flatnonzero((y > 0) & (y * scale >= problem.margins(W) - 1))
        for W_newton, y_newton, residual in _newton(problem, W, y, support):
            if residual > 100 * aim:  # its bounds are off by about the residual
                continue
            bound_above(W_newton)
            bound_below(y_newton)
            if best_gap() <= aim:
                break
        return best_gap()

    def bound_above(W):
        upper, feasible = _upper_bound(problem, W)
        if upper < best["upper"]:
            best.update(upper=upper, W=feasible)

    def bound_below(y):
        lower = _lower_bound(problem, y)
        if lower > best["lower"]:
            best.update(lower=lower, y=y)

    def best_gap():
        return (best["upper"] - best["lower"]) / best["upper"] if best["W"] is not None else np.inf

    iterations, rounds, aim = 0, 0, 0.1 * gap_tol
    with _blas_threads(min(size, m)):
        grown, prune_gap = True, PRUNE_GAP
        while grown:
            grown, rounds, reason, pruned = False, rounds + 1, "stalled", False
            iterate_gap, newton_gap = np.inf, NEWTON_GAP
            rows = np.flatnonzero(active)
            A = problem.A[rows] / scale
            U = problem.left[rows] / scale if factored else None
            V = problem.right[rows] if factored else None
            for gap, full_step, pruned, solution in _central_path(A, U, V, problem.shape,
                                                                  prune_gap):
                if full_step:  # certified once the undamped step can reach the aim from here
                    if iterate_gap <= 1e4 * aim and gap <= 100 * aim and certify(
                            *solution()[:2], rows) <= aim:
                        reason = "certified"
                        break
                    continue
                iterate_gap = gap
                if iterations == max_iter:
                    reason = "iteration_limit"
                    break
                iterations += 1
                if gap > max(newton_gap, 1e-4):
                    continue
                W, y, infeasibility = solution()
                if gap <= newton_gap:  # Newton on the revealed rank and support
                    newton_gap = 1e-2 * gap
                    if newton(W, y, rows) <= aim:
                        reason = "certified"
                        break
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
