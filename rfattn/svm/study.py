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

import numpy as np
import pandas as pd
import torch

from ..core.checks import ConfigError, choice, positive, positive_int
from ..core.runtime import generator, resolve_device
from .dynamics import (correlation, random_data, saturation, softmax_scores,
                       train_attention)
from .nuclear import solve_nuclear
from .problems import constraints, optimal_selection
from .selection import classify, multi_token_svm
from .solvers import matrix_rank, solve_cvxpy, solve_frobenius

KINDS = ("trajectory", "convergence", "nonlinear", "rank")


def validate(cfg: dict) -> None:
    choice("kind", cfg["kind"], KINDS)
    for key in ("runs", "n", "T", "d", "steps", "record_every"):
        positive_int(key, cfg[key])
    positive("lr", cfg["lr"])
    positive("rank_rtol", cfg["rank_rtol"])
    positive("gap_tol", cfg["gap_tol"])


def _instance(data, r: int):
    return tuple(a[r].cpu().numpy() for a in (data.X, data.z, data.Y, data.v))


def _train(cfg, data, parameterization, head="linear"):
    """GD of every run at once on ``cfg['device']``; iterates come back to the CPU."""
    return train_attention(data.to(resolve_device(cfg["device"])), cfg["steps"], cfg["lr"],
                           parameterization, head, cfg["loss"],
                           cfg["normalized"], cfg["init"], record_every=cfg["record_every"],
                           gen=generator(cfg["seed"], "svm", "init", parameterization))


def _solve_both(cfg, problem):
    frob = solve_frobenius(problem, cfg["rank_rtol"])
    nuc = solve_nuclear(problem, cfg["rank_rtol"], cfg["gap_tol"], frobenius=frob
                        ) if frob.optimal else frob
    return frob, nuc


def _trajectory(cfg):
    data = random_data(1, cfg["n"], cfg["T"], 2, generator(cfg["seed"], "svm", "data"))
    X, z, Y, v = _instance(data, 0)
    rows = [{"analysis": "token", "i": i, "t": t, "metric": c, "value": float(X[i, t, j]),
             "optimal": int(t == np.argmax(Y[i] * X[i] @ v))}
            for i in range(cfg["n"]) for t in range(cfg["T"]) for j, c in enumerate("xy")]
    for par in ("W", "KQ"):
        traj = _train(cfg, data, par)
        path = torch.einsum("kde,ne->knd", traj.W[0], data.z[0]).numpy()
        for k, step in enumerate(traj.steps.tolist()):
            for i in range(cfg["n"]):
                rows += [{"analysis": "path", "parameterization": par, "step": step, "i": i,
                          "metric": c, "value": float(path[k, i, j])} for j, c in enumerate("xy")]
        alpha = traj.scores[0].argmax(-1).numpy()
        frob, nuc = _solve_both(cfg, constraints(X, alpha, z))
        for name, res in (("frobenius", frob), ("nuclear", nuc)):
            if not res.optimal:
                continue
            direction = res.W @ z.T  # (2, n)
            rows += [{"analysis": "svm", "parameterization": par, "svm": name, "i": i,
                      "metric": c, "value": float(direction[j, i])}
                     for i in range(cfg["n"]) for j, c in enumerate("xy")]
            rows.append({"analysis": "final", "parameterization": par, "svm": name,
                         "metric": "correlation",
                         "value": float(correlation(traj.W[0, -1], torch.tensor(res.W)))})
    return rows


