r"""Exact Frobenius W-SVM solver (Tarzanagh et al. 2023, arXiv 2308.16898, Att-SVM).

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

STATUSES = ("optimal", "infeasible", "iteration_limit")


@dataclass
class SVMResult:
    """A solve's outcome; never None. ``W`` is None only when ``status`` is not optimal.

    ``certificate``: the KKT residual (largest of primal violation, complementarity and
    stationarity, relative to the margin 1) when optimal, or :math:`\\|A^\\top y\\|` of the
    Farkas vector ``y`` when infeasible. ``support``: constraint indices with
    :math:`\\lambda > 0`.
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
    r"""Lawson-Hanson LDP :math:`\min \|w\|` s.t. :math:`Gw \ge h` through one NNLS.

    Returns (status, w, multipliers); when infeasible, w is None and the multipliers are the
    Farkas vector y >= 0 with :math:`G^\top y = 0`, :math:`h^\top y = 1`.
    """
    m, p = G.shape
    E = np.vstack([G.T, h[None]])
    f = np.zeros(p + 1)
    f[-1] = 1.0
    try:
        u, rnorm = nnls(E, f, maxiter=maxiter or 50 * (p + 1))
    except RuntimeError:  # older SciPy raises on its iteration limit
        return "iteration_limit", None, np.zeros(m)
    r = E @ u - f
    scale = max(1.0, float(np.abs(G).max(initial=0.0)))
    if rnorm <= feasibility_tol * scale or -r[-1] <= feasibility_tol:
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
    """Solve the Frobenius W-SVM exactly by Lawson-Hanson LDP through ``scipy.optimize.nnls``.

    With many more constraints than unknowns (m > 10 d^2) the LDP runs on a working set that
    grows by the most violated constraints (at most d^2 + 1 of them can be support vectors).
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


def _nuclear_bounds(problem: AttSVMProblem, W: np.ndarray, lam: np.ndarray
                    ) -> tuple[float, float, np.ndarray]:
    """Rigorous bounds on the KQ-SVM optimum from any W and any lambda >= 0.

    Constraints are homogeneous in W, so :math:`W / \\min_j m_j` is feasible and
    :math:`\\|W\\|_* / \\min_j m_j` bounds the optimum from above. The dual
    :math:`\\max 1^\\top\\lambda` s.t. :math:`\\lambda \\ge 0`, :math:`\\|G(\\lambda)\\|_2 \\le 1`,
    :math:`G = \\mathrm{mat}(A^\\top\\lambda)`, gives :math:`1^\\top\\lambda / \\|G\\|_2` from below.
    """
    margin = float(problem.margins(W).min())
    upper = float(np.linalg.svd(W, compute_uv=False).sum()) / margin if margin > 0 else np.inf
    G = (problem.A.T @ lam).reshape(problem.shape)
    spectral = float(np.linalg.norm(G, 2))
    lower = float(lam.sum()) / spectral if spectral > 0 else 0.0
    return upper, lower, W / margin if margin > 0 else W


def _polish_dual(problem: AttSVMProblem, W: np.ndarray, rank_rtol: float,
                 active_tol: float = 1e-6) -> np.ndarray:
    r"""Multipliers on the active constraints that best meet the subgradient condition.

    At the optimum :math:`G(\lambda) \in \partial\|W\|_*`, i.e. :math:`U^\top G = V^\top` and
    :math:`G V = U` for the thin SVD :math:`W = U \Sigma V^\top`; non-negative least squares on
    the active constraints gives lambda, which :func:`_nuclear_bounds` turns into a bound.
    """
    U, s, Vh = np.linalg.svd(W)
    r = max(1, int((s > rank_rtol * s[0]).sum()))
    U, V = U[:, :r], Vh[:r].T
    margins = problem.margins(W)
    active = np.flatnonzero(margins <= margins.min() * (1 + active_tol))
    d1, d2 = problem.shape
    G = problem.A[active].reshape(-1, d1, d2)  # one matrix per active constraint
    lhs = np.concatenate([np.einsum("ar,jab->jrb", U, G).reshape(len(active), -1),
                          np.einsum("jab,br->jar", G, V).reshape(len(active), -1)], 1).T
    rhs = np.concatenate([V.T.ravel(), U.ravel()])
    coef, _ = nnls(lhs, rhs, maxiter=50 * lhs.shape[1] + 100)
    lam = np.zeros(problem.n_constraints)
    lam[active] = coef
    return lam


def _polish(problem: AttSVMProblem, best: tuple, rank_rtol: float) -> tuple:
    """Replace the multipliers by polished ones (:func:`_polish_dual`) when that raises the
    certified lower bound."""
    upper, lower, W, lam = best
    polished = _polish_dual(problem, W, rank_rtol)
    _, new_lower, _ = _nuclear_bounds(problem, W, polished)
    return (upper, new_lower, W, polished) if new_lower > lower else best


def solve_nuclear(problem: AttSVMProblem, rank_rtol: float = 1e-6, gap_tol: float = 1e-6,
                  max_outer: int = 200, rho: float = 10.0) -> SVMResult:
    r"""Nuclear-norm KQ-SVM :math:`\min \|W\|_*` s.t. :math:`A\,\mathrm{vec}(W) \ge 1`.

    Burer-Monteiro: :math:`\|W\|_* = \min_{KQ^\top = W} (\|K\|_F^2 + \|Q\|_F^2)/2`, so solve
    :math:`\min (\|K\|_F^2 + \|Q\|_F^2)/2` s.t. :math:`A\,\mathrm{vec}(KQ^\top) \ge 1` with
    K, Q of full width d (every W is reachable) by an augmented Lagrangian whose inner problems
    L-BFGS solves, started from the Frobenius W-SVM, with the multipliers polished on the
    active constraints (:func:`_polish_dual`). The result is certified by the relative
    duality gap between the feasible rescaled primal and the rescaled dual multipliers
    (:func:`_nuclear_bounds`); ``status`` is ``iteration_limit`` when the gap stays above
    ``gap_tol``. Infeasibility is decided exactly by the Frobenius solve (same constraints).
    """
    from scipy.optimize import minimize

    start = solve_frobenius(problem, rank_rtol)
    if not start.optimal:
        return start
    A, (d1, d2) = problem.A, problem.shape
    m = A.shape[0]
    if m == 0:
        return start
    U, s, Vh = np.linalg.svd(start.W)
    x = np.concatenate([(U * np.sqrt(s)).ravel(), (Vh.T * np.sqrt(s)).ravel()])
    lam = start.multipliers * 0.0
    best = (np.inf, 0.0, start.W, lam)

    def split(x):
        return x[:d1 * d1].reshape(d1, d1), x[d1 * d1:].reshape(d2, d1)

    def lagrangian(x, lam, rho):
        K, Q = split(x)
        W = K @ Q.T
        g = A @ W.ravel() - 1
        mu = np.maximum(0.0, lam - rho * g)
        value = 0.5 * (x @ x) + ((mu**2).sum() - (lam**2).sum()) / (2 * rho)
        G = (A.T @ mu).reshape(d1, d2)
        return value, np.concatenate([(K - G @ Q).ravel(), (Q - G.T @ K).ravel()])

    history = []
    for outer in range(max_outer):
        x = minimize(lagrangian, x, args=(lam, rho), jac=True, method="L-BFGS-B",
                     options={"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-15}).x
        K, Q = split(x)
        W = K @ Q.T
        g = A @ W.ravel() - 1
        lam = np.maximum(0.0, lam - rho * g)
        upper, lower, feasible = _nuclear_bounds(problem, W, lam)
        if upper < best[0]:
            best = (upper, best[1], feasible, best[3])
        if lower > best[1]:
            best = (best[0], lower, best[2], lam)
        history.append(upper)
        stalled = len(history) > 3 and abs(history[-4] - upper) <= 1e-9 * upper
        if stalled or (best[0] - best[1]) / best[0] < 1e-5:
            best = _polish(problem, best, rank_rtol)
        if (best[0] - best[1]) / best[0] <= 1e-3 * gap_tol or stalled:
            break  # iterate past gap_tol until the primal stalls: the objective keeps improving
        if np.maximum(0.0, -g).max() > 1e-8:
            rho = min(rho * 2.0, 1e6)
    upper, lower, W, lam = best
    gap = (upper - lower) / upper
    status = "optimal" if gap <= gap_tol else "iteration_limit"
    support = np.flatnonzero(lam > 1e-9 * max(lam.max(), 1e-300))
    return SVMResult(status, W, upper, gap, support, lam, matrix_rank(W, rank_rtol),
                     details={"lower_bound": lower, "outer_iterations": outer + 1, "rho": rho})


def solve_cvxpy(problem: AttSVMProblem, norm: str = "fro", solver: str | None = None,
                rank_rtol: float = 1e-6, **solver_options) -> SVMResult:
    """The same problems through cvxpy (optional extra ``pip install -e '.[cvx]'``).

    ``norm``: ``fro`` (second-order cone; cvxpy picks Clarabel) or ``nuc`` (SDP; the official
    code ends up on SCS). Used as the independent cross-check of :func:`solve_frobenius` and
    :func:`solve_nuclear`; ``certificate`` is the solver's reported primal violation.
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
