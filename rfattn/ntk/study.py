r"""NTK study jobs (Jacot, Gabriel, Hongler 2018; Sehanobish et al. 2024): one job per setting.

:func:`run_ntk_job` dispatches on ``cfg['kind']`` and returns tidy rows (setting columns, seed,
metric, value):

- ``fig1``: :math:`\Theta(x_0, x)` on the circle, :math:`x_0=(1,0)`, at init and after
  ``steps`` of gradient descent fitting :math:`x_1x_2` on Gaussian inputs;
- ``fig2``: network outputs on the circle after least squares on 4 circle points, with the
  limiting Gaussian's mean and 10/50/90 percentiles;
- ``fig3``: error along the 2nd kernel principal component and orthogonal to it while fitting
  :math:`f_0 + 0.5 f^{(2)}` on 8x8 digits (scikit-learn's bundled set, standing in for MNIST);
- ``convergence``: relative Frobenius error of the empirical against the analytic NTK;
- ``random_features``: pointwise mean squared error of universal random features for every m
  of ``m_grid``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..core.checks import choice, positive, positive_int, positive_ints
from ..core.runtime import generator, resolve_device, resolve_dtype
from . import random_features
from .analytic import fc_kernels
from .empirical import EmpiricalNTK
from .networks import FullyConnected
from .regression import gaussian_quantiles, gradient_flow

KINDS = ("fig1", "fig2", "fig3", "convergence", "random_features")


def circle(points: int, dtype=torch.float64, device="cpu") -> tuple[np.ndarray, torch.Tensor]:
    g = np.linspace(-math.pi, math.pi, points)
    return g, torch.tensor(np.stack([np.cos(g), np.sin(g)], 1), dtype=dtype, device=device)


def _net(cfg, n0, seed_stream, device, dtype):
    net = FullyConnected(n0, cfg["width"], cfg["depth"], activation=cfg.get("activation", "relu"),
                         w_std=cfg.get("w_std", 1.0), b_std=cfg["beta"],
                         generator=generator(cfg["seed"], *seed_stream), dtype=torch.float64)
    return net.to(device=device, dtype=dtype)


def _train(net, x, y, steps, lr, record=None):
    """Full-batch gradient descent on (1/2N) sum (f - y)^2; ``record(step)`` after each step."""
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for step in range(1, steps + 1):
        opt.zero_grad()
        (0.5 * ((net(x)[:, 0] - y) ** 2).mean()).backward()
        opt.step()
        if record is not None:
            record(step)


def _fig1(cfg, device, dtype):
    g, xc = circle(cfg["angles"], dtype, device)
    x0 = xc.new_tensor([[1.0, 0.0]])
    net = _net(cfg, 2, ("fig1", cfg["width"]), device, dtype)
    xt = torch.randn(cfg["n_train"], 2, generator=generator(cfg["seed"], "fig1-data"),
                     dtype=torch.float64).to(device, dtype)
    rows = [{"phase": "init", "angle": a, "value": float(v)}
            for a, v in zip(g, EmpiricalNTK(net)(x0, xc)[0])]
    _train(net, xt, xt[:, 0] * xt[:, 1], cfg["steps"], cfg["lr"])
    rows += [{"phase": "trained", "angle": a, "value": float(v)}
             for a, v in zip(g, EmpiricalNTK(net)(x0, xc)[0])]
    limit = fc_kernels(x0, xc, depth=cfg["depth"], b_std=cfg["beta"]).ntk[0]
    rows += [{"phase": "limit", "angle": a, "value": float(v)} for a, v in zip(g, limit)]
    return [{**r, "metric": "ntk"} for r in rows]


def _fig2(cfg, device, dtype):
    g, xc = circle(cfg["angles"], dtype, device)
    ang = torch.tensor(cfg["train_angles"], dtype=dtype, device=device)
    x = torch.stack([ang.cos(), ang.sin()], 1)
    y = x[:, 0] * x[:, 1] * 2
    net = _net(cfg, 2, ("fig2", cfg["width"]), device, dtype)
    _train(net, x, y, cfg["steps"], cfg["lr"])
    with torch.no_grad():
        out = net(xc)[:, 0]
    rows = [{"phase": "network", "angle": a, "metric": "output", "value": float(v)}
            for a, v in zip(g, out)]
    if cfg["seed"] == 0:  # the limit does not depend on the seed: store it once
        k, kc = fc_kernels(x, depth=cfg["depth"], b_std=cfg["beta"]), fc_kernels(
            xc, x, depth=cfg["depth"], b_std=cfg["beta"])
        kd = fc_kernels(xc, depth=cfg["depth"], b_std=cfg["beta"]).nngp.diagonal()
        pred = gradient_flow(k.ntk, kc.ntk, y, [cfg["steps"] * cfg["lr"]], k.nngp, kc.nngp, kd)
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


def _fig3(cfg, device, dtype):
    x = digits(cfg["n_train"], dtype, device)
    n = x.shape[0]
    net = _net(cfg, x.shape[1], ("fig3", cfg["width"]), device, dtype)
    K = EmpiricalNTK(net)(x)
    e, U = torch.linalg.eigh(K / n)  # ascending; exact, in place of power iteration
    lam2, f2 = float(e[-2]), U[:, -2] * math.sqrt(n)  # unit mean square on the data
    with torch.no_grad():
        y = net(x)[:, 0] + 0.5 * f2
    rows = [{"phase": "eigenvalue", "index": k, "metric": "eigenvalue", "value": float(v)}
            for k, v in enumerate(e.flip(0)[:4].tolist(), 1)]

    def record(step):
        if step % cfg["record_every"] and step != cfg["steps"]:
            return
        with torch.no_grad():
            err = net(x)[:, 0] - y
        along = float(err @ f2) / n
        ortho = float((err - along * f2).norm()) / math.sqrt(n)
        t = step * cfg["lr"]
        rows.extend([{"phase": "along f2", "t": t, "metric": "error", "value": along},
                     {"phase": "orthogonal", "t": t, "metric": "error", "value": ortho},
                     {"phase": "theory", "t": t, "metric": "error",
                      "value": -0.5 * math.exp(-lam2 * t)}])

    _train(net, x, y, cfg["steps"], cfg["lr"], record)
    return rows


def _convergence(cfg, device, dtype):
    x = torch.randn(cfg["n_inputs"], cfg["n0"], generator=generator(0, "convergence-inputs"),
                    dtype=torch.float64).to(device, dtype)
    net = _net(cfg, cfg["n0"], ("convergence", cfg["width"]), device, dtype)
    emp = EmpiricalNTK(net)(x)
    exact = fc_kernels(x, depth=cfg["depth"], activation=cfg.get("activation", "relu"),
                       w_std=cfg.get("w_std", 1.0), b_std=cfg["beta"]).ntk
    return [{"metric": "relative_error", "value": float((emp - exact).norm() / exact.norm())}]


def _random_features(cfg, device, dtype):
    gen = generator(0, "rf-points")
    scale = positive("rf_input_scale", cfg["rf_input_scale"])
    x = torch.randn(cfg["n_points"], cfg["n0"], generator=gen, dtype=torch.float64) * scale
    w = torch.randn(cfg["n_points"], cfg["n0"], generator=gen, dtype=torch.float64) * scale
    b = torch.randn(cfg["n_points"], generator=gen, dtype=torch.float64) * 0.3
    fn = cfg["function"]
    exact = random_features.exact(fn, x, w, b)
    rows = []
    for m in cfg["m_grid"]:
        est = random_features.estimate(fn, x, w, b, m, generator(cfg["seed"], "rf", fn, m))
        rows.append({"m": m, "metric": "mse", "value": float(((est - exact) ** 2).mean())})
    return rows


JOBS = {"fig1": _fig1, "fig2": _fig2, "fig3": _fig3, "convergence": _convergence,
        "random_features": _random_features}


def run_ntk_job(cfg: dict) -> pd.DataFrame:
    """One NTK study job (module docstring); tidy rows with the setting columns."""
    kind = choice("kind", cfg.get("kind"), KINDS)
    if kind != "random_features":
        positive_int("width", cfg["width"])
        positive_int("depth", cfg["depth"])
    if kind in ("fig1", "fig2", "fig3"):
        positive_int("steps", cfg["steps"])
        positive("lr", cfg["lr"])
    if kind == "random_features":
        positive_ints("m_grid", cfg["m_grid"])
        choice("function", cfg["function"], random_features.FUNCTIONS)
    device, dtype = resolve_device(cfg.get("device", "auto")), resolve_dtype(cfg.get("dtype",
                                                                                    "float64"))
    rows = pd.DataFrame(JOBS[kind](cfg, device, dtype))
    setting = {"kind": kind, "seed": cfg["seed"]}
    keys = ("function",) if kind == "random_features" else ("width", "depth")
    setting.update({key: cfg[key] for key in keys})
    for key, value in setting.items():
        rows[key] = value
    return rows
