"""The Mehler-Hermite softmax kernel: against direct quadrature of the pair expectation, Monte
Carlo, its own bound and convergence in degree."""

import itertools

import numpy as np
import pytest
import torch

from rfattn.core import ConfigError
from rfattn.rfa import RandomFeatureAttention, sample_tokens
from rfattn.rfa.hermite_kernel import hermite_softmax_kernel
from rfattn.rfa.sampling import augment

VARIANCE = 0.25


def direct_pair(x0, X, a, b, c, nodes):
    r"""E[f_a(u_a) . f_b(u_b)] by a tensor Gauss-Hermite rule in 2d dimensions, without the
    expansion: u_a = mu_a + sigma_a z_1, u_b = mu_b + sigma_b (rho z_1 + sqrt(1 - rho^2) z_2)."""
    d = x0.shape[1]
    q = augment(x0).numpy()
    keys = augment(X).numpy()
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    grid = np.array(list(itertools.product(z, repeat=2 * d)))
    mass = np.prod(np.array(list(itertools.product(w / w.sum(), repeat=2 * d))), axis=1)
    sigma = np.sqrt(VARIANCE) * np.linalg.norm(q, axis=1)
    rho = q[a] @ q[b] / (np.linalg.norm(q[a]) * np.linalg.norm(q[b]))
    u_a = c * x0[a].numpy() + sigma[a] * grid[:, :d]
    spread = np.sqrt(max(0.0, 1 - rho**2))
    u_b = c * x0[b].numpy() + sigma[b] * (rho * grid[:, :d] + spread * grid[:, d:])

    def feature(i, u):
        scores = u @ X[i].numpy().T
        weights = np.exp(scores - scores.max(1, keepdims=True))
        return (weights / weights.sum(1, keepdims=True)) @ keys[i]

    return float(mass @ (feature(a, u_a) * feature(b, u_b)).sum(1))


@pytest.mark.parametrize("c", [0.0, 0.8])
def test_expansion_matches_direct_quadrature_of_each_pair(gen, c):
    """d = 2: the 4-dimensional expectation of a pair by a 24^4-point rule, to 1e-8 (both
    rules converge root-exponentially for the softmax)."""
    x0, X = sample_tokens(4, 3, 2, gen("direct", str(c)))
    kernel, bound = hermite_softmax_kernel(x0, X, variance=VARIANCE, c=c, degree=18, nodes=22)
    for a, b in ((0, 0), (0, 1), (1, 3), (2, 3)):
        assert kernel[a, b].item() == pytest.approx(direct_pair(x0, X, a, b, c, 24),
                                                    rel=1e-8), (a, b)
    assert bound < 1e-8


@pytest.mark.parametrize("c", [0.0, 1.0])
def test_expansion_agrees_with_monte_carlo(gen, c):
    """d = N = 4, zero-mean and biased heads: 16 groups of 4 samples, each with its own 2^15
    heads in 32 draws; the t-statistic of each group's block-mean difference is standard
    normal (independent across groups) when the kernel is right."""
    x0, X = sample_tokens(64, 4, 4, gen("monte-carlo", str(c)))
    kernel, bound = hermite_softmax_kernel(x0, X, variance=VARIANCE, c=c)
    scores = []
    for g in range(16):
        part = slice(4 * g, 4 * g + 4)
        means = []
        for draw in range(32):
            heads = RandomFeatureAttention.sample(1024, 4, gen("heads", str(c), g, draw),
                                                  "softmax", "biased" if c else "zero",
                                                  VARIANCE, c)
            phi = heads.features(x0[part], X[part])
            means.append(float((phi @ phi.T - kernel[part, part]).mean()))
        means = torch.tensor(means)
        scores.append(float(means.mean() / (means.std() / len(means) ** 0.5)))
    scores = torch.tensor(scores)
    assert scores.abs().max() < 4.5 and 0.3 < float((scores**2).mean()) < 2.5, scores
    assert bound < 1e-5


def test_error_falls_with_degree_and_stays_within_the_bound(gen):
    x0, X = sample_tokens(96, 4, 4, gen("convergence"))
    reference, _ = hermite_softmax_kernel(x0, X, variance=VARIANCE, degree=10, nodes=14)
    errors = []
    for degree in (2, 4, 6):
        kernel, bound = hermite_softmax_kernel(x0, X, variance=VARIANCE, degree=degree,
                                               nodes=degree + 2)
        errors.append(float((kernel - reference).norm() / reference.norm()))
        assert errors[-1] <= bound, (degree, errors[-1], bound)
    assert all(later < earlier / 3 for earlier, later in zip(errors, errors[1:])), errors
    assert errors[2] < 2e-6  # the default, degree 6 on 8 nodes


def test_cross_kernel_is_the_gram_matrix_off_its_diagonal(gen):
    """The cross call truncates the series on the diagonal too; the Gram matrix takes the
    quadrature of E|f|^2 there, closer to the converged value."""
    x0, X = sample_tokens(40, 4, 4, gen("cross"))
    gram, _ = hermite_softmax_kernel(x0, X, variance=VARIANCE, c=0.5)
    cross, _ = hermite_softmax_kernel(x0[:15], X[:15], x0, X, variance=VARIANCE, c=0.5)
    off = ~torch.eye(40, dtype=torch.bool)[:15]
    torch.testing.assert_close(cross[off], gram[:15][off], rtol=1e-12, atol=1e-14)
    converged, _ = hermite_softmax_kernel(x0[:15], X[:15], variance=VARIANCE, c=0.5, degree=8,
                                          nodes=16)
    truncated = (cross.diagonal() - converged.diagonal()).abs().max()
    kept = (gram[:15].diagonal() - converged.diagonal()).abs().max()
    assert kept < 1e-4 and kept < truncated, (kept, truncated)


@pytest.mark.parametrize("kwargs, message", [
    (dict(degree=-1), "degree must be an integer >= 0"),
    (dict(degree=6, nodes=7), "nodes must be >= degree \\+ 2 = 8"),
    (dict(degree=6, nodes=17), "nodes\\*\\*d must be <= 65536"),
    (dict(variance=0.0), "variance must lie in \\(0"),
    (dict(c=float("nan")), "c must be a finite number"),
])
def test_bad_settings_are_one_line(gen, kwargs, message):
    x0, X = sample_tokens(3, 2, 4, gen("bad"))
    with pytest.raises(ConfigError, match=message):
        hermite_softmax_kernel(x0, X, **kwargs)
