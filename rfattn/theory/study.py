r"""Theory study jobs: learning-curve predictions for the lab's simulations.

:func:`run_theory_job` dispatches on ``cfg['kind']`` and returns tidy rows:

- ``rfa_curves``: for one RFA model (``conf/model/``) and every target of ``targets``, the
  spectrum of the model's infinite-width kernel on ``n_sample`` fresh samples (with a fitted
  tail), the predicted test error of kernel ridge regression (``features`` = inf) and of the
  model's finite number of random features, at the best ridge of the lab's grid for every n
  of ``n_grid``; the convergence of the predictions from half the sample; the top of the
  spectrum and each target's power on it (learnability);
- ``double_descent``: zero-mean ReLU RFA with M heads fitted at a small fixed ridge across
  n = M (d+1), simulated over seeds, and the random-feature prediction (P = M (d+1) and the
  number of heads P = M) beside the kernel's;
- ``sphere``: the NTK of a fully connected network on :math:`S^{D-1}`: its exact spectrum
  (Funk-Hecke, :mod:`rfattn.theory.sphere`) against the sampled one, and the learning curve of
  kernel regression with it (ridgeless, gradient flow at t = infinity) predicted and simulated
  on a target of known power per degree; with ``network_width > 0``, also wide networks of
  that architecture trained by gradient descent on the same samples (centred,
  :math:`f(x;\theta) - f(x;\theta_0)`, so that their NTK limit is kernel regression from zero).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..core.checks import (ConfigError, boolean, choice, fits_in_memory,
                           nonnegative_int, positive_int, real)
from ..core.runtime import available_memory, generator, get_logger
from ..core.settings import RunSettings, settings_from
from ..linalg.ridge import prefix_ridge_paths
from ..ntk.analytic import ACTIVATIONS, fc_kernels
from ..ntk.networks import FullyConnected, train_full_batch
from ..rfa.features import RandomFeatureAttention
from ..rfa.kernels import rfa_relu_kernel
from ..rfa.sampling import TOKEN_DISTRIBUTIONS, sample_tokens
from ..rfa.study import ModelSettings, RidgeSettings, TargetSettings
from ..rfa.targets import make_target
from .curves import learning_curve
from .kernels import model_gram
from .spectra import compress, sampled_spectrum, with_tail
from .sphere import legendre, multiplicity, sphere_spectrum

KINDS = ("rfa_curves", "double_descent", "sphere")
TOP_MODES = 200  # modes of the spectrum kept in the rows (learnability figure)
log = get_logger(__name__)


@dataclass(frozen=True)
class TheorySettings(RunSettings):
    """Settings every theory job shares (vocabulary as in :mod:`rfattn.rfa.study`)."""

    kind: str

    def __post_init__(self):
        super().__post_init__()
        choice("kind", self.kind, KINDS)


@dataclass(frozen=True)
class TokenSettings(TheorySettings):
    """The RFA data: n samples of one query and N keys in R^d."""

    d: int
    N: int
    tokens: str
    n_grid: tuple[int, ...]
    centred_target: bool
    model: ModelSettings

    def __post_init__(self):
        super().__post_init__()
        positive_int("d", self.d)
        positive_int("N", self.N)
        choice("tokens", self.tokens, TOKEN_DISTRIBUTIONS)
        object.__setattr__(self, "n_grid", tuple(sorted({positive_int(f"n_grid[{i}]", n)
                                                         for i, n in enumerate(self.n_grid)})))
        boolean("centred_target", self.centred_target)

    def target(self, t: TargetSettings):
        return make_target(t.name, self.d, self.N, t.degree or 1, t.function or "relu",
                           self.tokens, self.centred_target)

    def sample(self, n: int, *stream):
        return sample_tokens(n, self.N, self.d, generator(self.seed, "theory", *stream),
                             self.tokens, self.torch_dtype, self.torch_device)


@dataclass(frozen=True)
class CurveSettings(TokenSettings):
    """Kind ``rfa_curves``: predictions for one model and every target."""

    targets: tuple[TargetSettings, ...]
    ridge: RidgeSettings
    n_sample: int
    mc_heads: int
    heads_grid: tuple[int, ...] = ()
    theory_points: int = 48

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "heads_grid", tuple(
            positive_int(f"heads_grid[{i}]", m) for i, m in enumerate(self.heads_grid)))
        positive_int("theory_points", self.theory_points)
        if not self.targets:
            raise ConfigError("targets must be a non-empty list of targets")
        targets = tuple(t if isinstance(t, TargetSettings) else
                        _target_settings(f"targets[{i}]", t) for i, t in enumerate(self.targets))
        object.__setattr__(self, "targets", targets)
        if positive_int("n_sample", self.n_sample) < 2 * self.n_grid[-1]:
            raise ConfigError(f"n_sample must be >= 2 max(n_grid) = {2 * self.n_grid[-1]}: "
                              f"below it the tail carries the curve (got {self.n_sample})")
        if positive_int("mc_heads", self.mc_heads) < 8:
            raise ConfigError(f"mc_heads must be >= 8: its error needs several draws (got "
                              f"{self.mc_heads})")


def _target_settings(where: str, value) -> TargetSettings:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a target (name, and degree or function)")
    unknown = set(value) - {"name", "degree", "function"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]} is not a setting of a target")
    if "name" not in value:
        raise ConfigError(f"{where}.name is missing from the config")
    return TargetSettings(**value)


@dataclass(frozen=True)
class DoubleDescentSettings(TokenSettings):
    """Kind ``double_descent``: RFA at a small fixed ridge across n = M (d+1)."""

    ridge_value: float
    n_sample: int
    target_spec: TargetSettings
    n_test: int
    seeds: int

    def __post_init__(self):
        super().__post_init__()
        real("ridge_value", self.ridge_value, low=0.0, high=10.0, low_open=True)
        positive_int("n_sample", self.n_sample)
        positive_int("n_test", self.n_test)
        positive_int("seeds", self.seeds)


@dataclass(frozen=True)
class SphereSettings(TheorySettings):
    """Kind ``sphere``: the NTK of a fully connected net on the sphere S^(D-1)."""

    D: int
    depth: int
    activation: str
    w_std: float
    beta: float
    degrees: int
    quadrature_points: int
    n_sample: int
    n_grid: tuple[int, ...]
    ridges: tuple[float, ...]
    target_power: tuple[float, ...]
    n_test: int
    seeds: int
    network_width: int
    network_steps: int
    network_lr: float
    network_n_max: int
    network_seeds: int

    def __post_init__(self):
        super().__post_init__()
        if positive_int("D", self.D) < 2:
            raise ConfigError(f"D must be >= 2 (got {self.D})")
        positive_int("depth", self.depth)
        choice("activation", self.activation, ACTIVATIONS)
        real("w_std", self.w_std, low=0.0, high=1e3, low_open=True)
        real("beta", self.beta, low=0.0, high=1e3)
        positive_int("degrees", self.degrees)
        if positive_int("quadrature_points", self.quadrature_points) < 2 * self.degrees:
            raise ConfigError(f"quadrature_points must be >= 2 degrees = {2 * self.degrees} "
                              f"(got {self.quadrature_points})")
        positive_int("n_sample", self.n_sample)
        if not self.ridges:
            raise ConfigError("ridges must list at least one ridge (0: ridgeless)")
        for i, r in enumerate(self.ridges):
            real(f"ridges[{i}]", r, low=0.0, high=10.0)
        object.__setattr__(self, "n_grid", tuple(sorted({positive_int(f"n_grid[{i}]", n)
                                                         for i, n in enumerate(self.n_grid)})))
        if not self.target_power or len(self.target_power) > self.degrees:
            raise ConfigError(f"target_power must give the power of 1 to degrees="
                              f"{self.degrees} degrees (got {list(self.target_power)})")
        for i, p in enumerate(self.target_power):
            real(f"target_power[{i}]", p, low=0.0, high=1e6)
        positive_int("n_test", self.n_test)
        positive_int("seeds", self.seeds)
        nonnegative_int("network_width", self.network_width)
        positive_int("network_steps", self.network_steps)
        real("network_lr", self.network_lr, low=0.0, high=100.0, low_open=True)
        positive_int("network_n_max", self.network_n_max)
        nonnegative_int("network_seeds", self.network_seeds)
        if self.network_width and self.network_seeds > self.seeds:
            raise ConfigError(f"network_seeds must be <= seeds = {self.seeds} (got "
                              f"{self.network_seeds})")

    @property
    def network_sizes(self) -> tuple[int, ...]:
        """The n of ``n_grid`` at which networks are trained (none without a width)."""
        if not self.network_width or not self.network_seeds:
            return ()
        return tuple(n for n in self.n_grid if n <= self.network_n_max)

    def kernel(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        return fc_kernels(x1, x2, depth=self.depth, activation=self.activation,
                          w_std=self.w_std, b_std=self.beta).ntk


SETTINGS = {"rfa_curves": CurveSettings, "double_descent": DoubleDescentSettings,
            "sphere": SphereSettings}


def validate(cfg: dict) -> TheorySettings:
    """Check every value of a job config before any work.

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/theory.yaml`` and its ``kind``.

    Returns
    -------
    TheorySettings
        The kind's settings class (:data:`SETTINGS`).
    """
    kind = choice("kind", cfg.get("kind"), KINDS)
    cfg = dict(cfg)
    if kind == "rfa_curves" and isinstance(cfg.get("targets"), (list, tuple)):
        cfg["targets"] = tuple(_target_settings(f"targets[{i}]", t)
                               for i, t in enumerate(cfg["targets"]))
    settings = settings_from(SETTINGS[kind], cfg)
    for t in getattr(settings, "targets", ()):
        settings.target(t)
    if kind == "double_descent":
        settings.target(settings.target_spec)
    return settings


def _monte_carlo(s: TheorySettings) -> bool:
    return s.kind == "rfa_curves" and s.model.family == "attention" and not (
        s.model.activation == "relu" and s.model.qk_mean == "zero")


def estimate_memory(s: TheorySettings) -> int:
    """Peak bytes: the Gram matrix of the sample, its tridiagonal eigenvectors and, for a
    Monte Carlo kernel, its running mean and spread."""
    n = getattr(s, "n_sample", 0)
    if s.kind == "double_descent":
        p = s.model.M * (s.d + 1)
        n = max(n, s.n_grid[-1] + s.n_test)
        return 8 * (5 * n * n + 4 * n * p + 4 * p * p)
    return 8 * (8 if _monte_carlo(s) else 5) * n * n


def estimate_seconds(s: TheorySettings) -> float:
    """Run time on a 2-core CPU (calibrated there: 4096 samples, 8.5 s for the closed-form
    kernel, 9.7 s for a Monte Carlo one of 1024 heads)."""
    n = getattr(s, "n_sample", 0)
    seconds = 1.5 * n**3 / 2.5e10 + 8e-8 * n * n  # tridiagonal reduction, MRRR vectors
    if s.kind == "rfa_curves":
        seconds += (2 * n * n * s.mc_heads * (s.d + 1) / 8e10 if _monte_carlo(s)
                    else 8e-9 * n * n * s.N**2)
    if s.kind == "double_descent":
        seconds += s.seeds * 10 * (s.n_grid[-1] + s.n_test) * (s.model.M * (s.d + 1)) ** 2 / 1e10
    if s.kind == "sphere":
        seconds += s.seeds * s.n_grid[-1] ** 3 * len(s.ridges) * len(s.n_grid) / 1e10
        width2 = s.network_width * (s.network_width if s.depth > 2 else 1)
        seconds += s.network_seeds * sum(s.network_steps * (2e-4 + 1e-8 * n * width2)
                                         for n in s.network_sizes)
    return 1.0 + seconds


def check_fits(s: TheorySettings) -> None:
    fits_in_memory(f"kind {s.kind}", estimate_memory(s), 0.8 * available_memory(s.torch_device),
                   "lower n_sample, n_grid, n_test or model.M")


def _tail(spectrum, n_sample: int, total_power: dict):
    return compress(with_tail(spectrum, keep=n_sample // 4,
                              fit=(n_sample // 32, n_sample // 4), until=1000.0 * n_sample,
                              total_power=total_power))


def theory_grid(n_grid: tuple[int, ...], points: int) -> list[int]:
    """The simulations' n and ``points`` log-spaced sizes between their ends (smooth curves)."""
    fine = np.geomspace(n_grid[0], n_grid[-1], points).round().astype(int).tolist()
    return sorted(set(n_grid) | set(fine))


