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
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..core.checks import (ConfigError, boolean, choice, fits_in_memory, positive_int,
                           real)
from ..core.runtime import available_memory, generator, get_logger, progress
from ..core.settings import RunSettings, settings_from
from .dynamics import (INITS, LOSSES, PARAMETERIZATIONS, AttentionData, correlation, random_data,
                       saturation, softmax_scores, train_attention)
from .nuclear import Tolerances, solve_nuclear
from .problems import constraints, optimal_selection
from .selection import classify, multi_token_svm
from .solvers import matrix_rank, solve_cvxpy, solve_frobenius

KINDS = ("trajectory", "convergence", "nonlinear", "rank")
log = get_logger(__name__)


@dataclass(frozen=True)
class SVMSettings(RunSettings):
    """Settings every Att-SVM job shares.

    Vocabulary (Tarzanagh et al. 2023): n samples per instance, N tokens per sample (the
    paper's T), d token dimension; ``dtype`` is that of gradient descent (the SVMs are solved
    in float64).
    """

    kind: str
    n: int
    N: int
    d: int

    def __post_init__(self):
        super().__post_init__()
        choice("kind", self.kind, KINDS)
        positive_int("n", self.n)
        positive_int("N", self.N)
        if self.N < 2:
            raise ConfigError(f"N (tokens) must be >= 2: with one token there is nothing to "
                              f"select (got {self.N})")
        positive_int("d", self.d)


@dataclass(frozen=True)
class TrainingSettings(SVMSettings):
    """Gradient descent of the official code (module :mod:`rfattn.svm.dynamics`)."""

    steps: int
    lr: float
    loss: str
    normalized: bool
    init: str
    record_every: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("steps", self.steps)
        real("lr", self.lr, low=0.0, high=1e3, low_open=True)
        choice("loss", self.loss, LOSSES)
        boolean("normalized", self.normalized)
        choice("init", self.init, INITS)
        positive_int("record_every", self.record_every)

    def train(self, data: AttentionData, parameterization: str, head: str = "linear"):
        """GD of every run at once on the job's device and dtype; iterates come to the CPU."""
        return train_attention(data.to(self.torch_device, self.torch_dtype), self.steps,
                               self.lr, parameterization, head, self.loss, self.normalized,
                               self.init, record_every=self.record_every,
                               generator=generator(self.seed, "svm", "init", parameterization))


@dataclass(frozen=True)
class DynamicsSettings(TrainingSettings):
    """Gradient descent, then both SVMs of the tokens it selects."""

    rank_rtol: float
    gap_tol: float

    def __post_init__(self):
        super().__post_init__()
        real("rank_rtol", self.rank_rtol, low=0.0, high=1.0, low_open=True)
        Tolerances.from_gap_tol(self.gap_tol)


@dataclass(frozen=True)
class TrajectorySettings(DynamicsSettings):
    """Kind ``trajectory`` (E1, E2): one 2-D instance, both parameterizations, both SVMs."""

    def __post_init__(self):
        super().__post_init__()
        if self.d != 2:
            raise ConfigError(f"d must be 2 for kind trajectory (2-D pictures; got {self.d})")


@dataclass(frozen=True)
class ConvergenceSettings(DynamicsSettings):
    """Kind ``convergence`` (E3, E6): ``runs`` instances trained at once, against the SVMs."""

    runs: int
    parameterization: str
    nuclear: bool
    iterate_rank_rtol: float

    def __post_init__(self):
        super().__post_init__()
        positive_int("runs", self.runs)
        choice("parameterization", self.parameterization, PARAMETERIZATIONS)
        boolean("nuclear", self.nuclear)
        real("iterate_rank_rtol", self.iterate_rank_rtol, low=0.0, high=1.0, low_open=True)


@dataclass(frozen=True)
class NonlinearSettings(TrainingSettings):
    """Kind ``nonlinear`` (E4): ReLU head; the multi-token SVM-equivalence."""

    runs: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("runs", self.runs)


