r"""Att-SVM study jobs (Tarzanagh, Li, Thrampoulidis, Oymak 2023, arXiv 2308.16898).

:func:`run_svm_job` dispatches on ``cfg['kind']`` and returns tidy rows:

- ``trajectory`` (E1, E2): 2-D data, W = 0 (or Q = 0) start; the paths :math:`W(k) z_i` of both
  parameterizations, the tokens, and the directions :math:`W^{svm} z_i` of both SVMs;
- ``convergence`` (E3, E6): ``runs`` random instances trained at once; per recorded step the
  correlation of the iterate with the Frobenius and nuclear SVMs of the selection the final
  softmax makes, softmax saturation and norm; per run the ranks and the class (global, local,
  neither, or infeasible);
- ``nonlinear`` (E4): ReLU head; per accepted run 1 - corr of the final iterate with the
  multi-token SVM-equivalence, its direction alone and the single-token W-SVM;
- ``rank`` (E5 and feasibility): alpha = opt on random instances; feasibility and the rank of
  both SVMs solved accurately, and the rank the official pipeline reports (an infeasible
  instance counted as rank 1).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from ..core.checks import ConfigError
from ..core.runtime import generator, get_logger, progress
from ..core.study import Study
from .dynamics import AttentionData, correlation, random_data, saturation, softmax_scores
from .nuclear import solve_nuclear
from .problems import constraints, optimal_selection
from .selection import classify, multi_token_svm
from .settings import (SETTINGS, ConvergenceSettings, NonlinearSettings, RankSettings,
                       SVMSettings, TrajectorySettings)
from .solvers import matrix_rank, solve_cvxpy, solve_frobenius

log = get_logger(__name__)


def _instance(data, r: int):
    return tuple(a[r].cpu().numpy() for a in (data.X, data.z, data.Y, data.v))


def _data(s: SVMSettings, runs: int, d: int, head: str = "linear") -> AttentionData:
    return random_data(runs, s.n, s.N, d, generator(s.seed, "svm", "data"), head=head)


def _solve_both(s, problem):
    frob = solve_frobenius(problem, s.rank_rtol)
    nuc = solve_nuclear(problem, s.rank_rtol, s.gap_tol, frobenius=frob
                        ) if frob.optimal else frob
    return frob, nuc


def _trajectory(s: TrajectorySettings) -> list[dict]:
    data = _data(s, 1, 2)
    X, z, Y, v = _instance(data, 0)
    rows = [{"analysis": "token", "i": i, "t": t, "metric": c, "value": float(X[i, t, j]),
             "optimal": int(t == np.argmax(Y[i] * X[i] @ v))}
            for i in range(s.n) for t in range(s.N) for j, c in enumerate("xy")]
    for par in ("W", "KQ"):
        traj = s.train(data, par)
        path = torch.einsum("kde,ne->knd", traj.W[0], data.z[0]).numpy()
        for k, step in enumerate(traj.steps.tolist()):
            for i in range(s.n):
                rows += [{"analysis": "path", "parameterization": par, "step": step, "i": i,
                          "metric": c, "value": float(path[k, i, j])} for j, c in enumerate("xy")]
        alpha = traj.scores[0].argmax(-1).numpy()
        frob, nuc = _solve_both(s, constraints(X, alpha, z))
        for name, res in (("frobenius", frob), ("nuclear", nuc)):
            if not res.optimal:
                continue
            direction = res.W @ z.T  # (2, n)
            rows += [{"analysis": "svm", "parameterization": par, "svm": name, "i": i,
                      "metric": c, "value": float(direction[j, i])}
                     for i in range(s.n) for j, c in enumerate("xy")]
            rows.append({"analysis": "final", "parameterization": par, "svm": name,
                         "metric": "correlation",
                         "value": float(correlation(traj.W[0, -1], torch.tensor(res.W)))})
    return rows


def _convergence(s: ConvergenceSettings) -> list[dict]:
    data = _data(s, s.runs, s.d)
    traj = s.train(data, s.parameterization)
    alpha = traj.scores.argmax(-1).numpy()
    rows, svms = [], []
    for r in progress(range(s.runs), "SVMs of the runs"):
        X, z, Y, v = _instance(data, r)
        frob, nuc = _solve_both(s, constraints(X, alpha[r], z)) if s.nuclear else (
            solve_frobenius(constraints(X, alpha[r], z), s.rank_rtol), None)
        label = classify(X, z, Y, v, alpha[r], frob) if frob.optimal else "infeasible"
        sv = torch.linalg.svdvals(traj.W[r, -1])
        run = {"analysis": "run", "run": r}
        rows += [{**run, "metric": f"class_{c}", "value": float(label == c)}
                 for c in ("global", "local", "neither", "infeasible")]
        rows.append({**run, "metric": "iterate_rank", "value": float(
            (sv > s.iterate_rank_rtol * sv[0]).sum())})
        if frob.optimal:
            rows.append({**run, "metric": "frobenius_rank", "value": float(frob.rank)})
            svms.append((r, "frobenius", frob.W))
        if nuc is not None and nuc.optimal:
            rows.append({**run, "metric": "nuclear_rank", "value": float(nuc.rank)})
            rows.append({**run, "metric": "nuclear_gap", "value": float(nuc.certificate)})
            svms.append((r, "nuclear", nuc.W))
    steps = traj.steps.tolist()
    for r, name, W in svms:
        corr = correlation(traj.W[r], torch.tensor(W)[None]).tolist()
        rows += [{"analysis": "step", "run": r, "svm": name, "step": k,
                  "metric": "correlation", "value": c} for k, c in zip(steps, corr)]
    for k, step in enumerate(steps):
        with torch.no_grad():
            sat = saturation(softmax_scores(traj.W[:, k].to(data.X), data))
        norms = traj.W[:, k].norm(dim=(-1, -2))
        sv = torch.linalg.svdvals(traj.W[:, k])
        ranks = (sv > s.iterate_rank_rtol * sv[:, :1]).sum(-1)
        rows += [{"analysis": "step", "run": r, "step": step, "metric": m, "value": float(v)}
                 for r in range(s.runs) for m, v in (("saturation", sat[r]),
                                                          ("norm", norms[r]),
                                                          ("rank", ranks[r]))]
    return [{**row, "parameterization": s.parameterization} for row in rows]


def _nonlinear(s: NonlinearSettings) -> list[dict]:
    data = _data(s, s.runs, s.d, head="relu")
    traj = s.train(data, "W", head="relu")
    rows = []
    for r in progress(range(s.runs), "SVM-equivalence of the runs"):
        X, z, Y, v = _instance(data, r)
        scores = traj.scores[r].numpy()
        reason = None
        if ((scores > 1e-6) & (scores <= 1e-3)).any():
            reason = "ambiguous"  # a softmax weight between the thresholds
        elif (scores <= 1e-6).sum() == 0:
            reason = "nothing_suppressed"
        elif (Y > 0).all():
            reason = "one_label"
        W_final = traj.W[r, -1].numpy()
        if reason is None:
            equiv = multi_token_svm(X, z, scores)
            single = solve_frobenius(constraints(X, scores.argmax(-1), z))
            if not (equiv.W_dir.optimal and single.optimal):
                reason = "failed_solve"
        rows.append({"analysis": "filter", "run": r, "metric": f"rejected_{reason or 'no'}",
                     "value": 1.0})
        if reason is not None:
            continue

        def gap(P):
            return 1 - float(correlation(torch.tensor(W_final), torch.tensor(P)))

        rows += [{"analysis": "run", "run": r, "metric": m, "value": v} for m, v in (
            ("1-corr_equivalence", gap(equiv.prediction(W_final))),
            ("1-corr_direction", gap(equiv.W_dir.W)),
            ("1-corr_single_token", gap(single.W)),
            ("selected_tokens", float(np.mean([len(o) for o in equiv.selected]))))]
    return rows


def _official_nuclear_rank(problem) -> int:
    """The official pipeline: cvxpy's default SDP solve (SCS), then ``np.linalg.matrix_rank``."""
    try:
        result = solve_cvxpy(problem, "nuc")
    except ImportError as err:
        raise ConfigError(f"official_sdp: {err}, or set official_sdp=false") from err
    return 1 if result.W is None else int(np.linalg.matrix_rank(result.W))