def modes_for_variance(spectrum, total: dict, share: float) -> dict:
    r"""Per target: the fewest leading modes whose power leaves at most ``1 - share`` of the
    target's variance (:math:`\mathbb E f^{*2} - \sum_{i \le k} v_i^2 \le (1 - share)`, the
    targets having unit variance)."""
    out = {}
    for name, p in spectrum.power.items():
        residual = total[name] - np.cumsum(p)
        out[name] = int(np.argmax(residual <= 1 - share) + 1) if (residual <= 1 - share).any() \
            else len(p) + 1
    return out


def rfa_spectra(s: CurveSettings) -> tuple[dict, list[dict]]:
    """The spectra of the model's kernel on ``n_sample`` and ``n_sample / 2`` samples (with
    tails), and rows: Monte Carlo error, top of the spectrum, each target's power on it and
    the modes each target needs (learnability)."""
    x0, X = s.sample(s.n_sample, "sample")
    targets = [s.target(t) for t in s.targets]
    values = {target.label: target(x0, X) for target in targets}
    total = {target.label: 1.0 + (0.0 if s.centred_target else (target.mean / target.std) ** 2)
             for target in targets}
    gram, mc_error = model_gram(s.model, s.d, x0, X, s.seed, s.mc_heads)
    rows = [{"analysis": "kernel", "metric": "mc_stderr", "value": mc_error}]
    spectra = {}
    for label, size in (("half", s.n_sample // 2), ("full", s.n_sample)):
        sampled = sampled_spectrum(gram[:size, :size], {k: v[:size] for k, v in values.items()},
                                   modes=size // 4, overwrite=label == "full")
        spectra[label] = _tail(sampled, size, total)
    del gram
    top = min(TOP_MODES, len(sampled.eigenvalues))
    rows += [{"analysis": "spectrum", "index": i + 1, "metric": "eigenvalue",
              "value": float(sampled.eigenvalues[i])} for i in range(top)]
    rows += [{"analysis": "spectrum", "index": i + 1, "target_label": name, "metric": "power",
              "value": float(p[i])} for name, p in sampled.power.items() for i in range(top)]
    rows += [{"analysis": "learnability", "target_label": name, "metric": "total_power",
              "value": total[name]} for name in values]
    for share in (0.9, 0.99):
        rows += [{"analysis": "learnability", "target_label": name,
                  "metric": f"modes_for_{round(share * 100)}pct_variance", "value": float(k)}
                 for name, k in modes_for_variance(sampled, total, share).items()]
    return spectra, rows


def rfa_curve_rows(s: CurveSettings, spectra: dict) -> list[dict]:
    """Predicted test error at the best ridge of the grid, that ridge, and the change of the
    prediction from half the sample, for every prediction, target and n."""
    rows = []
    n_theory = theory_grid(s.n_grid, s.theory_points)
    for prediction, M, P in _predictions(s):
        main = M in (None, s.model.M)  # the convergence check: for the model's own M
        curves = {k: learning_curve(spec, n_theory, s.ridge.lambdas, features=P)
                  for k, spec in spectra.items() if main or k == "full"}
        for name in curves["full"].test:
            best, ridge = curves["full"].best(name)
            half = curves["half"].best(name)[0] if main else None
            for i, n in enumerate(n_theory):
                common = {"analysis": "curve", "target_label": name, "n": n,
                          "prediction": prediction, "M": M, "P": float(P or math.inf)}
                rows += [{**common, "metric": "test_error", "value": float(best[i])},
                         {**common, "metric": "lambda", "value": float(ridge[i])}]
                if main:
                    rows.append({**common, "metric": "half_sample_change",
                                 "value": float(abs(half[i] / best[i] - 1))})
    return rows


def _rfa_curves(s: CurveSettings) -> list[dict]:
    spectra, rows = rfa_spectra(s)
    rows += rfa_curve_rows(s, spectra)
    return [{"model": s.model.name, "family": s.model.family, "d": s.d, "N": s.N,
             "n_sample": s.n_sample, **row} for row in rows]


def _predictions(s: CurveSettings):
    """(prediction, M, P): the kernel; the model's P features (attention: M (d+1), the
    default, and P = M, the alternative) for its M and, for attention, every M of
    ``heads_grid`` (other families ignore it, so that one sweep covers every model)."""
    out = [("kernel", None, None)]
    if s.model.family == "kernel":
        return out
    out.append(("features", s.model.M, s.model.num_features(s.d)))
    if s.model.family == "attention":
        out.append(("heads", s.model.M, s.model.M))
        out += [("features", M, M * (s.d + 1)) for M in s.heads_grid if M != s.model.M]
    return out


def _double_descent(s: DoubleDescentSettings) -> list[dict]:
    target = s.target(s.target_spec)
    p = s.model.num_features(s.d)
    x0, X = s.sample(s.n_sample, "sample")
    gram = rfa_relu_kernel(x0, X, variance=s.model.qk_variance)
    sampled = sampled_spectrum(gram, {"target": target(x0, X)}, modes=s.n_sample // 4,
                               overwrite=True)
    total = {"target": 1.0 + (0.0 if s.centred_target else (target.mean / target.std) ** 2)}
    spectrum = _tail(sampled, s.n_sample, total)
    rows = []
    n_theory = theory_grid(s.n_grid, 96)
    for prediction, P in (("kernel", None), ("features", p), ("heads", s.model.M)):
        curve = learning_curve(spectrum, n_theory, [s.ridge_value], features=P)
        rows += [{"analysis": "theory", "prediction": prediction, "P": float(P or math.inf),
                  "n": n, "metric": "test_error", "value": float(curve.test["target"][i, 0])}
                 for i, n in enumerate(n_theory)]
    xt0, Xt = s.sample(s.n_test, "test")
    yt = target(xt0, Xt)
    evals = {}
    for seed in range(s.seeds):
        rfa = RandomFeatureAttention.sample(s.model.M, s.d, generator(s.seed, "theory", "dd",
                                                                      seed),
                                            "relu", "zero", s.model.qk_variance, 0.0,
                                            s.torch_dtype, s.torch_device)
        xs0, Xs = s.sample(s.n_grid[-1], "train", seed)
        evals["test"] = (rfa.features(xt0, Xt), yt)
        paths = prefix_ridge_paths(rfa.features(xs0, Xs), target(xs0, Xs), s.n_grid,
                                   [s.ridge_value], evals)
        rows += [{"analysis": "simulation", "run": seed, "n": path.n, "metric": "test_error",
                  "value": float(path.mse["test"][0]) / float(yt.var())} for path in paths]
    return [{"model": s.model.name, "d": s.d, "N": s.N, "M": s.model.M, "num_features": p,
             "ridge_value": s.ridge_value, **row} for row in rows]


def sphere_points(n: int, D: int, gen: torch.Generator, dtype, device) -> torch.Tensor:
    x = torch.randn(n, D, generator=gen, dtype=torch.float64)
    return (x / x.norm(dim=1, keepdim=True)).to(device=device, dtype=dtype)


def _sphere(s: SphereSettings) -> list[dict]:
    def k(t):
        t = torch.as_tensor(t, dtype=torch.float64)
        x2 = torch.zeros(len(t), s.D, dtype=torch.float64)
        x2[:, 0], x2[:, 1] = t, (1 - t * t).clamp(min=0).sqrt()
        x1 = torch.zeros(1, s.D, dtype=torch.float64)
        x1[0, 0] = 1.0
        return s.kernel(x1, x2)[0].numpy()

    # target: sum_l a_l P_{l,D}(<beta, x>), power a_l^2 / N(D, l) on degree l
    powers = np.zeros(s.degrees)
    powers[:len(s.target_power)] = s.target_power
    coef = np.sqrt(powers * np.array([multiplicity(s.D, l) for l in range(s.degrees)]))
    exact = sphere_spectrum(k, s.D, s.degrees, {"target": powers}, s.quadrature_points)
    rows = [{"analysis": "exact", "index": i + 1, "metric": "eigenvalue", "value": float(v)}
            for i, v in enumerate(np.repeat(exact.eigenvalues[:TOP_MODES],
                                            exact.multiplicity[:TOP_MODES].astype(int))
                                  [:TOP_MODES])]
    rows.append({"analysis": "exact", "metric": "trace_share",
                 "value": float((exact.eigenvalues * exact.multiplicity).sum() / k([1.0])[0])})
    x = sphere_points(s.n_sample, s.D, generator(s.seed, "theory", "sphere"), s.torch_dtype,
                      s.torch_device)
    sampled = sampled_spectrum(s.kernel(x), {}, modes=1)
    rows += [{"analysis": "sampled", "index": i + 1, "metric": "eigenvalue", "value": float(v)}
             for i, v in enumerate(sampled.eigenvalues[:TOP_MODES])]
    n_theory = theory_grid(s.n_grid, 48)
    curve = learning_curve(exact, n_theory, list(s.ridges))
    rows += [{"analysis": "theory", "n": n, "ridge": r, "metric": "test_error",
              "value": float(curve.test["target"][i, j])}
             for i, n in enumerate(n_theory) for j, r in enumerate(s.ridges)]
    beta = torch.zeros(s.D, dtype=torch.float64)
    beta[0] = 1.0

    def f_star(points):
        t = (points.to(torch.float64) @ beta).cpu().numpy()
        return torch.as_tensor(sum(c * legendre(s.D, l, t) for l, c in enumerate(coef) if c),
                               dtype=points.dtype, device=points.device)

    xt = sphere_points(s.n_test, s.D, generator(s.seed, "theory", "sphere-test"),
                       s.torch_dtype, s.torch_device)
    yt = f_star(xt)
    for run in range(s.seeds):
        xs = sphere_points(s.n_grid[-1], s.D, generator(s.seed, "theory", "sphere-train", run),
                           s.torch_dtype, s.torch_device)
        ys = f_star(xs)
        K, Kt = s.kernel(xs), s.kernel(xt, xs)
        for n in s.n_grid:
            for r in s.ridges:  # ridge 0: gradient flow at t = infinity (interpolation)
                A = K[:n, :n] + n * r * torch.eye(n, dtype=K.dtype, device=K.device)
                pred = Kt[:, :n] @ torch.linalg.lstsq(A, ys[:n]).solution
                rows.append({"analysis": "simulation", "run": run, "n": n, "ridge": r,
                             "metric": "test_error", "value": float(((pred - yt) ** 2).mean())})
        if run < s.network_seeds:
            for n in s.network_sizes:
                error = _trained_network_error(s, xs[:n], ys[:n], xt, yt, run)
                rows.append({"analysis": "network", "run": run, "n": n, "ridge": 0.0,
                             "metric": "test_error", "value": error,
                             "width": s.network_width, "steps": s.network_steps,
                             "lr": s.network_lr})
    return [{"D": s.D, "depth": s.depth, "activation": s.activation, "n_sample": s.n_sample,
             **row} for row in rows]


def _trained_network_error(s: SphereSettings, x, y, xt, yt, run: int) -> float:
    r"""Test MSE of the centred network :math:`f(x;\theta) - f(x;\theta_0)` after
    ``network_steps`` of full-batch gradient descent on :math:`\frac{1}{2n}\sum (f - y)^2`.

    Its NTK limit is kernel regression with the analytic NTK started from zero output: at
    large width and time it tends to the ridgeless simulation on the same samples.
    """
    net = FullyConnected(s.D, s.network_width, s.depth, activation=s.activation,
                         w_std=s.w_std, b_std=s.beta,
                         generator=generator(s.seed, "theory", "sphere-network", run, len(x)),
                         dtype=s.torch_dtype).to(s.torch_device)
    with torch.no_grad():
        f0_train, f0_test = net(x)[:, 0].clone(), net(xt)[:, 0].clone()
    train_full_batch(net, x, y, s.network_steps, s.network_lr, centre=f0_train,
                     lr_name="network_lr")
    with torch.no_grad():
        return float(((net(xt)[:, 0] - f0_test - yt) ** 2).mean())


JOBS = {"rfa_curves": _rfa_curves, "double_descent": _double_descent, "sphere": _sphere}


def run_theory_job(cfg: dict) -> pd.DataFrame:
    """One theory job (module docstring).

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/theory.yaml`` and its ``kind``.

    Returns
    -------
    DataFrame
        Tidy rows: ``kind``, ``seed``, the kind's own columns (analysis, model, target_label,
        n, features, P, index, run), ``metric`` and ``value``.
    """
    s = validate(cfg)
    check_fits(s)
    log.info("theory %s, seed %d, %s", s.kind, s.seed, s.torch_device)
    start = time.perf_counter()
    rows = pd.DataFrame([{"kind": s.kind, "seed": s.seed, **row} for row in JOBS[s.kind](s)])
    log.info("theory %s done in %.1fs: %d rows", s.kind, time.perf_counter() - start, len(rows))
    return rows
