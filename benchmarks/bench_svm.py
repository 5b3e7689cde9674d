"""Att-SVM solvers against cvxpy, and the 100-run E3 study.

    python benchmarks/bench_svm.py [--quick]

- Frobenius W-SVM: ``rfattn.svm.solve_frobenius`` (Lawson-Hanson LDP, one NNLS) against cvxpy
  with Clarabel (the solver cvxpy picks for the official code's second-order cone problem) at
  default and at tight tolerance; 50 to 20,000 constraints.
- Nuclear KQ-SVM: ``rfattn.svm.solve_nuclear`` (primal-dual interior point with the HKM
  direction, working set above d^2 constraints, certified by the duality gap) against cvxpy with
  SCS (the official code's SDP solver) at default and at tight tolerance (eps 1e-9); 50 to
  20,000 constraints.
- E3: 100 runs (n = 6, N = 8, d = 10, 2000 steps) of both parameterizations, with the SVM
  solves of every run.

Instances are feasible by construction: the selection is the argmax of a random planted W.
Writes benchmarks/results/svm.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from rfattn.core import generator
from rfattn.svm import constraints, solve_cvxpy, solve_frobenius, solve_nuclear

RESULTS = Path(__file__).resolve().parent / "results"


def planted(n: int, N: int, d: int, seed: int):
    """A feasible instance: n samples of N unit tokens in R^d, selection by a random W."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N, d))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    z = rng.standard_normal((n, d))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    W = rng.standard_normal((d, d))
    alpha = np.argmax(np.einsum("ntd,de,ne->nt", X, W, z), axis=1)
    return constraints(X, alpha, z)


def timed(fn, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def cvx_frobenius(problem, **opts):
    with warnings.catch_warnings():  # Clarabel flags near-tolerance solutions; we compare them
        warnings.simplefilter("ignore", UserWarning)
        return solve_cvxpy(problem, "fro", "CLARABEL", **opts).objective


def cvx_nuclear(problem, **opts):
    return solve_cvxpy(problem, "nuc", "SCS", **opts)


def bench_frobenius(sizes):
    out = []
    tight = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}
    for n, N, d in sizes:
        problem = planted(n, N, d, seed=n * 1000 + d)
        t_ours, res = timed(lambda: solve_frobenius(problem), repeat=3)
        t_cvx, val = timed(lambda: cvx_frobenius(problem))
        t_tight, val_tight = timed(lambda: cvx_frobenius(problem, **tight))
        row = {"n": n, "N": N, "d": d, "constraints": problem.n_constraints,
               "status": res.status, "kkt_residual": res.certificate,
               "ours_s": t_ours, "clarabel_s": t_cvx, "clarabel_tight_s": t_tight,
               "speedup_vs_clarabel": t_cvx / t_ours,
               "speedup_vs_clarabel_tight": t_tight / t_ours,
               "rel_diff_clarabel": abs(res.objective - val) / val,
               "rel_diff_clarabel_tight": abs(res.objective - val_tight) / val_tight}
        print(json.dumps(row))
        out.append(row)
    return out


def bench_nuclear(sizes):
    out = []
    for n, N, d in sizes:
        problem = planted(n, N, d, seed=n * 1000 + d)
        repeat = 3 if problem.n_constraints <= 2000 else 1
        t_ours, res = timed(lambda: solve_nuclear(problem), repeat=repeat)
        t_scs, scs = timed(lambda: cvx_nuclear(problem))
        t_tight, tight = timed(lambda: cvx_nuclear(problem, eps=1e-9, max_iters=200000))
        lower = res.details["lower_bound"]
        # the optimum lies in [lower, objective]; how far SCS tight lands outside that interval
        outside = max(lower - tight.objective, tight.objective - res.objective, 0.0)
        row = {"n": n, "N": N, "d": d, "constraints": problem.n_constraints,
               "status": res.status, "certified_gap": res.certificate, "rank": res.rank,
               "iterations": res.details["iterations"], "rounds": res.details["rounds"],
               "ours_s": t_ours, "scs_s": t_scs, "scs_tight_s": t_tight,
               "speedup_vs_scs": t_scs / t_ours, "speedup_vs_scs_tight": t_tight / t_ours,
               "rel_diff_scs": abs(res.objective - scs.objective) / scs.objective,
               "rel_diff_scs_tight": abs(res.objective - tight.objective) / tight.objective,
               "scs_tight_outside_certified": outside / res.objective,
               "scs_tight_violation": tight.certificate}
        print(json.dumps(row))
        out.append(row)
    return out


def bench_e3(runs: int = 100):
    from rfattn.svm.dynamics import random_data, train_attention
    from rfattn.svm.selection import classify

    data = random_data(runs, 6, 8, 10, generator(0, "bench", "e3"))
    start = time.perf_counter()
    for par in ("W", "KQ"):
        traj = train_attention(data, 2000, 0.1, par, record_every=20,
                               generator=generator(0, "bench", par))
        alpha = traj.scores.argmax(-1).numpy()
        for r in range(runs):
            X, z, Y, v = (a[r].numpy() for a in (data.X, data.z, data.Y, data.v))
            problem = constraints(X, alpha[r], z)
            frob = solve_frobenius(problem)
            if par == "KQ":
                solve_nuclear(problem, frobenius=frob)
            classify(X, z, Y, v, alpha[r], frob)
    return {"runs": runs, "seconds": time.perf_counter() - start,
            "torch_threads": torch.get_num_threads()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smaller sizes only")
    args = parser.parse_args(argv)
    frob = [(10, 6, 10), (50, 11, 15), (200, 11, 20), (1000, 11, 20), (2000, 11, 20)]
    nuc = [(10, 6, 10), (25, 5, 10), (50, 5, 15), (100, 6, 20), (200, 11, 20), (1000, 11, 20),
           (2000, 11, 20)]
    if args.quick:
        frob, nuc = frob[:3], nuc[:2]
    warm = planted(5, 3, 3, seed=0)  # cvxpy's first solve pays its imports: not timed
    cvx_frobenius(warm)
    cvx_nuclear(warm)
    result = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} threads",
              "frobenius": bench_frobenius(frob), "nuclear": bench_nuclear(nuc),
              "e3": bench_e3()}
    print(json.dumps(result["e3"]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "svm.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {RESULTS / 'svm.json'}")


if __name__ == "__main__":
    main()
