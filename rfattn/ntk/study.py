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
  of ``m_grid``;
- ``snnk_layer``, ``snnk_bundled``: SNNK layers against the exact layer, and the fully
  bundled network in closed form against gradient descent (:mod:`rfattn.ntk.snnk_study`);
- ``attention_ntk``: the empirical NTK of a multi-head attention network against its
  infinite-width kernel (:mod:`rfattn.ntk.attention_study`).

Random streams keep the labels of the first release ("fig1", "fig2", "fig3", "convergence"),
so a seed gives the same numbers as before the kinds were renamed.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch

from ..core.runtime import generator, get_logger
from ..core.study import Study
from . import attention_study, random_features, snnk_study
from .empirical import EmpiricalNTK
from .networks import train_full_batch
from .regression import gaussian_quantiles, gradient_flow
from .settings import (SETTINGS, GaussianLimitSettings, KernelDriftSettings, ModeDecaySettings,
                       NTKSettings, RandomFeatureSettings, WidthConvergenceSettings)

log = get_logger(__name__)


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
        "random_features": _random_features, **snnk_study.JOBS,
        **attention_study.JOBS}


def ntk_rows(s: NTKSettings) -> pd.DataFrame:
    """The rows of one validated NTK job (:func:`run_ntk_job`)."""
    log.info("ntk %s: %s, seed %d, %s", s.kind, ", ".join(
        f"{k}={v}" for k, v in s.columns.items()), s.seed, s.torch_device)
    start = time.perf_counter()
    rows = pd.DataFrame(JOBS[s.kind](s))
    last = rows.iloc[-1]
    log.info("ntk %s done in %.1fs: last %s %.4g", s.kind, time.perf_counter() - start,
             last.metric, last.value)
    for key, value in {"kind": s.kind, "seed": s.seed, **s.columns}.items():
        rows[key] = value
    return rows


STUDY = Study("ntk", {**SETTINGS, **snnk_study.SETTINGS, **attention_study.SETTINGS},
              ntk_rows)


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
    return STUDY.run(cfg)
