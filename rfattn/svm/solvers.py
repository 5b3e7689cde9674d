r"""Exact Frobenius W-SVM solver (Tarzanagh et al. 2023, arXiv 2308.16898, Att-SVM), and the
cvxpy cross-check of both SVMs.

The W-SVM :math:`\min \|W\|_F` s.t. :math:`A\,\mathrm{vec}(W) \ge 1` is a least-distance
program (LDP). Lawson and Hanson (Solving Least Squares Problems, 1974, ch. 23) reduce it to
one non-negative least-squares problem

.. math:: \min_{u \ge 0} \|E u - f\|_2, \qquad E = \begin{pmatrix} A^\top \\ 1^\top
          \end{pmatrix}, \quad f = e_{p+1}.

With residual :math:`r = Eu - f`: if :math:`r = 0` the constraints are infeasible and
:math:`y = u / 1^\top u \ge 0` is a Farkas certificate (:math:`A^\top y = 0`,
:math:`1^\top y = 1`); otherwise :math:`w = -r_{1:p} / r_{p+1}` and the KKT multipliers are
:math:`\lambda = u / (1 - 1^\top u)`, so that :math:`w = A^\top \lambda`. Support tokens are the
constraints with :math:`\lambda > 0`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from .problems import AttSVMProblem



@dataclass
class SVMResult:
    r"""A solve's outcome; never None.

    Parameters
    ----------
    status : str
        ``optimal``, ``infeasible`` or a failure status named by the solver.
    W : ndarray or None
        The solution, (d, d); None only when ``status`` is not optimal.
    objective : float
        Its norm (Frobenius or nuclear).
    certificate : float
        When optimal, the KKT residual (largest of primal violation, complementarity and
        stationarity, relative to the margin 1) or, for the nuclear solver, the certified relative
        duality gap; when infeasible, :math:`\|A^\top y\|` of the Farkas vector y.
    support : ndarray of int
        Constraint indices with a positive multiplier.
    multipliers : ndarray
        Dual multipliers, (m,) (the Farkas vector when infeasible).
    rank : int, optional
        Numerical rank of W.
    details : dict
        Solver-specific numbers (iterations, bounds, timings).
    """

    status: str
    W: np.ndarray | None
    objective: float
    certificate: float
    support: np.ndarray
    multipliers: np.ndarray
    rank: int | None = None
    details: dict = field(default_factory=dict)

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"


def matrix_rank(W: np.ndarray, rtol: float = 1e-6) -> int:
    """Number of singular values above ``rtol`` times the largest."""
    s = np.linalg.svd(W, compute_uv=False)
    return int((s > rtol * s[0]).sum()) if s[0] > 0 else 0


def kkt_residual(problem: AttSVMProblem, W: np.ndarray, lam: np.ndarray) -> float:
    """Largest violation of the W-SVM's KKT conditions (primal, dual, complementarity, grad)."""
    w = np.asarray(W, dtype=np.float64).reshape(-1)
    margins = problem.A @ w
    primal = max(0.0, float((1 - margins).max(initial=0.0)))
    dual = max(0.0, float((-lam).max(initial=0.0)))
    slack = float(np.abs(lam * (margins - 1)).max(initial=0.0))
    stationarity = float(np.linalg.norm(w - problem.A.T @ lam)) / max(np.linalg.norm(w), 1e-300)
    return max(primal, dual, slack, stationarity)


def least_distance(G: np.ndarray, h: np.ndarray, maxiter: int | None = None,
                   feasibility_tol: float = 1e-10) -> tuple[str, np.ndarray | None, np.ndarray]:
    r"""Lawson-Hanson least-distance program :math:`\min \|w\|` s.t. :math:`Gw \ge h` through one
    non-negative least squares (Lawson and Hanson 1974).

    Parameters
    ----------
    G : ndarray
        Constraint matrix, (m, p).
    h : ndarray
        Right-hand side, (m,).
    maxiter : int, optional
        NNLS iterations (scipy's default when None).
    feasibility_tol : float
        Relative residual of the NNLS below which the program is declared infeasible.

    Returns
    -------
    (str, ndarray or None, ndarray)
        Status (``optimal`` or ``infeasible``), w (None when infeasible) and the multipliers:
        when infeasible, the Farkas vector :math:`y \ge 0` with :math:`G^\top y = 0`,
        :math:`h^\top y = 1`.
    """
    m, p = G.shape
    E = np.vstack([G.T, h[None]])
    f = np.zeros(p + 1)
    f[-1] = 1.0
    try:
        u, _ = nnls(E, f, maxiter=maxiter or 50 * (p + 1))
    except RuntimeError:  # older SciPy raises on its iteration limit
        return "iteration_limit", None, np.zeros(m)
    r = E @ u - f  # the residual norm nnls returns is not trusted: some releases got it wrong
    scale = max(1.0, float(np.abs(G).max(initial=0.0)))
    if np.linalg.norm(r) <= feasibility_tol * scale or -r[-1] <= feasibility_tol:
        return "infeasible", None, u / max(float(h @ u), 1e-300)
    lam = u / (-r[-1])
    return "optimal", G.T @ lam, lam


