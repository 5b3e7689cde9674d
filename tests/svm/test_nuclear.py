"""The certified nuclear-norm solver: against Clarabel; its bounds, path, polish, Newton phase."""

import numpy as np
import pytest

from rfattn.svm import constraints, optimal_selection, solve_frobenius

from .instances import instance


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
def test_nuclear_solver_agrees_with_clarabel_and_certifies_its_gap():
    cp = pytest.importorskip("cvxpy")
    from rfattn.svm import nuclear_bounds, solve_nuclear

    for seed, (n, T, d) in enumerate([(5, 5, 10), (6, 8, 10), (10, 5, 15)]):
        X, z, v, Y = instance(n, T, d, seed)
        problem = constraints(X, optimal_selection(X, Y, v), z)
        res = solve_nuclear(problem)
        frob = solve_frobenius(problem)
        assert res.status == "optimal" and res.certificate <= 1e-8
        lower = res.details["lower_bound"]
        assert lower <= res.objective <= lower * (1 + 1e-8)
        # the bounds are reproducible from the returned W and multipliers
        assert nuclear_bounds(problem, res.W, res.multipliers)[:2] == pytest.approx(
            (res.objective, lower), rel=1e-12)
        assert problem.margins(res.W).min() >= 1 - 1e-12  # the returned W is feasible
        W = cp.Variable((d, d))
        ref = cp.Problem(cp.Minimize(cp.normNuc(W)),
                         [problem.A @ cp.vec(W, order="C") >= 1])
        ref.solve(solver="CLARABEL", tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
        assert res.objective == pytest.approx(ref.value, rel=1e-8)
        # the nuclear solution has lower rank and a smaller nuclear norm than the Frobenius one
        assert res.rank < frob.rank
        assert res.objective <= np.linalg.svd(frob.W, compute_uv=False).sum() + 1e-9


def test_nuclear_solver_on_hand_checked_instances_and_infeasibility():
    from rfattn.svm import solve_nuclear

    res = solve_nuclear(constraints(np.array([[[1.0], [0.0]]]), np.array([0]), np.array([[2.0]])))
    assert res.status == "optimal" and res.objective == pytest.approx(0.5, rel=1e-9)
    # one constraint u^T W z >= 1: optimum 1 / (|u| |z|), attained by the rank-one u z^T / ...
    rng = np.random.default_rng(4)
    X, z = rng.standard_normal((1, 2, 5)), rng.standard_normal((1, 5))
    res = solve_nuclear(constraints(X, np.array([0]), z))
    u = X[0, 0] - X[0, 1]
    assert res.objective == pytest.approx(1 / (np.linalg.norm(u) * np.linalg.norm(z)), rel=1e-8)
    assert res.rank == 1 and np.allclose(res.W, np.outer(u, z[0]) * res.objective**2, atol=1e-6)
    X, z, _, _ = instance(4, 5, 6, 0)
    X[:, 3] = X[:, 1]
    infeasible = solve_nuclear(constraints(X, np.full(4, 1), z))
    assert infeasible.status == "infeasible" and infeasible.certificate < 1e-10
    feasible = constraints(X, np.full(4, 0), z)
    with pytest.raises(ValueError, match="gap_tol must lie in"):
        solve_nuclear(feasible, gap_tol=0.0)
    cut = solve_nuclear(feasible, max_iter=3)  # stopped early: valid bounds, a feasible W
    assert cut.status == "iteration_limit" and cut.certificate > 1e-8
    assert cut.details["lower_bound"] <= cut.objective
    assert problem_margin(feasible, cut) >= 1 - 1e-12


def problem_margin(problem, result):
    return float(problem.margins(result.W).min())


def test_schur_complement_rank_one_and_general_forms_match_the_definition():
    from rfattn.svm.nuclear.interior_point import schur

    rng = np.random.default_rng(5)
    d1, d2, m = 3, 4, 6
    U, V = rng.standard_normal((m, d1)), rng.standard_normal((m, d2))
    A = np.einsum("ma,mb->mab", U, V).reshape(m, -1)
    X, Y = (S @ S.T + np.eye(d1 + d2) for S in rng.standard_normal((2, d1 + d2, d1 + d2)))
    B = np.zeros((m, d1 + d2, d1 + d2))
    B[:, :d1, d1:] = A.reshape(m, d1, d2)
    B[:, d1:, :d1] = B[:, :d1, d1:].transpose(0, 2, 1)
    direct = np.einsum("jab,bc,kcd,da->jk", B, X, B, Y)  # <B_j, X B_k Y>
    assert np.allclose(schur(X, Y, d1, A, U, V), direct, rtol=1e-12, atol=1e-12)
    assert np.allclose(schur(X, Y, d1, A, None, None), direct, rtol=1e-12, atol=1e-12)


def test_nuclear_working_set_and_unfactored_rows_give_the_same_optimum():
    from rfattn.svm import solve_nuclear
    from rfattn.svm.problems import AttSVMProblem

    rng = np.random.default_rng(6)
    X, z = rng.standard_normal((60, 6, 5)), rng.standard_normal((60, 5))
    alpha = np.argmax(np.einsum("ntd,de,ne->nt", X, rng.standard_normal((5, 5)), z), axis=1)
    problem = constraints(X, alpha, z)  # 300 constraints > the default working set of 25
    ws = solve_nuclear(problem)
    direct = solve_nuclear(problem, working_set=problem.n_constraints)
    plain = solve_nuclear(AttSVMProblem(problem.A, problem.rows, problem.shape))
    assert ws.details["working_set"] < problem.n_constraints
    assert direct.details["rounds"] == 1 and direct.details["working_set"] == 300
    for res in (ws, direct, plain):
        assert res.status == "optimal" and res.certificate <= 1e-8
        assert res.objective == pytest.approx(direct.objective, rel=2e-8)
    assert set(ws.support) == set(direct.support)
    reused = solve_nuclear(problem, frobenius=solve_frobenius(problem))
    assert reused.objective == ws.objective and reused.details == ws.details


def test_pruning_inactive_constraints_keeps_the_optimum():
    from rfattn.svm import solve_nuclear
    from rfattn.svm.nuclear import Tolerances, interior_point

    X, z, v, Y = instance(25, 5, 10, 7)
    problem = constraints(X, optimal_selection(X, Y, v), z)
    scale = float(np.median(np.linalg.norm(problem.A, axis=1)))
    endgame = Tolerances.from_gap_tol(1e-8).endgame
    paths = {gap: [point for point in interior_point.central_path(
        problem.A / scale, problem.left / scale, problem.right, problem.shape, gap)
        if not point.full_step] for gap in (endgame, 0.0)}
    pruned, full = (paths[gap][-1].solution()[1] for gap in (endgame, 0.0))
    assert paths[endgame][-1].pruned and not paths[0.0][-1].pruned
    assert 0 < np.count_nonzero(pruned) < problem.n_constraints and full.all()
    # the pruned rows are those without multiplier at the optimum, the kept ones carry it
    assert np.abs(pruned - full).max() <= 1e-6 * full.max()
    res = solve_nuclear(problem)
    assert res.status == "optimal" and res.details["rounds"] == 1
    assert set(res.support) <= set(np.flatnonzero(pruned))


def test_nuclear_solve_reruns_unpruned_when_a_pruned_constraint_mattered(monkeypatch):
    from rfattn.svm import solve_nuclear
    from rfattn.svm.nuclear import solve

    X, z, v, Y = instance(10, 5, 10, 8)
    problem = constraints(X, optimal_selection(X, Y, v), z)
    reference = solve_nuclear(problem)
    dropped = reference.support[np.argmax(reference.multipliers[reference.support])]
    honest = solve.central_path

    def path_losing_a_support_row(A, U, V, shape, prune_gap):
        if not prune_gap:
            yield from honest(A, U, V, shape, 0.0)
            return
        keep = np.arange(len(A)) != dropped
        for point in honest(A[keep], U[keep], V[keep], shape, 0.0):

            def solution(inner=point.solution):
                W, y, infeasibility = inner()
                y_all = np.zeros(len(A))
                y_all[keep] = y
                return W, y_all, infeasibility

            yield point._replace(pruned=True, solution=solution)

    monkeypatch.setattr(solve, "central_path", path_losing_a_support_row)
    res = solve_nuclear(problem)
    assert res.status == "optimal" and res.details["rounds"] == 2
    assert res.objective == pytest.approx(reference.objective, rel=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_polish_removes_the_first_order_errors_of_both_bounds(seed):
    from rfattn.svm import solve_nuclear
    from rfattn.svm.nuclear.certificate import nuclear_bounds, polish_dual, polish_primal

    X, z, v, Y = instance(10, 5, 10, seed)
    problem = constraints(X, optimal_selection(X, Y, v), z)
    ref = solve_nuclear(problem)
    low_ref, rng = ref.details["lower_bound"], np.random.default_rng(seed)
    W = ref.W + 1e-6 * np.abs(ref.W).max() * rng.standard_normal(ref.W.shape)
    y = ref.multipliers.copy()
    y[ref.support] *= 1 + 1e-6 * rng.standard_normal(len(ref.support))
    upper, lower, _ = nuclear_bounds(problem, W, y)
    W_polished, rank = polish_primal(problem, W, y)
    assert rank == ref.rank
    polished_upper, polished_lower, _ = nuclear_bounds(problem, W_polished,
                                                       polish_dual(problem, y, rank))
    assert (upper - lower) / upper > 1e-7  # first order in the 1e-6 perturbation
    assert low_ref <= polished_upper and polished_lower <= ref.objective  # still bounds
    assert (polished_upper - polished_lower) / polished_upper <= ref.certificate + 1e-9


@pytest.mark.parametrize("seed", [0, 3])
def test_full_newton_step_certifies_before_the_damped_iterates(seed):
    from rfattn.svm.nuclear import Tolerances, interior_point, nuclear_bounds

    X, z, v, Y = instance(10, 5, 10, seed)
    problem = constraints(X, optimal_selection(X, Y, v), z)
    scale = float(np.median(np.linalg.norm(problem.A, axis=1)))
    endgame = Tolerances.from_gap_tol(1e-8).endgame
    first = {}  # position on the path of the first point certified to 1e-9, by kind
    for k, point in enumerate(interior_point.central_path(problem.A / scale, problem.left / scale,
                                                          problem.right, problem.shape, endgame)):
        W, y, _ = point.solution()
        upper, lower, _ = nuclear_bounds(problem, W / scale, y / scale)
        if (upper - lower) / upper <= 1e-9:
            first.setdefault(point.full_step, k)
        if len(first) == 2:
            break
    assert first[True] < first[False]


def _dense_jacobian(problem, rows, y_S, P, Q):
    """Jacobian of the Newton map F of ``newton`` at (y_S, P, Q), built entry by entry."""
    (d1, d2), r, k = problem.shape, P.shape[1], len(rows)
    G = (rows.T @ y_S).reshape(d1, d2)
    C = np.hstack([np.stack([(a.reshape(d1, d2) @ Q).ravel() for a in rows]),
                   np.stack([(a.reshape(d1, d2).T @ P).ravel() for a in rows])])
    H = np.block([[-np.eye(d1 * r), np.kron(G, np.eye(r))],
                  [np.kron(G.T, np.eye(r)), -np.eye(d2 * r)]])
    return np.block([[np.zeros((k, k)), C], [C.T, H]]), G


def _balanced_factors(W, r):
    left, values, right_t = np.linalg.svd(W)
    return left[:, :r] * np.sqrt(values[:r]), right_t[:r].T * np.sqrt(values[:r])


def _newton_setting(seed=2):
    """A solved instance (rank >= 3), its balanced optimal factors and the Jacobian there."""
    from rfattn.svm import solve_nuclear

    X, z, v, Y = instance(10, 5, 10, seed)
    problem = constraints(X, optimal_selection(X, Y, v), z)
    ref = solve_nuclear(problem, gap_tol=1e-12)
    P, Q = _balanced_factors(ref.W, ref.rank)
    J, _ = _dense_jacobian(problem, problem.A[ref.support], ref.multipliers[ref.support], P, Q)
    return problem, ref, P, Q, J


def test_newton_converges_quadratically_and_drops_a_wrong_support_row():
    from rfattn.svm.nuclear import nuclear_bounds
    from rfattn.svm.nuclear.newton import newton

    problem, ref, _, _, _ = _newton_setting()
    rng = np.random.default_rng(0)
    W = ref.W + 1e-4 * np.abs(ref.W).max() * rng.standard_normal(ref.W.shape)
    y = ref.multipliers * (1 + 1e-4 * rng.standard_normal(problem.n_constraints))
    inactive = np.setdiff1d(np.arange(problem.n_constraints), ref.support)
    loose = inactive[np.argmin(problem.margins(ref.W)[inactive])]  # not tight at the optimum
    gaps = {}
    for name, support in (("true", ref.support), ("one more", np.append(ref.support, loose))):
        gaps[name] = []
        for W_newton, y_newton, _ in newton(problem, W, y, support, steps=6):
            upper, lower, _ = nuclear_bounds(problem, W_newton, y_newton)
            assert ref.details["lower_bound"] <= upper and lower <= ref.objective
            gaps[name].append((upper - lower) / upper)
    assert gaps["true"][1] <= 1e-3 * gaps["true"][0] and gaps["true"][2] <= 1e-12
    assert min(gaps["one more"]) <= 1e-12  # the loose row left the support on the way


def test_rotations_span_the_null_space_of_the_newton_jacobian():
    from rfattn.svm.nuclear.newton import rotations

    problem, ref, P, Q, J = _newton_setting()
    r, k = ref.rank, len(ref.support)
    assert r >= 3
    E = np.vstack([np.zeros((k, r * (r - 1) // 2)), rotations(P, Q)])
    singular = np.linalg.svd(J, compute_uv=False)
    assert np.sum(singular < 1e-8 * singular[0]) == r * (r - 1) // 2  # singular: rotations only
    assert np.abs(J @ E).max() <= 1e-8 * np.abs(E).max()
    bordered = np.block([[J, E], [E.T, np.zeros((E.shape[1],) * 2)]])
    assert np.linalg.cond(bordered) < 1e8  # the bordered system is regular at the optimum


def test_newton_step_equals_the_bordered_system_solved_densely():
    from rfattn.svm.nuclear.newton import newton, rotations

    problem, ref, _, _, _ = _newton_setting()
    rng = np.random.default_rng(1)
    W = ref.W + 1e-3 * np.abs(ref.W).max() * rng.standard_normal(ref.W.shape)
    y = ref.multipliers * (1 + 1e-3 * rng.standard_normal(problem.n_constraints))
    W_step, y_step, _ = next(newton(problem, W, y, ref.support, steps=1))
    # reference: the full bordered system [[J, E], [E^T, 0]] (d, nu) = (-F, 0) with numpy
    r, k, rows = ref.rank, len(ref.support), problem.A[ref.support]
    (d1, d2), n_P = problem.shape, problem.shape[0] * ref.rank
    P, Q = _balanced_factors(W, r)
    y_S = y[ref.support]
    J, G = _dense_jacobian(problem, rows, y_S, P, Q)
    E = np.vstack([np.zeros((k, r * (r - 1) // 2)), rotations(P, Q)])
    system = np.block([[J, E], [E.T, np.zeros((E.shape[1],) * 2)]])
    F = np.concatenate([rows @ (P @ Q.T).ravel() - 1, (G @ Q - P).ravel(), (G.T @ P - Q).ravel()])
    step = np.linalg.solve(system, -np.concatenate([F, np.zeros(E.shape[1])]))
    P_ref = P + step[k:k + n_P].reshape(d1, r)
    Q_ref = Q + step[k + n_P:k + n_P + d2 * r].reshape(d2, r)
    assert np.abs(W_step - P_ref @ Q_ref.T).max() <= 1e-10 * np.abs(W_step).max()
    assert np.abs(y_step[ref.support] - np.maximum(y_S + step[:k], 0)).max() <= 1e-10 * y.max()


def test_newton_adds_a_missing_support_row():
    from rfattn.svm.nuclear import nuclear_bounds
    from rfattn.svm.nuclear.newton import newton

    problem, ref, _, _, _ = _newton_setting()
    rng = np.random.default_rng(0)
    W = ref.W + 1e-4 * np.abs(ref.W).max() * rng.standard_normal(ref.W.shape)
    y = ref.multipliers * (1 + 1e-4 * rng.standard_normal(problem.n_constraints))
    missing = ref.support[np.argmin(ref.multipliers[ref.support])]  # as an iterate misses it
    gaps = []
    for W_newton, y_newton, _ in newton(problem, W, y, np.setdiff1d(ref.support, missing),
                                         steps=6):
        upper, lower, _ = nuclear_bounds(problem, W_newton, y_newton)
        assert ref.details["lower_bound"] <= upper and lower <= ref.objective
        gaps.append((upper - lower) / upper)
    assert gaps[0] > 1e-3 and min(gaps) <= 1e-12  # the step violates the row, then it joins