def _convergence(cfg):
    data = random_data(cfg["runs"], cfg["n"], cfg["T"], cfg["d"],
                       generator(cfg["seed"], "svm", "data"))
    traj = _train(cfg, data, cfg["parameterization"])
    alpha = traj.scores.argmax(-1).numpy()
    rows, svms = [], []
    for r in range(cfg["runs"]):
        X, z, Y, v = _instance(data, r)
        frob, nuc = _solve_both(cfg, constraints(X, alpha[r], z)) if cfg["nuclear"] else (
            solve_frobenius(constraints(X, alpha[r], z), cfg["rank_rtol"]), None)
        label = classify(X, z, Y, v, alpha[r], frob) if frob.optimal else "infeasible"
        s = torch.linalg.svdvals(traj.W[r, -1])
        run = {"analysis": "run", "run": r}
        rows += [{**run, "metric": f"class_{c}", "value": float(label == c)}
                 for c in ("global", "local", "neither", "infeasible")]
        rows.append({**run, "metric": "iterate_rank", "value": float(
            (s > cfg["iterate_rank_rtol"] * s[0]).sum())})
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
        ranks = (sv > cfg["iterate_rank_rtol"] * sv[:, :1]).sum(-1)
        rows += [{"analysis": "step", "run": r, "step": step, "metric": m, "value": float(v)}
                 for r in range(cfg["runs"]) for m, v in (("saturation", sat[r]),
                                                          ("norm", norms[r]),
                                                          ("rank", ranks[r]))]
    return [{**row, "parameterization": cfg["parameterization"]} for row in rows]


def _nonlinear(cfg):
    data = random_data(cfg["runs"], cfg["n"], cfg["T"], cfg["d"],
                       generator(cfg["seed"], "svm", "data"), head="relu")
    traj = _train(cfg, data, "W", head="relu")
    rows = []
    for r in range(cfg["runs"]):
        X, z, Y, v = _instance(data, r)
        s = traj.scores[r].numpy()
        reason = None
        if ((s > 1e-6) & (s <= 1e-3)).any():
            reason = "ambiguous"  # a softmax weight between the thresholds
        elif (s <= 1e-6).sum() == 0:
            reason = "nothing_suppressed"
        elif (Y > 0).all():
            reason = "one_label"
        W_final = traj.W[r, -1].numpy()
        if reason is None:
            equiv = multi_token_svm(X, z, s)
            single = solve_frobenius(constraints(X, s.argmax(-1), z))
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


def _rank(cfg):
    data = random_data(cfg["runs"], cfg["n"], cfg["T"], cfg["d"],
                       generator(cfg["seed"], "svm", "data"))
    rows = []
    for r in range(cfg["runs"]):
        X, z, Y, v = _instance(data, r)
        problem = constraints(X, optimal_selection(X, Y, v), z)
        frob, nuc = _solve_both(cfg, problem)
        run = {"analysis": "instance", "run": r}
        rows.append({**run, "metric": "feasible", "value": float(frob.optimal)})
        # the official notebooks: matrix_rank(None) == 1 for an infeasible instance
        rows.append({**run, "metric": "official_rank_frobenius",
                     "value": float(frob.rank if frob.optimal else 1)})
        if frob.optimal:
            rows.append({**run, "metric": "frobenius_rank", "value": float(frob.rank)})
        if cfg["official_sdp"]:
            rows.append({**run, "metric": "official_rank_nuclear",
                         "value": float(_official_nuclear_rank(problem) if frob.optimal else 1)})
        if nuc.optimal:
            rows += [{**run, "metric": "nuclear_rank", "value": float(nuc.rank)},
                     {**run, "metric": "nuclear_gap", "value": float(nuc.certificate)},
                     {**run, "metric": "nuclear_rank_loose", "value": float(
                         matrix_rank(nuc.W, cfg["loose_rank_rtol"]))}]
    return rows


def run_svm_job(cfg: dict) -> pd.DataFrame:
    """One job: validated config -> tidy rows with the setting columns prepended."""
    validate(cfg)
    rows = {"trajectory": _trajectory, "convergence": _convergence, "nonlinear": _nonlinear,
            "rank": _rank}[cfg["kind"]](cfg)
    setting = {"kind": cfg["kind"], "n": cfg["n"], "T": cfg["T"], "d": cfg["d"],
               "seed": cfg["seed"]}
    return pd.DataFrame([{**setting, **row} for row in rows])
