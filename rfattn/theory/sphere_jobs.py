r"""Theory job ``sphere``: a dot-product kernel on :math:`S^{D-1}`, exact and sampled.

The NTK of a fully connected network (or a user's kernel ``kernel: module:function``,
t -> k(t)): its exact spectrum (Funk-Hecke, :mod:`rfattn.theory.sphere`) against the sampled
one, and the learning curve of kernel regression with it (ridgeless: gradient flow at
t = infinity) predicted and simulated on a target of known power per degree; with
``network_width > 0``, also wide networks of that architecture trained by gradient descent on
the same samples (centred, :math:`f(x;\theta) - f(x;\theta_0)`, so that their NTK limit is
kernel regression from zero).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.runtime import generator
from ..linalg.ridge import kernel_ridge_solve
from ..ntk.networks import FullyConnected, train_full_batch
from .curves import learning_curve
from .rfa_jobs import TOP_MODES, theory_grid
from .settings import SphereSettings, dot_product_values
from .spectra import sampled_spectrum
from .sphere import legendre, multiplicity, sphere_spectrum


def sphere_points(n: int, D: int, gen: torch.Generator, dtype, device) -> torch.Tensor:
    x = torch.randn(n, D, generator=gen, dtype=torch.float64)
    return (x / x.norm(dim=1, keepdim=True)).to(device=device, dtype=dtype)


def sphere(s: SphereSettings) -> list[dict]:
    def k(t):
        return dot_product_values(s, t)

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
    sampled = sampled_spectrum(s.kernel_matrix(x), {}, modes=1)
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
        K, Kt = s.kernel_matrix(xs), s.kernel_matrix(xt, xs)
        for n in s.n_grid:
            for r in s.ridges:  # ridge 0: gradient flow at t = infinity (interpolation)
                pred = Kt[:, :n] @ kernel_ridge_solve(K[:n, :n], ys[:n], r)
                rows.append({"analysis": "simulation", "run": run, "n": n, "ridge": r,
                             "metric": "test_error", "value": float(((pred - yt) ** 2).mean())})
        if run < s.network_seeds:
            for n in s.network_sizes:
                error = _trained_network_error(s, xs[:n], ys[:n], xt, yt, run)
                rows.append({"analysis": "network", "run": run, "n": n, "ridge": 0.0,
                             "metric": "test_error", "value": error,
                             "width": s.network_width, "steps": s.network_steps,
                             "lr": s.network_lr})
    setting = {"D": s.D, "depth": s.depth, "activation": s.activation, "n_sample": s.n_sample}
    if s.kernel is not None:
        setting["kernel"] = s.kernel
    return [{**setting, **row} for row in rows]


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


