"""The validity map's measurements: the exact test error on the sphere and GCV."""

import numpy as np
import pytest
import torch

from rfattn.linalg import kernel_ridge_gcv, kernel_ridge_solve
from rfattn.ntk import fc_kernels
from rfattn.theory.sphere import funk_hecke, legendre, multiplicity
from rfattn.theory.sphere_jobs import ExactTestError, sphere_points


def _ntk(D):
    def kernel(x1, x2=None):
        return fc_kernels(x1, x2, depth=3, b_std=0.1).ntk

    def k(t):
        t = torch.as_tensor(np.atleast_1d(t), dtype=torch.float64)
        x2 = torch.zeros(len(t), D, dtype=torch.float64)
        x2[:, 0], x2[:, 1] = t, (1 - t * t).clamp(min=0).sqrt()
        return kernel(torch.eye(D, dtype=torch.float64)[:1], x2)[0].numpy()

    return kernel, k


@pytest.mark.parametrize("D,ridge", [(3, 0.0), (5, 1e-3)])
def test_exact_test_error_matches_a_large_test_set(gen, D, ridge):
    kernel, k = _ntk(D)
    power = np.array([0.0, 0.5, 0.3, 0.2])
    coef = np.sqrt(power * np.array([multiplicity(D, l) for l in range(4)], dtype=float))
    mu, mult = funk_hecke(k, D, 200, 800)
    error = ExactTestError(mu, mult, coef, D)

    def f_star(x):
        t = x[:, 0].numpy()
        return torch.as_tensor(sum(c * legendre(D, l, t) for l, c in enumerate(coef) if c))

    xs = sphere_points(64, D, gen("exact-train"), torch.float64, "cpu")
    alpha = kernel_ridge_solve(kernel(xs), f_star(xs), ridge)
    exact = error(alpha, error.second_moments(xs), xs)
    xt = sphere_points(100_000, D, gen("exact-test"), torch.float64, "cpu")
    squared = (kernel(xt, xs) @ alpha - f_star(xt)) ** 2
    mc, stderr = float(squared.mean()), float(squared.std()) / len(xt) ** 0.5
    assert abs(exact - mc) < 4 * stderr, (exact, mc, stderr)


def test_gcv_is_the_formula_and_finite_without_a_ridge(gen):
    kernel, _ = _ntk(5)
    x = sphere_points(80, 5, gen("gcv"), torch.float64, "cpu")
    y = torch.randn(80, generator=gen("gcv-y"), dtype=torch.float64)
    K = kernel(x)
    for r, value in zip((1e-3, 1e-1), kernel_ridge_gcv(K, y, [1e-3, 1e-1])):
        H = K @ torch.linalg.inv(K + 80 * r * torch.eye(80, dtype=torch.float64))
        direct = float(((y - H @ y) ** 2).mean()) / (1 - float(H.trace()) / 80) ** 2
        assert value == pytest.approx(direct, rel=1e-8)
    # ridge 0 is the limit r -> 0+
    assert kernel_ridge_gcv(K, y, [0.0])[0] == pytest.approx(
        kernel_ridge_gcv(K, y, [1e-13])[0], rel=1e-4)
    # a singular K has no ridgeless GCV: reported as inf, not NaN
    assert kernel_ridge_gcv(torch.ones(4, 4, dtype=torch.float64), y[:4], [0.0])[0] == np.inf


def test_gcv_estimates_the_test_error_in_high_dimension(gen):
    # the NTK on S^19 at ridge 1e-2: GCV from 512 training points against the exact error
    # (GCV's finite-n bias here is about +10%)
    D = 20
    kernel, k = _ntk(D)
    power = np.array([0.0, 0.6, 0.4])
    coef = np.sqrt(power * np.array([multiplicity(D, l) for l in range(3)], dtype=float))
    mu, mult = funk_hecke(k, D, 60, 240)
    error = ExactTestError(mu, mult, coef, D)
    ratios = []
    for run in range(3):
        xs = sphere_points(512, D, gen("gcv-hd", run), torch.float64, "cpu")
        ys = torch.as_tensor(sum(c * legendre(D, l, xs[:, 0].numpy())
                                 for l, c in enumerate(coef) if c))
        K = kernel(xs)
        exact = error(kernel_ridge_solve(K, ys, 1e-2), error.second_moments(xs), xs)
        ratios.append(kernel_ridge_gcv(K, ys, [1e-2])[0] / exact)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.2), ratios