@dataclass(frozen=True)
class RankSettings(SVMSettings):
    """Kind ``rank`` (E5, feasibility): alpha = opt; feasibility and ranks of both SVMs."""

    runs: int
    rank_rtol: float
    gap_tol: float
    loose_rank_rtol: float
    official_sdp: bool

    def __post_init__(self):
        super().__post_init__()
        positive_int("runs", self.runs)
        real("rank_rtol", self.rank_rtol, low=0.0, high=1.0, low_open=True)
        Tolerances.from_gap_tol(self.gap_tol)
        real("loose_rank_rtol", self.loose_rank_rtol, low=0.0, high=1.0, low_open=True)
        boolean("official_sdp", self.official_sdp)


SETTINGS = {"trajectory": TrajectorySettings, "convergence": ConvergenceSettings,
            "nonlinear": NonlinearSettings, "rank": RankSettings}


def validate(cfg: dict) -> SVMSettings:
    """Check every value of a job config before any work.

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/svm.yaml`` and its ``kind``.

    Returns
    -------
    SVMSettings
        The kind's settings class (:data:`SETTINGS`).
    """
    kind = choice("kind", cfg.get("kind"), KINDS)
    return settings_from(SETTINGS[kind], cfg)


def estimate_memory(s: SVMSettings) -> int:
    """Peak bytes of the job's largest tensors: the runs' data, the recorded iterates and the
    autograd buffers of gradient descent, and one instance's constraint matrix (float64)."""
    item = torch.finfo(s.torch_dtype).bits // 8
    runs = getattr(s, "runs", 1)
    data = runs * (s.n * s.N * s.d + s.n * s.d + s.d + s.d * s.d) * item
    rows = s.n * max(s.N - 1, 1) * s.N  # seq2seq-sized upper bound on the constraints
    solve = 4 * rows * s.d * s.d * 8
    if not hasattr(s, "steps"):
        return data + runs * solve // max(runs, 1)
    records = runs * (s.steps // s.record_every + 2) * s.d * s.d * item * 2
    autograd = 12 * runs * s.n * s.N * s.d * item
    return data + records + autograd + solve


STEP_SECONDS = 5e-4  # per gradient step: the cost of small tensors is the calls themselves


def estimate_seconds(s: SVMSettings) -> float:
    """Rough run time on a 2-core CPU (calibrated on the quick sweeps): gradient steps of all
    runs at once, then per run the SVM solves (a few ms at 50 constraints, growing like
    constraints^1.5) and the official SCS solve when asked."""
    runs = getattr(s, "runs", 1)
    train = 0.0
    if hasattr(s, "steps"):
        per_step = STEP_SECONDS + runs * s.n * s.N * s.d * 40 / 5e9
        train = s.steps * per_step * (2 if s.kind == "trajectory" else 1)
    constraints = s.n * (s.N - 1)
    solve = 1e-3 + (4e-3 * (constraints / 50) ** 1.5 if getattr(s, "nuclear", True) else 0)
    solve += 0.015 if getattr(s, "official_sdp", False) else 0.0
    return 0.3 + train + runs * solve * (2 if s.kind == "trajectory" else 1)


def check_fits(s: SVMSettings) -> None:
    fits_in_memory(f"kind {s.kind} with runs={getattr(s, 'runs', 1)}", estimate_memory(s),
                   0.8 * available_memory(s.torch_device), "lower runs, n, N, d or steps")


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
    s = validate(cfg)
    check_fits(s)
    log.info("svm %s: n=%d, N=%d, d=%d, runs=%s, seed %d, %s", s.kind, s.n, s.N, s.d,
             getattr(s, "runs", 1), s.seed, s.torch_device)
    start = time.perf_counter()
    rows = pd.DataFrame([{"kind": s.kind, "n": s.n, "N": s.N, "d": s.d, "seed": s.seed, **row}
                         for row in JOBS[s.kind](s)])
    log.info("svm %s done in %.1fs: %s", s.kind, time.perf_counter() - start, _headline(rows))
    return rows


def _headline(rows: pd.DataFrame) -> str:
    """The job's main number, for the log."""
    means = rows.groupby("metric").value.mean()
    for metric, label in (("feasible", "feasible share"), ("class_global", "global share"),
                          ("1-corr_equivalence", "mean 1 - corr (equivalence)"),
                          ("correlation", "mean correlation")):
        if metric in means:
            return f"{label} {means[metric]:.4g}"
    return f"{len(rows)} rows"
