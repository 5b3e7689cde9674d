r"""NTK study jobs (Jacot, Gabriel, Hongler 2018; Sehanobish et al. 2024): one job per setting.

:func:`run_ntk_job` dispatches on ``cfg['kind']`` and returns tidy rows (setting columns, seed,
metric, value). Kinds, named by what they measure:

- ``kernel_drift`` (Jacot Fig 1): :math:`\Theta(x_0, x)` on the circle, :math:`x_0=(1,0)`, at
  init, after ``steps`` of gradient descent fitting :math:`x_1x_2` on Gaussian inputs, and in
  the limit;
- ``gaussian_limit`` (Jacot Fig 2): network outputs on the circle after least squares on 4
  circle points, with the limiting Gaussian's mean and 10/50/90 percentiles;
- ``mode_decay`` (Jacot Fig 3): error along the 2nd kernel principal component and orthogonal
  to it while fitting :math:`f_0 + 0.5 f^{(2)}` on 8x8 digits (scikit-learn's bundled set,
  standing in for MNIST);
- ``width_convergence``: relative Frobenius error of the empirical against the analytic NTK;
- ``random_features``: pointwise mean squared error of universal random features for every m
  of ``m_grid``.

Random streams keep the labels of the first release ("fig1", "fig2", "fig3", "convergence"),
so a seed gives the same numbers as before the kinds were renamed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..core.checks import (ConfigError, choice, fits_in_memory, positive_int,
                           positive_ints, real, sequence)
from ..core.runtime import available_memory, generator, get_logger
from ..core.settings import RunSettings, settings_from
from . import random_features
from .analytic import ACTIVATIONS, Kernels, fc_kernels
from .empirical import EmpiricalNTK
from .networks import FullyConnected, train_full_batch
from .regression import gaussian_quantiles, gradient_flow

KINDS = ("kernel_drift", "gaussian_limit", "mode_decay", "width_convergence", "random_features")
DIGITS = 1797  # scikit-learn's bundled 8x8 digits
SCALE_MAX = 1e3  # scales and step sizes beyond this overflow float64
log = get_logger(__name__)


@dataclass(frozen=True)
class NTKSettings(RunSettings):
    """Settings every NTK job shares.

    Vocabulary (Jacot et al. 2018): n inputs (Jacot's N), d input dimension (Jacot's n_0),
    ``depth`` linear layers (Jacot's L), ``beta`` the bias scale.
    """

    kind: str

    def __post_init__(self):
        super().__post_init__()
        choice("kind", self.kind, KINDS)


@dataclass(frozen=True)
class NetworkSettings(NTKSettings):
    """A fully connected network (:class:`~rfattn.ntk.networks.FullyConnected`)."""

    depth: int
    width: int
    activation: str
    w_std: float
    beta: float

    def __post_init__(self):
        super().__post_init__()
        positive_int("depth", self.depth)
        positive_int("width", self.width)
        choice("activation", self.activation, ACTIVATIONS)
        real("w_std", self.w_std, low=0.0, high=SCALE_MAX, low_open=True)
        real("beta", self.beta, low=0.0, high=SCALE_MAX)

    def network(self, d: int, *stream) -> FullyConnected:
        """The network drawn from the stream (seed, *stream), on the job's device and dtype."""
        net = FullyConnected(d, self.width, self.depth, activation=self.activation,
                             w_std=self.w_std, b_std=self.beta,
                             generator=generator(self.seed, *stream), dtype=torch.float64)
        return net.to(device=self.torch_device, dtype=self.torch_dtype)

    def limit(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> Kernels:
        """The analytic NNGP and NTK of this network."""
        return fc_kernels(x1, x2, depth=self.depth, activation=self.activation,
                          w_std=self.w_std, b_std=self.beta)

    @property
    def setting(self) -> dict:
        return {"width": self.width, "depth": self.depth, "activation": self.activation,
                "w_std": self.w_std, "beta": self.beta}


@dataclass(frozen=True)
class TrainingSettings(NetworkSettings):
    """Full-batch gradient descent on the squared loss."""

    lr: float
    steps: int

    def __post_init__(self):
        super().__post_init__()
        real("lr", self.lr, low=0.0, high=SCALE_MAX, low_open=True)
        positive_int("steps", self.steps)


@dataclass(frozen=True)
class KernelDriftSettings(TrainingSettings):
    """Kind ``kernel_drift`` (Jacot Fig 1): the NTK on the circle at init, trained, limit."""

    angles: int
    n: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("angles", self.angles)
        positive_int("n", self.n)


@dataclass(frozen=True)
class GaussianLimitSettings(TrainingSettings):
    """Kind ``gaussian_limit`` (Jacot Fig 2): outputs against the limiting Gaussian."""

    angles: int
    train_angles: tuple[float, ...]

    def __post_init__(self):
        super().__post_init__()
        positive_int("angles", self.angles)
        sequence("train_angles", self.train_angles, real)


@dataclass(frozen=True)
class ModeDecaySettings(TrainingSettings):
    """Kind ``mode_decay`` (Jacot Fig 3): error along the 2nd kernel principal component."""

    n: int
    record_every: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("n", self.n)
        if self.n > DIGITS:
            raise ConfigError(f"n must lie in [1, {DIGITS}] for kind mode_decay (the bundled "
                              f"digits; got {self.n})")
        positive_int("record_every", self.record_every)


@dataclass(frozen=True)
class WidthConvergenceSettings(NetworkSettings):
    """Kind ``width_convergence``: empirical against analytic NTK at one width."""

    n: int
    d: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("n", self.n)
        positive_int("d", self.d)


@dataclass(frozen=True)
class RandomFeatureSettings(NTKSettings):
    """Kind ``random_features``: error of universal random features against m."""

    function: str
    n: int
    d: int
    input_scale: float
    m_grid: tuple[int, ...]

    def __post_init__(self):
        super().__post_init__()
        choice("function", self.function, random_features.FUNCTIONS)
        positive_int("n", self.n)
        positive_int("d", self.d)
        real("input_scale", self.input_scale, low=0.0, high=2.0, low_open=True)  # exp overflows
        object.__setattr__(self, "m_grid", tuple(positive_ints("m_grid", self.m_grid)))


SETTINGS = {"kernel_drift": KernelDriftSettings, "gaussian_limit": GaussianLimitSettings,
            "mode_decay": ModeDecaySettings, "width_convergence": WidthConvergenceSettings,
            "random_features": RandomFeatureSettings}


def validate(cfg: dict) -> NTKSettings:
    """Check every value of a job config before any work.

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/ntk.yaml`` and its ``kind``.

    Returns
    -------
    NTKSettings
        The kind's settings class (:data:`SETTINGS`).
    """
    kind = choice("kind", cfg.get("kind"), KINDS)
    return settings_from(SETTINGS[kind], cfg)


def estimate_memory(s: NTKSettings) -> int:
    """Peak bytes: the network's parameters, gradients and optimizer copy, the tiles of
    per-example Jacobians the empirical NTK allows itself (a quarter of the memory, bounded
    by the examples), and the kernel matrices."""
    item = torch.finfo(s.torch_dtype).bits // 8
    n = getattr(s, "n", 0) + getattr(s, "angles", 0) + len(getattr(s, "train_angles", ()))
    if s.kind == "random_features":
        return (4 * n * max(s.m_grid) + 4 * n * n) * 16  # complex features
    d = getattr(s, "d", 2 if s.kind != "mode_decay" else 64)
    params = (d + 1) * s.width + (s.depth - 2) * (s.width + 1) * s.width + s.width + 1
    return (4 * params + 2 * n * params + 4 * n * n) * item


FLOPS_PER_SECOND = 3e9  # calibrated on the quick sweeps (2-core CPU, float64)
STEP_SECONDS = 1e-3  # per gradient step: the calls themselves


def estimate_seconds(s: NTKSettings) -> float:
    """Rough run time on a 2-core CPU: gradient steps (6 flops per parameter and example) and
    empirical kernels by the cheaper of the two methods' cost models
    (:meth:`~rfattn.ntk.empirical.EmpiricalNTK.choose_method`)."""
    if s.kind == "random_features":
        return 0.3 + sum(s.n * s.n * m * s.d for m in s.m_grid) / (3 * FLOPS_PER_SECOND)
    d = getattr(s, "d", 64 if s.kind == "mode_decay" else 2)
    p = (d + 1) * s.width + (s.depth - 2) * (s.width + 1) * s.width + s.width + 1

    def kernel(n1, n2):
        return min((n1 + n2) * 156 * p + n1 * n2 * p / 8, 6 * p * (n1 + n1 * n2))

    examples = {"kernel_drift": getattr(s, "n", 0), "gaussian_limit": 4,
                "mode_decay": getattr(s, "n", 0)}.get(s.kind, 0)
    kernels = {"kernel_drift": 2 * kernel(1, getattr(s, "angles", 0)),
               "mode_decay": kernel(getattr(s, "n", 0), getattr(s, "n", 0)),
               "width_convergence": kernel(getattr(s, "n", 0), getattr(s, "n", 0))}
    work = 6 * getattr(s, "steps", 0) * examples * p + kernels.get(s.kind, 0) / 4
    return 0.3 + getattr(s, "steps", 0) * STEP_SECONDS + work / FLOPS_PER_SECOND


def check_fits(s: NTKSettings) -> None:
    fits_in_memory(f"kind {s.kind}", estimate_memory(s), 0.8 * available_memory(s.torch_device),
                   "lower width, depth, d, n, angles or m_grid")


def circle(points: int, dtype=torch.float64, device="cpu") -> tuple[np.ndarray, torch.Tensor]:
    g = np.linspace(-math.pi, math.pi, points)
    return g, torch.tensor(np.stack([np.cos(g), np.sin(g)], 1), dtype=dtype, device=device)



def _kernel_drift(s: KernelDriftSettings) -> list[dict]:
    g, xc = circle(s.angles, s.torch_dtype, s.torch_device)
    x0 = xc.new_tensor([[1.0, 0.0]])
    net = s.network(2, "fig1", s.width)
    xt = torch.randn(s.n, 2, generator=generator(s.seed, "fig1-data"),
                     dtype=torch.float64).to(s.torch_device, s.torch_dtype)
    rows = [{"phase": "init", "angle": a, "value": float(v)}
            for a, v in zip(g, EmpiricalNTK(net)(x0, xc)[0])]
    train_full_batch(net, xt, xt[:, 0] * xt[:, 1], s.steps, s.lr)
    rows += [{"phase": "trained", "angle": a, "value": float(v)}
             for a, v in zip(g, EmpiricalNTK(net)(x0, xc)[0])]
    rows += [{"phase": "limit", "angle": a, "value": float(v)}
             for a, v in zip(g, s.limit(x0, xc).ntk[0])]
    return [{**r, "metric": "ntk"} for r in rows]


def _gaussian_limit(s: GaussianLimitSettings) -> list[dict]:
    g, xc = circle(s.angles, s.torch_dtype, s.torch_device)
    ang = torch.tensor(s.train_angles, dtype=s.torch_dtype, device=s.torch_device)
    x = torch.stack([ang.cos(), ang.sin()], 1)
    y = x[:, 0] * x[:, 1] * 2
    net = s.network(2, "fig2", s.width)
    train_full_batch(net, x, y, s.steps, s.lr)
    with torch.no_grad():
        out = net(xc)[:, 0]
    rows = [{"phase": "network", "angle": a, "metric": "output", "value": float(v)}
            for a, v in zip(g, out)]
    if s.seed == 0:  # the limit does not depend on the seed: store it once
        k, kc = s.limit(x), s.limit(xc, x)
        kd = s.limit(xc).nngp.diagonal()
        pred = gradient_flow(k.ntk, kc.ntk, y, [s.steps * s.lr], k.nngp, kc.nngp, kd)
        for q in (0.1, 0.5, 0.9):
            rows += [{"phase": f"limit q{int(q * 100)}", "angle": a, "metric": "output",
                      "value": float(v)} for a, v in zip(g, gaussian_quantiles(pred, q)[:, 0])]
        rows += [{"phase": "limit std", "angle": a, "metric": "output", "value": float(v)}
                 for a, v in zip(g, pred.variance[:, 0].sqrt())]
    return rows


def digits(n: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """The first ``n`` of scikit-learn's bundled 8x8 digits, centred, with |x|^2 = n0 = 64."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data[:n], dtype=torch.float64)
    x = x - x.mean(0)
    return (x / x.norm(dim=1, keepdim=True) * math.sqrt(x.shape[1])).to(device, dtype)


def _mode_decay(s: ModeDecaySettings) -> list[dict]:
    x = digits(s.n, s.torch_dtype, s.torch_device)
    n = x.shape[0]
    net = s.network(x.shape[1], "fig3", s.width)
    K = EmpiricalNTK(net)(x)
    e, U = torch.linalg.eigh(K / n)  # ascending; exact, in place of power iteration
    lam2, f2 = float(e[-2]), U[:, -2] * math.sqrt(n)  # unit mean square on the data
    with torch.no_grad():
        y = net(x)[:, 0] + 0.5 * f2
    rows = [{"phase": "eigenvalue", "index": k, "metric": "eigenvalue", "value": float(v)}
            for k, v in enumerate(e.flip(0)[:4].tolist(), 1)]

    def record(step):
        if step % s.record_every and step != s.steps:
            return
        with torch.no_grad():
            err = net(x)[:, 0] - y
        along = float(err @ f2) / n
        ortho = float((err - along * f2).norm()) / math.sqrt(n)
        t = step * s.lr
        rows.extend([{"phase": "along f2", "t": t, "metric": "error", "value": along},
                     {"phase": "orthogonal", "t": t, "metric": "error", "value": ortho},
                     {"phase": "theory", "t": t, "metric": "error",
                      "value": -0.5 * math.exp(-lam2 * t)}])

    train_full_batch(net, x, y, s.steps, s.lr, record=record)
    return rows


def _width_convergence(s: WidthConvergenceSettings) -> list[dict]:
    x = torch.randn(s.n, s.d, generator=generator(0, "convergence-inputs"),
                    dtype=torch.float64).to(s.torch_device, s.torch_dtype)
    net = s.network(s.d, "convergence", s.width)
    emp = EmpiricalNTK(net)(x)
    exact = s.limit(x).ntk
    return [{"metric": "relative_error", "value": float((emp - exact).norm() / exact.norm())}]


def _random_features(s: RandomFeatureSettings) -> list[dict]:
    gen = generator(0, "rf-points")
    x = torch.randn(s.n, s.d, generator=gen, dtype=torch.float64) * s.input_scale
    w = torch.randn(s.n, s.d, generator=gen, dtype=torch.float64) * s.input_scale
    b = torch.randn(s.n, generator=gen, dtype=torch.float64) * 0.3
    exact = random_features.exact(s.function, x, w, b)
    rows = []
    for m in s.m_grid:
        est = random_features.estimate(s.function, x, w, b, m,
                                       generator(s.seed, "rf", s.function, m))
        rows.append({"m": m, "metric": "mse", "value": float(((est - exact) ** 2).mean())})
    return rows


JOBS = {"kernel_drift": _kernel_drift, "gaussian_limit": _gaussian_limit,
        "mode_decay": _mode_decay, "width_convergence": _width_convergence,
        "random_features": _random_features}


def run_ntk_job(cfg: dict) -> pd.DataFrame:
    """One NTK study job (module docstring).

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/ntk.yaml`` and its ``kind``.

    Returns
    -------
    DataFrame
        Tidy rows: the kind's own columns (phase, angle, t, index, m), ``metric``, ``value``,
        then the setting columns (kind, seed; width, depth, activation, w_std, beta for a
        network, or function for random features; n and d where the kind has them).
    """
    s = validate(cfg)
    check_fits(s)
    log.info("ntk %s: %s, seed %d, %s", s.kind, ", ".join(
        f"{k}={v}" for k, v in (s.setting if hasattr(s, "setting") else {
            "function": s.function, "n": s.n, "d": s.d}).items()), s.seed, s.torch_device)
    start = time.perf_counter()
    rows = pd.DataFrame(JOBS[s.kind](s))
    last = rows.iloc[-1]
    log.info("ntk %s done in %.1fs: last %s %.4g", s.kind, time.perf_counter() - start,
             last.metric, last.value)
    setting = {"kind": s.kind, "seed": s.seed}
    setting.update({"function": s.function} if s.kind == "random_features" else s.setting)
    setting.update({key: getattr(s, key) for key in ("n", "d") if hasattr(s, key)})
    for key, value in setting.items():
        rows[key] = value
    return rows
