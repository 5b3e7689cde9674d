"""The softmax attention kernel: the control variate's closed form, the estimate's bias, error."""

import itertools

import numpy as np
import pytest
import torch

from rfattn.core import ConfigError
from rfattn.rfa import RandomFeatureAttention, monte_carlo_attention_kernel, sample_tokens
from rfattn.rfa.sampling import augment
from rfattn.rfa.softmax_kernel import (antithetic_heads, relative_error,
                                       softmax_attention_kernel, taylor_softmax_features,
                                       taylor_softmax_kernel)

VARIANCE = 0.25


def taylor_weights(scores):
    c = scores - scores.mean(-1, keepdims=True)
    square = c * c
    return (1.0 + c + 0.5 * (square - square.mean(-1, keepdims=True))) / scores.shape[-1]


def test_taylor_kernel_is_the_exact_expectation_of_the_control_features(gen):
    """psi_a . psi_b is a polynomial of degree 4 in the Gaussian (W^T q_a, W^T q_b): Gauss-Hermite
    with 3 nodes per dimension integrates it exactly."""
    d = 2
    q = d + 1
    x0, X = sample_tokens(3, 3, d, gen("tokens"))[:2]
    queries, keys = augment(x0).numpy(), augment(X).numpy()
    kernel = taylor_softmax_kernel(x0, X, variance=VARIANCE).numpy()
    nodes, weights = np.polynomial.hermite_e.hermegauss(3)
    weights = weights / weights.sum()
    grid = np.array(list(itertools.product(nodes, repeat=2 * q)))
    mass = np.prod(np.array(list(itertools.product(weights, repeat=2 * q))), axis=1)
    for a, b in ((0, 0), (0, 1), (1, 2)):
        # z_a = W^T q_a, z_b = W^T q_b: coordinatewise covariance VARIANCE [[qa.qa, qa.qb], ...]
        gram = VARIANCE * np.array([[queries[a] @ queries[a], queries[a] @ queries[b]],
                                    [queries[b] @ queries[a], queries[b] @ queries[b]]])
        if a == b:
            za = zb = np.sqrt(gram[0, 0]) * grid[:, :q]
        else:
            root = np.linalg.cholesky(gram)
            za = root[0, 0] * grid[:, :q]
            zb = root[1, 0] * grid[:, :q] + root[1, 1] * grid[:, q:]
        psi_a = taylor_weights(za @ keys[a].T) @ keys[a]
        psi_b = taylor_weights(zb @ keys[b].T) @ keys[b]
        exact = float(mass @ (psi_a * psi_b).sum(1))
        assert kernel[a, b] == pytest.approx(exact, rel=1e-12)


def test_control_features_are_the_taylor_polynomial_of_the_heads(gen):
    x0, X = sample_tokens(5, 4, 3, gen("tokens"))[:2]
    heads = RandomFeatureAttention.sample(7, 3, gen("heads"), "softmax")
    scores = torch.einsum("bp,mpq,biq->bmi", augment(x0), heads.W, augment(X))
    expected = torch.einsum("bmi,biq->bmq", taylor_weights(scores), augment(X)).reshape(5, -1)
    torch.testing.assert_close(taylor_softmax_features(heads, x0, X), expected / 7**0.5)
    small = RandomFeatureAttention(heads.W * 1e-3, "softmax")  # scores -> 0: Taylor is softmax
    torch.testing.assert_close(taylor_softmax_features(small, x0, X),
                               small.features(x0, X), rtol=1e-8, atol=1e-9)


def test_antithetic_heads_come_in_pairs(gen):
    heads = antithetic_heads(7, 3, gen("heads"))
    assert heads.W.shape == (7, 4, 4) and heads.activation == "softmax"
    torch.testing.assert_close(heads.W[4:], -heads.W[:3])


def test_control_variate_is_unbiased_and_lowers_the_error(gen):
    x0, X = sample_tokens(24, 4, 4, gen("tokens"))[:2]

    def plain_heads(m, draw):
        return RandomFeatureAttention.sample(m, 4, gen("plain", draw), "softmax")

    plain, plain_se = monte_carlo_attention_kernel(x0, X, None, None, plain_heads, 4096, 128)
    controlled, controlled_se = softmax_attention_kernel(x0, X, total_heads=4096, seed=3)
    assert relative_error(plain, plain_se) > 2.0 * relative_error(controlled, controlled_se)
    reference, reference_se = monte_carlo_attention_kernel(x0, X, None, None, plain_heads,
                                                           2**17, 4096)
    z = (controlled - reference) / (controlled_se**2 + reference_se**2).sqrt()
    assert abs(float(z.mean())) < 1.0  # entries share heads: their z-scores are correlated
    assert float(z.abs().max()) < 5.0


def test_sobol_heads_are_unbiased_and_lower_the_error(gen):
    x0, X = sample_tokens(24, 4, 4, gen("tokens"))[:2]
    iid, iid_se = softmax_attention_kernel(x0, X, total_heads=4096, seed=3, heads_per_draw=256)
    sobol, sobol_se = softmax_attention_kernel(x0, X, total_heads=4096, seed=3,
                                               heads_per_draw=256, sampler="sobol")
    assert relative_error(iid, iid_se) > 1.3 * relative_error(sobol, sobol_se)
    reference, reference_se = softmax_attention_kernel(x0, X, total_heads=32768, seed=5,
                                                       heads_per_draw=1024)
    z = (sobol - reference) / (sobol_se**2 + reference_se**2).sqrt()
    assert abs(float(z.mean())) < 1.0  # entries share heads: their z-scores are correlated
    assert float(z.abs().max()) < 5.0
    with pytest.raises(ConfigError, match="heads_per_draw must be a power of two"):
        softmax_attention_kernel(x0, X, heads_per_draw=96, sampler="sobol")


def test_bad_variance_is_one_line(gen):
    x0, X = sample_tokens(4, 3, 2, gen("tokens"))[:2]
    with pytest.raises(ConfigError, match="variance"):
        taylor_softmax_kernel(x0, X, variance=0.0)