def _rank(s: RankSettings) -> list[dict]:
    data = _data(s, s.runs, s.d)
    rows = []
    for r in progress(range(s.runs), "SVMs of the instances"):
        X, z, Y, v = _instance(data, r)
        problem = constraints(X, optimal_selection(X, Y, v), z)
        frob, nuc = _solve_both(s, problem)
        run = {"analysis": "instance", "run": r}
        rows.append({**run, "metric": "feasible", "value": float(frob.optimal)})
        # the official notebooks: matrix_rank(None) == 1 for an infeasible instance
        rows.append({**run, "metric": "official_rank_frobenius",
                     "value": float(frob.rank if frob.optimal else 1)})
        if frob.optimal:
            rows.append({**run, "metric": "frobenius_rank", "value": float(frob.rank)})
        if s.official_sdp:
            rows.append({**run, "metric": "official_rank_nuclear",
                         "value": float(_official_nuclear_rank(problem) if frob.optimal else 1)})
        if nuc.optimal:
            rows += [{**run, "metric": "nuclear_rank", "value": float(nuc.rank)},
                     {**run, "metric": "nuclear_gap", "value": float(nuc.certificate)},
                     {**run, "metric": "nuclear_rank_loose", "value": float(
                         matrix_rank(nuc.W, s.loose_rank_rtol))}]
    return rows


JOBS = {"trajectory": _trajectory, "convergence": _convergence, "nonlinear": _nonlinear,
        "rank": _rank}


def svm_rows(s: SVMSettings) -> pd.DataFrame:
    """The rows of one validated Att-SVM job (:func:`run_svm_job`)."""
    log.info("svm %s: n=%d, N=%d, d=%d, runs=%s, seed %d, %s", s.kind, s.n, s.N, s.d,
             s.parallel_runs, s.seed, s.torch_device)
    start = time.perf_counter()
    rows = pd.DataFrame([{"kind": s.kind, "n": s.n, "N": s.N, "d": s.d, "seed": s.seed, **row}
                         for row in JOBS[s.kind](s)])
    log.info("svm %s done in %.1fs: %s", s.kind, time.perf_counter() - start, _headline(rows))
    return rows


STUDY = Study("svm", SETTINGS, svm_rows)


def run_svm_job(cfg: dict) -> pd.DataFrame:
    """One Att-SVM job (module docstring).

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/svm.yaml`` and its ``kind``.

    Returns
    -------
    DataFrame
        Tidy rows: the setting columns (kind, n, N, d, seed), then the kind's own columns
        (analysis, run, step, parameterization, svm, ...), ``metric`` and ``value``.
    """
    return STUDY.run(cfg)


def _headline(rows: pd.DataFrame) -> str:
    """The job's main number, for the log."""
    means = rows.groupby("metric").value.mean()
    for metric, label in (("feasible", "feasible share"), ("class_global", "global share"),
                          ("1-corr_equivalence", "mean 1 - corr (equivalence)"),
                          ("correlation", "mean correlation")):
        if metric in means:
            return f"{label} {means[metric]:.4g}"
    return f"{len(rows)} rows"
