r"""Theory job ``sphere``: a dot-product kernel on :math:`S^{D-1}`, exact and sampled.

The NTK of a fully connected network (or a user's kernel ``kernel: module:function``,
t -> k(t)): its exact spectrum (Funk-Hecke, :mod:`rfattn.theory.sphere`) against the sampled
one, and the learning curve of kernel regression with it (ridgeless: gradient flow at
t = infinity) predicted and simulated on a target of known power per degree; with
``network_width > 0``, also wide networks of that architecture trained by gradient descent on
the same samples (centred, :math:`f(x;\theta) - f(x;\theta_0)`, so that their NTK limit is
kernel regression from zero).

The test error of kernel regression is exact (:class:`ExactTestError`, no test set: on
:math:`S^{19}` a 2000-point test set's mean of :math:`f^{*2}` is off by 10%); networks, and
kernel regression on the same samples beside them, are measured on ``n_test`` points. Beside
the error, the generalized cross-validation estimate from the training points alone
(:func:`rfattn.linalg.kernel_ridge_gcv`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.runtime import generator
from ..linalg import kernel_ridge_gcv, kernel_ridge_solve
from ..ntk.networks import FullyConnected, train_full_batch
from .curves import learning_curve
from .rfa_jobs import TOP_MODES, theory_grid
from .settings import SphereSettings, dot_product_values
from .spectra import sampled_spectrum
from .sphere import (RESOLVED, funk_hecke, legendre, legendre_series, multiplicity,
                     sphere_spectrum)


def sphere_points(n: int, D: int, gen: torch.Generator, dtype, device) -> torch.Tensor:
    x = torch.randn(n, D, generator=gen, dtype=torch.float64)
    return (x / x.norm(dim=1, keepdim=True)).to(device=device, dtype=dtype)


class ExactTestError:
    r"""The test error of a kernel predictor :math:`\hat f = \sum_j \alpha_j k(\langle
    \cdot, x_j\rangle)` on the sphere against :math:`f^* = \sum_l a_l P_{l,D}(\langle\beta,
    \cdot\rangle)`, in closed form (no test set). By Funk-Hecke,

    .. math:: \mathbb E(\hat f - f^*)^2 = \alpha^\top K_2 \alpha
              - 2\sum_j \alpha_j \sum_l \mu_l a_l P_{l,D}(\langle\beta, x_j\rangle)
              + \sum_l a_l^2 / N(D, l),
       \qquad (K_2)_{ij} = \sum_l N(D, l)\,\mu_l^2\,P_{l,D}(\langle x_i, x_j\rangle),

    the sum in :math:`K_2` over the degrees that carry more than 1e-15 of :math:`\sum_l
    N\mu_l^2` (it converges like :math:`\mu_l^2`).
    """

    def __init__(self, mu: np.ndarray, mult: np.ndarray, coef: np.ndarray, D: int):
        weight = np.where(mu > RESOLVED * np.abs(mu).max(), mult * mu * mu, 0.0)
        self.degrees = int(np.flatnonzero(weight > 1e-15 * weight.sum())[-1]) + 1
        self.weight, self.D = weight[:self.degrees], D
        self.cross = mu[:len(coef)] * coef  # mu_l a_l
        self.target_power = float((coef**2 / mult[:len(coef)]).sum())

    def second_moments(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`K_2` on the points x, (n, n)."""
        t = (x @ x.T).clamp(-1.0, 1.0).to(torch.float64).cpu().numpy()
        return torch.as_tensor(legendre_series(self.D, self.weight, t)).to(x)

    def __call__(self, alpha: torch.Tensor, second: torch.Tensor, x: torch.Tensor) -> float:
        n = len(alpha)
        t = x[:, 0].to(torch.float64).cpu().numpy()  # beta = e_1
        used = np.flatnonzero(self.cross)
        along = sum((self.cross[l] * legendre(self.D, int(l), t) for l in used), np.zeros(n))
        alpha = alpha.to(torch.float64).cpu()
        return (float(alpha @ second[:n, :n].to(torch.float64).cpu() @ alpha)
                - 2 * float(alpha.numpy() @ along) + self.target_power)


def sphere(s: SphereSettings) -> list[dict]:
    def k(t):
        return dot_product_values(s, t)

    # target: sum_l a_l P_{l,D}(<beta, x>), power a_l^2 / N(D, l) on degree l
    powers = np.zeros(s.degrees)
    powers[:len(s.target_power)] = s.target_power
    coef = np.sqrt(powers * np.array([multiplicity(s.D, l) for l in range(s.degrees)],
                                     dtype=np.float64))
    trace = float(k([1.0])[0])
    mu, mult = funk_hecke(k, s.D, s.degrees, s.quadrature_points)
    resolved = mu > RESOLVED * np.abs(mu).max()  # the trace quadrature alone resolves
    exact = sphere_spectrum(k, s.D, s.degrees, {"target": powers}, s.quadrature_points, trace)
    rows = [{"analysis": "exact", "index": i + 1, "metric": "eigenvalue", "value": float(v)}
            for i, v in enumerate(np.repeat(exact.eigenvalues[:TOP_MODES],
                                            np.minimum(exact.multiplicity[:TOP_MODES],
                                                       TOP_MODES).astype(int))
                                  [:TOP_MODES])]
    rows.append({"analysis": "exact", "metric": "trace_share",
                 "value": float((mu * mult)[resolved].sum() / trace)})
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

    error = ExactTestError(mu, mult, coef, s.D)
    for run in range(s.seeds):
        xs = sphere_points(s.n_grid[-1], s.D, generator(s.seed, "theory", "sphere-train", run),
                           s.torch_dtype, s.torch_device)
        ys = f_star(xs)
        K = s.kernel_matrix(xs)
        second = error.second_moments(xs)
        paired = run < s.network_seeds and s.network_sizes
        if paired:  # networks are measured on test points: so is the kernel beside them
            xt = sphere_points(s.n_test, s.D, generator(s.seed, "theory", "sphere-test", run),
                               s.torch_dtype, s.torch_device)
            yt, Kt = f_star(xt), s.kernel_matrix(xt, xs)
        for n in s.n_grid:
            gcv = kernel_ridge_gcv(K[:n, :n], ys[:n], s.ridges)
            for r, estimate in zip(s.ridges, gcv):  # ridge 0: gradient flow at t = infinity
                alpha = kernel_ridge_solve(K[:n, :n], ys[:n], r)
                cell = {"analysis": "simulation", "run": run, "n": n, "ridge": r}
                rows += [{**cell, "metric": "test_error",
                          "value": error(alpha, second, xs[:n])},
                         {**cell, "metric": "gcv", "value": float(estimate)}
                         if np.isfinite(estimate) else {**cell, "metric": "gcv_undefined",
                                                        "value": 1.0}]
                if paired and r == 0.0 and n in s.network_sizes:
                    rows.append({**cell, "metric": "test_error_sampled",
                                 "value": float(((Kt[:, :n] @ alpha - yt) ** 2).mean())})
        if paired:
            for n in s.network_sizes:
                rows.append({"analysis": "network", "run": run, "n": n, "ridge": 0.0,
                             "metric": "test_error_sampled",
                             "value": _trained_network_error(s, xs[:n], ys[:n], xt, yt, run),
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