def _working_set_ldp(A: np.ndarray, maxiter, feasibility_tol, rounds: int = 50):
    """LDP with constraint generation: solve on a working set, add the most violated rows.

    Every round solves a relaxation, so its norm bounds the optimum from below; a relaxed
    solution violating nothing is optimal for the whole problem, and a relaxation without a
    solution makes the whole problem infeasible (its Farkas vector, padded with zeros, is one).
    """
    m, p = A.shape
    ones = np.ones(m)
    active = np.zeros(m, dtype=bool)
    active[np.linspace(0, m - 1, min(m, 2 * p)).astype(int)] = True
    for _ in range(rounds):
        rows = np.flatnonzero(active)
        status, w, lam_sub = least_distance(A[rows], ones[rows], maxiter, feasibility_tol)
        lam = np.zeros(m)
        lam[rows] = lam_sub
        if status != "optimal":
            return status, w, lam
        violation = 1 - A @ w
        violated = np.flatnonzero((violation > 1e-12) & ~active)
        if not len(violated):
            return status, w, lam
        worst = violated[np.argsort(violation[violated])[::-1][:p]]
        active[worst] = True
    return "iteration_limit", None, lam


def solve_frobenius(problem: AttSVMProblem, rank_rtol: float = 1e-6, maxiter: int | None = None,
                    feasibility_tol: float = 1e-10) -> SVMResult:
    r"""Solve the Frobenius W-SVM :math:`\min \|W\|_F` s.t. :math:`A\,\mathrm{vec}(W) \ge 1`
    exactly, by the least-distance program through ``scipy.optimize.nnls``.

    With many more constraints than unknowns (m > 10 d^2) the program runs on a working set that
    grows by the most violated constraints (at most d^2 + 1 of them can be support vectors).

    Parameters
    ----------
    problem : AttSVMProblem
    rank_rtol : float
        Singular values below ``rank_rtol`` times the largest do not count toward the rank.
    maxiter : int, optional
        NNLS iterations.
    feasibility_tol : float
        See :func:`least_distance`.

    Returns
    -------
    SVMResult
        ``optimal`` with W and its KKT residual, or ``infeasible`` with a Farkas certificate.
    """
    A = problem.A
    m, p = A.shape
    if m == 0:  # nothing to separate: W = 0
        W = np.zeros(problem.shape)
        return SVMResult("optimal", W, 0.0, 0.0, np.zeros(0, int), np.zeros(0), 0)
    if m > 10 * p:
        status, w, lam = _working_set_ldp(A, maxiter, feasibility_tol)
    else:
        status, w, lam = least_distance(A, np.ones(m), maxiter, feasibility_tol)
    if status == "iteration_limit":
        return SVMResult(status, None, float("nan"), float("inf"), np.zeros(0, int), lam)
    if status == "infeasible":
        return SVMResult("infeasible", None, float("inf"), float(np.linalg.norm(A.T @ lam)),
                         np.flatnonzero(lam > 0), lam,
                         details={"farkas": "y >= 0, sum(y) = 1, ||A^T y|| = certificate"})
    W = w.reshape(problem.shape)
    return SVMResult("optimal", W, float(np.linalg.norm(w)), kkt_residual(problem, W, lam),
                     np.flatnonzero(lam > 0), lam, matrix_rank(W, rank_rtol))


def solve_cvxpy(problem: AttSVMProblem, norm: str = "fro", solver: str | None = None,
                rank_rtol: float = 1e-6, **solver_options) -> SVMResult:
    """The same problems through cvxpy (optional extra ``pip install -e '.[cvx]'``).

    Used as the independent cross-check of :func:`solve_frobenius` and
    :func:`rfattn.svm.nuclear.solve_nuclear`.

    Parameters
    ----------
    problem : AttSVMProblem
    norm : str
        ``fro`` (second-order cone; cvxpy picks Clarabel) or ``nuc`` (SDP; the official code ends
        up on SCS).
    solver : str, optional
        A cvxpy solver name.
    rank_rtol : float
        Singular values below ``rank_rtol`` times the largest do not count toward the rank.
    **solver_options
        Passed to ``cvxpy.Problem.solve``.

    Returns
    -------
    SVMResult
        ``certificate`` is the solver's reported primal violation.
    """
    try:
        import cvxpy as cp
    except ImportError as err:
        raise ImportError("solve_cvxpy needs cvxpy: pip install -e '.[cvx]'") from err
    if norm not in ("fro", "nuc"):
        raise ValueError(f"norm must be one of fro, nuc (got {norm!r})")
    W = cp.Variable(problem.shape)
    objective = cp.norm(cp.vec(W, order="C")) if norm == "fro" else cp.normNuc(W)
    margins = problem.A @ cp.vec(W, order="C")
    prob = cp.Problem(cp.Minimize(objective), [margins >= 1])
    prob.solve(solver=solver or ("CLARABEL" if norm == "fro" else "SCS"), **solver_options)
    status = {"optimal": "optimal", "optimal_inaccurate": "optimal", "infeasible": "infeasible",
              "infeasible_inaccurate": "infeasible"}.get(prob.status, "iteration_limit")
    if status != "optimal" or W.value is None:
        return SVMResult(status, None, float("inf"), float("nan"), np.zeros(0, int),
                         np.zeros(problem.n_constraints), details={"cvxpy_status": prob.status})
    lam = np.asarray(prob.constraints[0].dual_value, dtype=np.float64).ravel()
    violation = float(max(0.0, (1 - problem.margins(W.value)).max()))
    return SVMResult("optimal", np.asarray(W.value), float(prob.value), violation,
                     np.flatnonzero(lam > 1e-6 * max(lam.max(), 1e-300)), lam,
                     matrix_rank(np.asarray(W.value), rank_rtol),
                     details={"cvxpy_status": prob.status})
