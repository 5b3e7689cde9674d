r"""The driver of the nuclear-norm KQ-SVM solver: working set, path, certificate, statuses.

:func:`solve_nuclear` runs the interior-point path (:mod:`.interior_point`) on a working set
of constraints, offers points of the path and Newton points (:mod:`.newton`) to a
:class:`~.certificate.Certificate`, and stops when the certified relative duality gap reaches
its aim. Every threshold it uses is a field of :class:`Tolerances`, derived from ``gap_tol``.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from ...core.checks import positive_int
from ..problems import AttSVMProblem
from ..solvers import SVMResult, matrix_rank, solve_frobenius
from .certificate import Certificate, support
from .interior_point import central_path
from .newton import newton
from .tolerances import Tolerances

SINGLE_THREAD = (150, 1500)  # Schur systems of these sizes run on one BLAS thread


@functools.cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()  # built once: scanning the loaded libraries is slow


def blas_threads(system: int):
    """Context for Schur systems of this size: one BLAS thread within ``SINGLE_THREAD`` (such
    dense steps lose to thread wake-up costs); unchanged below it, where OpenBLAS keeps the
    products on one thread itself and setting the limit costs more, and above it."""
    low, high = SINGLE_THREAD
    if low <= system < high:
        return _threadpools().limit(limits=1, user_api="blas")
    return contextlib.nullcontext()


@dataclass
class _Round:
    """How one working-set round of the path ended."""

    reason: str  # certified | converged | stalled | iteration_limit | grown
    iterations: int
    pruned: bool


def _round(problem: AttSVMProblem, active: np.ndarray, scale: float, prune_gap: float,
           certificate: Certificate, tol: Tolerances, iterations_left: int) -> _Round:
    """Follow the path on the working set ``active`` (grown in place when it must be)."""
    m, (d1, d2) = problem.n_constraints, problem.shape
    rows = np.flatnonzero(active)
    factored = problem.left is not None and problem.right is not None
    A = problem.A[rows] / scale
    U = problem.left[rows] / scale if factored else None
    V = problem.right[rows] if factored else None

    def unscaled(W, y_rows):  # a path point in the problem's units, y over all rows
        y = np.zeros(m)
        y[rows] = y_rows / scale
        return W / scale, y

    def newton_points(W, y_rows):  # support: multiplier above slack (complementarity)
        W, y = unscaled(W, y_rows)
        tight = np.flatnonzero((y > 0) & (y * scale >= problem.margins(W) - 1))
        return newton(problem, W, y, tight)

    iterate_gap, newton_gap, used, pruned = np.inf, tol.newton_from, 0, False
    for point in central_path(A, U, V, problem.shape, prune_gap):
        pruned = point.pruned
        if point.full_step:  # certified once the undamped step can reach the aim from here
            if (iterate_gap <= tol.full_step_iterate and point.gap <= tol.full_step
                    and certificate.offer(*unscaled(*point.solution()[:2]))):
                return _Round("certified", used, pruned)
            continue
        iterate_gap = point.gap
        if used == iterations_left:
            return _Round("iteration_limit", used, pruned)
        used += 1
        if point.gap > max(newton_gap, tol.endgame):
            continue
        W, y, infeasibility = point.solution()
        if point.gap <= newton_gap:
            newton_gap = tol.newton_every * point.gap
            if certificate.offer_newton(newton_points(W, y)):
                return _Round("certified", used, pruned)
        if point.gap > tol.endgame:
            continue
        if not active.all():
            violation = 1 - problem.margins(W) / scale
            inside = max(float(violation[rows].max()), tol.aim)
            new = np.flatnonzero(~active & (violation > inside))
            if len(new):
                top = np.argsort(violation[new])[::-1][:max(len(rows) // 2, d1 + d2)]
                active[new[top]] = True
                return _Round("grown", used, pruned)
        if point.gap <= tol.certify_iterate and certificate.offer(*unscaled(W, y)):
            return _Round("certified", used, pruned)
        if max(point.gap, infeasibility) <= tol.converged:
            return _Round("converged", used, pruned)
    return _Round("stalled", used, pruned)


def _first_working_set(problem: AttSVMProblem, working_set: int | None,
                       frobenius: SVMResult | None, rank_rtol: float
                       ) -> tuple[np.ndarray, SVMResult | None]:
    """The rows of the first working set: the smallest margins under the Frobenius solution."""
    m, (d1, d2) = problem.n_constraints, problem.shape
    size = working_set or max(d1 * d2, 2 * (d1 + d2))
    active = np.ones(m, dtype=bool)
    if size < m:
        frobenius = frobenius or solve_frobenius(problem, rank_rtol)
        if not frobenius.optimal:
            return active, frobenius
        size = max(size, 2 * len(frobenius.support))
        if size < m:
            active[np.argsort(problem.margins(frobenius.W))[size:]] = False
    return active, frobenius


def solve_nuclear(problem: AttSVMProblem, rank_rtol: float = 1e-6, gap_tol: float = 1e-8,
                  max_iter: int = 300, working_set: int | None = None,
                  frobenius: SVMResult | None = None) -> SVMResult:
    r"""Nuclear-norm KQ-SVM :math:`\min \|W\|_*` s.t. :math:`A\,\mathrm{vec}(W) \ge 1`.

    Tarzanagh, Li, Thrampoulidis, Oymak 2023 (arXiv 2308.16898, Theorem 5): gradient
    descent on (K, Q) converges in direction to this solution. The interior-point path of
    :mod:`.interior_point` runs on a working set of constraints until the certified relative
    duality gap (upper - lower) / upper of :func:`~.certificate.nuclear_bounds` is below the
    aim ``gap_tol / 10``, or float64 stops it. Points are offered to the certificate by phase
    (:class:`Tolerances`):

    - from relative gap 1e-2, and again each time it has fallen 100-fold, Newton steps on
      the revealed rank and support (:func:`~.newton.newton`; support: multiplier above slack)
      when the system is small;
    - from 1e-4, constraints outside the working set that the iterate violates more than
      those inside join it and the path restarts, and clearly inactive constraints leave the
      interior-point system (should that keep the certificate above its aim, the round runs
      again without pruning);
    - iterates from gap ``gap_tol``, full corrector steps once the iterate's gap is below
      ``1e3 gap_tol`` and the step's own below ``10 gap_tol``.

    A problem that could not be certified goes to the Frobenius solve (same constraints),
    which decides infeasibility exactly with a Farkas certificate.

    Parameters
    ----------
    problem : AttSVMProblem
        Constraint rows; rank-one factors (``left``, ``right``) make the Schur complement
        :math:`O(m^2 d)`.
    rank_rtol : float
        ``rank`` counts singular values above ``rank_rtol`` times the largest.
    gap_tol : float
        Relative duality gap certified for status ``optimal``, in (0, 1).
    max_iter : int
        Interior-point iterations over all rounds.
    working_set : int, optional
        Size of the first working set (default :math:`\max(d_1 d_2, 2 (d_1 + d_2), 2\times`
        the Frobenius support); the whole problem when it has no more constraints.
    frobenius : SVMResult, optional
        The Frobenius solve of the same problem, when the caller already has it.

    Returns
    -------
    SVMResult
        ``optimal`` (certified gap <= ``gap_tol``; ``certificate`` is that gap, ``W`` the
        feasible matrix of the upper bound, ``multipliers`` those of the lower bound),
        ``infeasible`` (with the Frobenius solve's Farkas vector) or ``iteration_limit``
        (with its valid bounds). ``details``: ``lower_bound``, ``iterations``, ``rounds``,
        ``working_set`` and ``stop`` (how the last round ended).
    """
    tol = Tolerances.from_gap_tol(gap_tol)
    max_iter = positive_int("max_iter", max_iter)
    m = problem.n_constraints
    if m == 0 or not np.abs(problem.A).sum(axis=1).all():  # nothing to separate, or a zero row
        return frobenius or solve_frobenius(problem, rank_rtol)
    active, frobenius = _first_working_set(problem, working_set, frobenius, rank_rtol)
    if frobenius is not None and not frobenius.optimal:
        return frobenius
    scale = float(np.median(np.linalg.norm(problem.A, axis=1)))  # rows of unit size inside
    certificate = Certificate(problem, tol)
    iterations, rounds, prune_gap = 0, 0, tol.endgame
    with blas_threads(int(active.sum())):
        while True:
            rounds += 1
            done = _round(problem, active, scale, prune_gap, certificate, tol,
                          max_iter - iterations)
            iterations += done.iterations
            if done.reason == "grown":
                continue
            if done.reason != "iteration_limit" and done.pruned and not certificate.reached:
                prune_gap = 0.0  # a pruned constraint mattered: again, none pruned
                continue
            break
    if certificate.gap > gap_tol:
        frobenius = frobenius or solve_frobenius(problem, rank_rtol)
        if not frobenius.optimal:
            return frobenius
        if certificate.W is None:
            certificate.offer(frobenius.W, np.zeros(m))
    status = "optimal" if certificate.gap <= gap_tol else "iteration_limit"
    return SVMResult(status, certificate.W, certificate.upper, certificate.gap,
                     support(certificate.y), certificate.y,
                     matrix_rank(certificate.W, rank_rtol),
                     details={"lower_bound": certificate.lower, "iterations": iterations,
                              "rounds": rounds, "working_set": int(active.sum()),
                              "stop": done.reason})
