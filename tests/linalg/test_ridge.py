"""Ridge paths from one eigendecomposition against direct solves and scikit-learn."""

import numpy as np
import pytest
import torch

from rfattn.core import ConfigError
from rfattn.linalg import (RidgeRegressor, SpectralRidge, gram_matrix, prefix_kernel_ridge_paths,
                           prefix_ridge_paths)

LAMBDAS = [1e-6, 1e-3, 1e-1, 3.0]


def direct(F, y, lam):
    """The well-conditioned direct solve: p x p normal equations, or n x n when n < p."""
    n, p = F.shape
    if n >= p:
        return torch.linalg.solve(F.T @ F / n + lam * torch.eye(p), F.T @ y / n)
    return F.T @ torch.linalg.solve(F @ F.T + n * lam * torch.eye(n), y)


@pytest.mark.parametrize("n,p", [(80, 20), (20, 80)])
def test_path_matches_direct_solve(gen, n, p):
    F = torch.randn(n, p, generator=gen("F"))
    y = torch.randn(n, generator=gen("y"))
    Fe = torch.randn(30, p, generator=gen("Fe"))
    ridge = SpectralRidge.from_features(F, y)
    assert ridge.form == ("primal" if n >= p else "dual")
    pred = ridge.predict(LAMBDAS, Fe)
    W = ridge.weights(LAMBDAS)
    for k, lam in enumerate(LAMBDAS):
        w = direct(F, y, lam)
        torch.testing.assert_close(W[:, k], w, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(pred[:, k], Fe @ w, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(ridge.train_predictions(LAMBDAS)[:, k], F @ w, rtol=1e-8,
                                   atol=1e-10)
        torch.testing.assert_close(ridge.train_mse(LAMBDAS)[k], ((F @ w - y) ** 2).mean(),
                                   rtol=1e-8, atol=1e-13)


@pytest.mark.parametrize("n,p", [(40, 10), (10, 40)])
def test_loo_matches_brute_force(gen, n, p):
    F = torch.randn(n, p, generator=gen("F"))
    y = torch.randn(n, generator=gen("y"))
    loo = SpectralRidge.from_features(F, y).loo_mse(LAMBDAS)
    for k, lam in enumerate(LAMBDAS):
        errs = []
        for i in range(n):
            keep = torch.arange(n) != i
            # leave-one-out keeps the full-sample penalty n*lam (as in the closed form)
            G = F[keep].T @ F[keep] + n * lam * torch.eye(p)
            w = torch.linalg.solve(G, F[keep].T @ y[keep])
            errs.append((F[i] @ w - y[i]) ** 2)
        torch.testing.assert_close(loo[k], torch.stack(errs).mean(), rtol=1e-7, atol=1e-12)


def test_prefix_paths_equal_independent_fits(gen):
    F = torch.randn(300, 50, generator=gen("F"))
    y = torch.randn(300, generator=gen("y"))
    Fe, ye = torch.randn(40, 50, generator=gen("Fe")), torch.randn(40, generator=gen("ye"))
    paths = prefix_ridge_paths(F, y, [20, 49, 50, 120, 300], LAMBDAS, {"val": (Fe, ye)},
                               loo=True)
    assert [p.form for p in paths] == ["dual", "dual", "primal", "primal", "primal"]
    for path in paths:
        ref = SpectralRidge.from_features(F[:path.n], y[:path.n])
        mse = ((ref.predict(LAMBDAS, Fe) - ye[:, None]) ** 2).mean(0)
        torch.testing.assert_close(path.mse["val"], mse, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(path.mse["loo"], ref.loo_mse(LAMBDAS), rtol=1e-7, atol=1e-12)


def test_kernel_ridge_equals_linear_kernel_features(gen):
    F = torch.randn(60, 15, generator=gen("F"))
    y = torch.randn(60, generator=gen("y"))
    Fe, ye = torch.randn(25, 15, generator=gen("Fe")), torch.randn(25, generator=gen("ye"))
    kp = prefix_kernel_ridge_paths(F @ F.T, y, [10, 60], LAMBDAS, {"e": (Fe @ F.T, ye)})
    fp = prefix_ridge_paths(F, y, [10, 60], LAMBDAS, {"e": (Fe, ye)})
    for a, b in zip(kp, fp):
        torch.testing.assert_close(a.mse["e"], b.mse["e"], rtol=1e-8, atol=1e-12)


def test_regressor_matches_sklearn(gen):
    sklearn = pytest.importorskip("sklearn.linear_model")
    F = torch.randn(70, 12, generator=gen("F"))
    y = torch.randn(70, generator=gen("y"))
    ours = RidgeRegressor(lam=0.05).fit(F, y)
    ref = sklearn.Ridge(alpha=0.05 * 70, fit_intercept=False).fit(F.numpy(), y.numpy())
    np.testing.assert_allclose(ours.coef_.numpy(), ref.coef_, rtol=1e-9)
    assert ours.score(F, y) == pytest.approx(ref.score(F.numpy(), y.numpy()), rel=1e-9)


@pytest.mark.parametrize("bad", [[-1e-3], [], [float("nan")]])
def test_bad_lambdas_are_named(bad):
    with pytest.raises(ConfigError, match="lambdas"):
        SpectralRidge.from_features(torch.eye(3), torch.ones(3)).predict(bad, torch.eye(3))


def test_running_mean_matches_direct_formulas(gen):
    from rfattn.linalg import RunningMean

    xs = torch.randn(30, 4, 3, generator=gen("x")) * 1e-4 + 1e4  # cancellation-prone
    est = RunningMean()
    for x in xs:
        est.add(x)
    torch.testing.assert_close(est.mean, xs.mean(0), rtol=1e-14, atol=0)
    torch.testing.assert_close(est.stderr, xs.std(0) / 30**0.5, rtol=1e-8, atol=0)
    weighted = RunningMean()  # weights = repeat counts: the same mean as the expanded samples
    for x, w in zip(xs[:3], (1, 2, 3)):
        weighted.add(x, weight=w)
    torch.testing.assert_close(weighted.mean, torch.cat([xs[:1], xs[1:2].repeat(2, 1, 1),
                                                         xs[2:3].repeat(3, 1, 1)]).mean(0))
    single = RunningMean()
    single.add(xs[0])
    assert torch.isinf(single.stderr).all()


@pytest.mark.parametrize("n,blocks", [(7, 3), (50, 4), (1, 4)])
def test_gram_matrix_from_upper_blocks_equals_the_product(gen, n, blocks):
    phi = torch.randn(n, 5, generator=gen("gram", n))
    torch.testing.assert_close(gram_matrix(phi, blocks), phi @ phi.T, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("n,p", [(60, 100), (300, 50)])
def test_gcv_is_the_same_in_primal_dual_and_kernel_form(gen, n, p):
    from rfattn.linalg import kernel_ridge_gcv

    X = torch.randn(n, p, generator=gen("gcv-x", n), dtype=torch.float64)
    y = torch.randn(n, generator=gen("gcv-y", n), dtype=torch.float64)
    lambdas = [1e-3, 1e-1]
    kernel = kernel_ridge_gcv(X @ X.T, y, lambdas)
    for form in ("primal", "dual"):
        ridge = SpectralRidge.from_features(X, y, form=form)
        np.testing.assert_allclose(ridge.gcv(lambdas).numpy(), kernel, rtol=1e-8)
    # the definition: training error over (1 - tr H / n)^2
    H = X @ torch.linalg.solve(X.T @ X + n * 0.1 * torch.eye(p, dtype=torch.float64), X.T)
    direct = float(((y - H @ y) ** 2).mean()) / (1 - float(H.trace()) / n) ** 2
    assert kernel[1] == pytest.approx(direct, rel=1e-8)
