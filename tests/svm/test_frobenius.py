"""The exact Frobenius W-SVM (Lawson-Hanson LDP) against hand-checked optima and cvxpy."""

import numpy as np
import pytest

from rfattn.svm import constraints, optimal_selection, solve_frobenius

from .instances import instance


def test_hand_checked_one_dimensional_optimum():
    # (x_0 - x_1) w z = 1 * w * 2 >= 1  ->  w = 1/2, lambda = 1/4 (w = A^T lambda = 2 lambda)
    res = solve_frobenius(constraints(np.array([[[1.0], [0.0]]]), np.array([0]), np.array([[2.0]])))
    assert res.status == "optimal"
    assert res.W[0, 0] == pytest.approx(0.5, abs=1e-14)
    assert res.multipliers == pytest.approx([0.25], abs=1e-14)
    assert res.support.tolist() == [0]


def test_hand_checked_two_dimensional_support():
    # z = e1, tokens (1,0), (0,0), (0,1), select 0: constraints w11 >= 1 and w11 - w21 >= 1.
    # The optimum W = e1 e1^T makes both active, but only the first has lambda > 0.
    X = np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])
    problem = constraints(X, np.array([0]), np.array([[1.0, 0.0]]))
    assert problem.rows.tolist() == [[0, 0, 1], [0, 0, 2]]
    res = solve_frobenius(problem)
    assert np.allclose(res.W, [[1.0, 0.0], [0.0, 0.0]], atol=1e-14)
    assert res.objective == pytest.approx(1.0)
    assert problem.rows[res.support].tolist() == [[0, 0, 1]]
    assert np.allclose(problem.margins(res.W), 1.0)
    assert res.rank == 1


@pytest.mark.parametrize("n, T, d", [(5, 5, 10), (6, 8, 10), (15, 5, 20), (3, 4, 4)])
def test_kkt_conditions_and_rank_bound(n, T, d):
    for seed in range(5):
        X, z, v, Y = instance(n, T, d, seed)
        problem = constraints(X, optimal_selection(X, Y, v), z)
        res = solve_frobenius(problem)
        if res.status == "infeasible":
            continue
        assert res.certificate < 1e-9
        assert problem.margins(res.W).min() >= 1 - 1e-9
        assert np.allclose(problem.margins(res.W)[res.support], 1.0, atol=1e-9)
        assert res.rank <= n  # W = sum_i (sum_t lambda_it (x_ia - x_it)) z_i^T
        # the dual objective equals the primal one at the optimum (no duality gap)
        dual = res.multipliers.sum() - 0.5 * res.objective**2
        assert dual == pytest.approx(0.5 * res.objective**2, rel=1e-9)


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")  # Clarabel near 1e-12
def test_agrees_with_cvxpy_clarabel():
    cp = pytest.importorskip("cvxpy")
    for seed, (n, T, d) in enumerate([(5, 5, 10), (10, 5, 15), (6, 8, 10), (5, 5, 2)]):
        X, z, v, Y = instance(n, T, d, seed)
        problem = constraints(X, optimal_selection(X, Y, v), z)
        res = solve_frobenius(problem)
        w = cp.Variable(d * d)
        ref = cp.Problem(cp.Minimize(cp.norm(w)), [problem.A @ w >= 1])
        ref.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        if ref.status == "infeasible":
            assert res.status == "infeasible" and res.certificate < 1e-8
            continue
        assert res.status == "optimal"
        assert res.objective == pytest.approx(ref.value, rel=1e-7)
        assert np.allclose(res.W.reshape(-1), w.value, atol=1e-7)


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
def test_cvxpy_backend_matches_the_exact_solvers():
    pytest.importorskip("cvxpy")
    from rfattn.svm import solve_cvxpy, solve_nuclear

    X, z, v, Y = instance(5, 5, 10, 7)
    problem = constraints(X, optimal_selection(X, Y, v), z)
    fro = solve_cvxpy(problem, "fro", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    assert fro.objective == pytest.approx(solve_frobenius(problem).objective, rel=1e-7)
    nuc = solve_cvxpy(problem, "nuc", solver="CLARABEL")
    assert nuc.objective == pytest.approx(solve_nuclear(problem).objective, rel=1e-6)
    X[:, 3] = X[:, 1]
    assert solve_cvxpy(constraints(X, np.full(5, 1), z), "fro").status == "infeasible"


def test_working_set_path_matches_the_direct_ldp():
    from rfattn.svm import least_distance

    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 6, 5))
    z = rng.standard_normal((80, 5))
    planted = rng.standard_normal((5, 5))
    alpha = np.argmax(np.einsum("ntd,de,ne->nt", X, planted, z), axis=1)
    problem = constraints(X, alpha, z)  # 400 constraints > 10 * 25 unknowns: working set
    res = solve_frobenius(problem)
    status, w, lam = least_distance(problem.A, np.ones(problem.n_constraints))
    assert res.status == status == "optimal"
    assert res.objective == pytest.approx(np.linalg.norm(w), rel=1e-10)
    assert res.certificate < 1e-9 and len(res.support) <= 26
    X[:, 2] = X[np.arange(80), alpha]  # a duplicate of every selected token: infeasible
    alpha2 = np.where(alpha == 2, 0, alpha)
    X[:, 0] = X[np.arange(80), alpha2]
    assert solve_frobenius(constraints(X, alpha2, z)).status == "infeasible"


def test_infeasible_instances_carry_a_farkas_certificate():
    # a token equal to the selected one: its constraint row is zero, 0 >= 1 cannot hold
    X, z, v, Y = instance(4, 5, 6, 0)
    X[:, 3] = X[:, 1]
    res = solve_frobenius(constraints(X, np.full(4, 1), z))
    assert res.status == "infeasible" and res.W is None
    y = res.multipliers
    assert y.min() >= 0 and y.sum() == pytest.approx(1.0) and res.certificate < 1e-10


def test_feasibility_rate_matches_the_reference_counts():
    # reference (alpha = opt, T = 5, n = 5): feasible share .30 at d = 2, 1.0 at d >= 4
    def share(d):
        feasible = 0
        for seed in range(100):
            X, z, v, Y = instance(5, 5, d, 1000 + seed)
            res = solve_frobenius(constraints(X, optimal_selection(X, Y, v), z))
            feasible += res.status == "optimal"
        return feasible / 100

    assert share(4) == 1.0
    assert 0.15 <= share(2) <= 0.45  # .30 +- 3 binomial standard deviations


def test_least_distance_ignores_the_residual_norm_nnls_reports(monkeypatch):
    # some SciPy releases returned a wrong residual norm; a 0 would read as "infeasible"
    from scipy import optimize

    from rfattn.svm import least_distance, solvers

    X, z, v, Y = instance(5, 5, 10, 3)
    problem = constraints(X, optimal_selection(X, Y, v), z)
    honest = least_distance(problem.A, np.ones(problem.n_constraints))
    monkeypatch.setattr(solvers, "nnls", lambda *a, **k: (optimize.nnls(*a, **k)[0], 0.0))
    status, w, lam = least_distance(problem.A, np.ones(problem.n_constraints))
    assert status == honest[0] == "optimal"
    np.testing.assert_allclose(w, honest[1], rtol=1e-12, atol=1e-14)
