"""Learning-curve equations: identities, closed forms, and simulated ridge regression on a
Gaussian design (where the equations are asymptotically exact)."""

import numpy as np
import pytest

from rfattn.core import ConfigError
from rfattn.theory import Spectrum, effective_regularization, learnability, learning_curve


def power_law(D=400, alpha=1.5, beta=1.0, seed=0):
    """Eigenvalues i^-alpha of a Gaussian design in R^D and target coefficients ~ i^-beta/2."""
    rng = np.random.default_rng(seed)
    lam = np.arange(1, D + 1, dtype=np.float64) ** -alpha
    v = rng.standard_normal(D) * np.arange(1, D + 1) ** (-beta / 2)
    return lam, v, Spectrum(lam, np.ones(D), {"f": v * v * lam})


def test_conservation_law_and_fixed_point():
    lam, _, spec = power_law()
    n, ridge = np.array([10, 50, 300]), np.array([1e-6, 1e-3, 1e-1])
    kappa = effective_regularization(spec, n, ridge)
    for i, m in enumerate(n):
        for j, r in enumerate(ridge):
            L = learnability(spec, m, r)
            # sum_i L_i + delta / kappa = n with delta = n * ridge
            assert L.sum() + m * r / kappa[i, j] == pytest.approx(m, rel=1e-10)
    P = 120.0
    kt = effective_regularization(spec, n, ridge, features=P)
    df1 = spec.df1(kt)
    np.testing.assert_allclose(kt * (1 - df1 / n[:, None]) * (1 - df1 / P), ridge[None] + 0 * kt,
                               rtol=1e-9)


def test_isotropic_ridgeless_closed_form():
    # D equal eigenvalues, n < D, min-norm interpolation: excess error (1 - n/D) |v|^2 from the
    # bias and noise^2 n / (D - n) from the variance
    D, noise = 200, 0.3
    spec = Spectrum(np.ones(D), np.ones(D), {"f": np.full(D, 2.0 / D)})
    n = np.array([20, 100, 150])
    curve = learning_curve(spec, n, [0.0], noise=noise)
    expected = (1 - n / D) * 2.0 + noise**2 * n / (D - n)
    np.testing.assert_allclose(curve.test["f"][:, 0], expected, rtol=1e-9)


def test_many_features_are_the_kernel():
    _, _, spec = power_law()
    n, ridge = [20, 100, 300], [1e-5, 1e-2]
    kernel = learning_curve(spec, n, ridge, noise=0.1)
    wide = learning_curve(spec, n, ridge, noise=0.1, features=1e9)
    np.testing.assert_allclose(wide.test["f"], kernel.test["f"], rtol=1e-5)
    np.testing.assert_allclose(wide.train["f"], kernel.train["f"], rtol=1e-5)


def simulate(lam, v, n, ridge, noise, reps, seed, P=None):
    """Mean excess test error and train MSE of ridge regression (this lab's objective) on
    x ~ N(0, diag(lam)), y = <v, x> + noise; with P, on the random features F x / sqrt(P)."""
    rng = np.random.default_rng(seed)
    D = len(lam)
    test, train = np.zeros((len(n), len(ridge))), np.zeros((len(n), len(ridge)))
    for _ in range(reps):
        F = None if P is None else rng.standard_normal((P, D))
        for i, m in enumerate(n):
            X = rng.standard_normal((m, D)) * np.sqrt(lam)
            y = X @ v + noise * rng.standard_normal(m)
            Z = X if F is None else X @ F.T / np.sqrt(P)
            for j, r in enumerate(ridge):
                w = np.linalg.solve(Z.T @ Z / m + r * np.eye(Z.shape[1]), Z.T @ y / m)
                theta = w if F is None else F.T @ w / np.sqrt(P)
                test[i, j] += ((theta - v) ** 2 * lam).sum() / reps
                train[i, j] += ((Z @ w - y) ** 2).mean() / reps
    return test, train


def test_kernel_ridge_equations_match_simulation():
    lam, v, spec = power_law()
    n, ridge, noise = [20, 50, 100, 200, 400], [1e-4, 1e-2], 0.1
    curve = learning_curve(spec, n, ridge, noise=noise)
    test, train = simulate(lam, v, n, ridge, noise, reps=40, seed=1)
    np.testing.assert_allclose(curve.test["f"], test, rtol=0.06)
    # train MSE at the larger ridge (at 1e-4 it interpolates: train MSE ~ 1e-6 of noise)
    np.testing.assert_allclose(curve.train["f"][:, 1], train[:, 1], rtol=0.08)


@pytest.mark.parametrize("P", [60, 150])
def test_random_feature_equivalent_matches_simulation(P):
    lam, v, spec = power_law(D=600, alpha=1.3, beta=0.8, seed=2)
    n, ridge, noise = [20, 50, 100, P - 10, P, P + 10, 2 * P, 400], [1e-5, 1e-2], 0.05
    curve = learning_curve(spec, n, ridge, noise=noise, features=P)
    test, _ = simulate(lam, v, n, ridge, noise, reps=30, seed=3, P=P)
    # finite-size effects are largest at the peak (P = 60: 25% there, 30 draws)
    near = np.isin(n, [P - 10, P, P + 10])
    np.testing.assert_allclose(curve.test["f"][~near], test[~near], rtol=0.12)
    np.testing.assert_allclose(curve.test["f"][near], test[near], rtol=0.35)
    # the double-descent peak of the small ridge sits at n = P, in theory and simulation
    assert n[int(np.argmax(curve.test["f"][:, 0]))] == P
    assert n[int(np.argmax(test[:, 0]))] == P


def test_bad_grids_are_named():
    _, _, spec = power_law(D=50)
    with pytest.raises(ConfigError, match=r"n\[1\] must be"):
        learning_curve(spec, [10, 0], [1e-3])
    with pytest.raises(ConfigError, match="ridge finite and >= 0"):
        learning_curve(spec, [10], [-1.0])
    with pytest.raises(ConfigError, match=r"features must lie in \(0, inf\]"):
        learning_curve(spec, [10], [1e-3], features=0)
    with pytest.raises(ConfigError, match="ridgeless predictions at n=60 need more"):
        learning_curve(spec, [60], [0.0])
