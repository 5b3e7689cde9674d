"""Random-feature attention: invariances, closed-form kernel against Monte Carlo, kernel limit."""

import math

import numpy as np

import pytest
import torch

from rfattn.core import ConfigError
from rfattn.linalg import SpectralRidge, relu_arccos_kernel
from rfattn.rfa import (RandomFeatureAttention, RandomFeatureMLP, make_target,
                        monte_carlo_attention_kernel, rfa_relu_kernel, sample_query_key,
                        sample_tokens)
from rfattn.rfa.sampling import augment


def naive_kernel(x0a, Xa, x0b, Xb, variance):
    """Definition of the infinite-head kernel, term by term (no factorization)."""
    qa, qb, ka, kb = augment(x0a), augment(x0b), augment(Xa), augment(Xb)
    keys = torch.einsum("aiq,bjq->abij", ka, kb)
    inner = (qa @ qb.T)[:, :, None, None] * keys
    sq = (((qa * qa).sum(-1)[:, None] * (qb * qb).sum(-1)[None])[:, :, None, None]
          * (ka * ka).sum(-1)[:, None, :, None] * (kb * kb).sum(-1)[None, :, None, :])
    return (relu_arccos_kernel(inner, sq, variance) * keys).sum((-1, -2)) / Xa.shape[1] ** 2


@pytest.mark.parametrize("activation", ["relu", "softmax"])
def test_features_and_targets_are_invariant_to_key_permutations(gen, activation):
    x0, X = sample_tokens(50, 6, 5, gen("tok"))
    perm = torch.randperm(6, generator=gen("perm"))
    rfa = RandomFeatureAttention.sample(7, 5, gen("W"), activation=activation, mean="biased",
                                        c=1.0)
    torch.testing.assert_close(rfa.features(x0, X), rfa.features(x0, X[:, perm]), rtol=1e-12,
                               atol=1e-14)
    for name in ("single_key", "query_key", "similarity", "two_key"):
        t = make_target(name, 5, 6, degree=3)
        torch.testing.assert_close(t(x0, X), t(x0, X[:, perm]), rtol=1e-12, atol=1e-12)
    # the MLP on the concatenated input is not invariant: the symmetry is attention's
    mlp = RandomFeatureMLP.sample(40, 6, 5, gen("mlp"))
    assert (mlp.features(x0, X) - mlp.features(x0, X[:, perm])).abs().max() > 1e-3


def test_features_equal_the_definition(gen):
    x0, X = sample_tokens(4, 3, 2, gen("tok"))
    rfa = RandomFeatureAttention.sample(5, 2, gen("W"))
    feats = rfa.features(x0, X, budget_bytes=1)  # one sample per block
    for b in range(4):
        for m in range(5):
            phi = sum(torch.relu(augment(x0[b]) @ rfa.W[m] @ augment(X[b, i])) / 3
                      * augment(X[b, i]) for i in range(3)) / math.sqrt(5)
            torch.testing.assert_close(feats[b, 3 * m:3 * m + 3], phi, rtol=1e-12, atol=1e-14)


def test_closed_form_kernel_equals_definition(gen):
    x0a, Xa = sample_tokens(40, 5, 3, gen("a"))
    x0b, Xb = sample_tokens(30, 5, 3, gen("b"))
    torch.testing.assert_close(rfa_relu_kernel(x0a, Xa, x0b, Xb, 0.3),
                               naive_kernel(x0a, Xa, x0b, Xb, 0.3), rtol=1e-12, atol=1e-14)
    sym = rfa_relu_kernel(x0a, Xa, variance=0.3, block_bytes=2048)
    torch.testing.assert_close(sym, sym.T, rtol=0, atol=0)
    torch.testing.assert_close(sym, naive_kernel(x0a, Xa, x0a, Xa, 0.3), rtol=1e-9, atol=1e-12)
    assert torch.linalg.eigvalsh(sym).min() > -1e-10 * sym.diagonal().max()
    assert torch.isfinite(sym).all()


def test_arccos_kernel_against_monte_carlo(gen):
    # E[relu(<w,u>) relu(<w,u'>)], w ~ N(0, s^2 I): closed form vs 4e6 draws; equal inputs too
    u = torch.tensor([[1.0, 0.0, 0.5], [0.3, -0.8, 0.1], [1.0, 0.0, 0.5]])
    w = torch.randn(4_000_000, 3, generator=gen("w")) * 0.7
    act = torch.relu(w @ u.T)
    mc = act.T @ act / w.shape[0]
    exact = relu_arccos_kernel(u @ u.T, (u * u).sum(1)[:, None] * (u * u).sum(1)[None], 0.49)
    torch.testing.assert_close(exact, mc, rtol=5e-3, atol=1e-3)


def test_closed_form_kernel_against_monte_carlo_over_heads(gen):
    x0, X = sample_tokens(12, 4, 3, gen("tok"))
    K = rfa_relu_kernel(x0, X, variance=0.25)
    mc, stderr = monte_carlo_attention_kernel(
        x0, X, x0, X, lambda m, k: RandomFeatureAttention.sample(m, 3, gen("heads", k)),
        total_heads=200_000, heads_per_draw=20_000)
    z = ((mc - K) / stderr).abs()
    assert z.max() < 5.0, f"Monte Carlo deviates by {z.max():.1f} standard errors"
    assert ((mc - K).abs() / K.abs().max()).max() < 0.01
    same, _ = monte_carlo_attention_kernel(  # the symmetric Gram of one sample: same heads
        x0, X, None, None, lambda m, k: RandomFeatureAttention.sample(m, 3, gen("heads", k)),
        total_heads=200_000, heads_per_draw=20_000)
    torch.testing.assert_close(same, mc, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c", [0.8, -1.5, 3.0])
def test_biased_kernel_against_monte_carlo_over_heads(gen, c):
    # W = c blockdiag(I, 0) + s G: the quadrature kernel against 400000 heads (z-scores), its
    # cross kernel against its Gram matrix, and c = 0 against the arc-cosine closed form
    x0, X = sample_tokens(12, 4, 3, gen("tok"))
    K = rfa_relu_kernel(x0, X, variance=0.3, c=c)
    mc, stderr = monte_carlo_attention_kernel(
        x0, X, None, None,
        lambda m, k: RandomFeatureAttention.sample(m, 3, gen("heads", str(c), k), mean="biased",
                                                   variance=0.3, c=c),
        total_heads=400_000, heads_per_draw=40_000)
    z = ((mc - K) / stderr).abs()
    assert z.max() < 5.0, f"Monte Carlo deviates by {z.max():.1f} standard errors"
    assert (mc - K).norm() / K.norm() < 0.01
    torch.testing.assert_close(rfa_relu_kernel(x0[:5], X[:5], x0, X, variance=0.3, c=c), K[:5],
                               rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(rfa_relu_kernel(x0, X, variance=0.3, c=1e-300),
                               rfa_relu_kernel(x0, X, variance=0.3), rtol=1e-7, atol=1e-9)


def test_finite_biased_heads_converge_to_the_kernel_at_rate_one_over_m(gen):
    # E ||K_M - K||^2 ~ 1/M: the log-log slope of the mean squared error over 16 draws
    x0, X = sample_tokens(10, 3, 3, gen("tok"))
    K = rfa_relu_kernel(x0, X, variance=0.25, c=1.0)
    heads, errors = [16, 64, 256, 1024], []
    for M in heads:
        draws = [RandomFeatureAttention.sample(M, 3, gen("conv", M, r), mean="biased", c=1.0)
                 .features(x0, X) for r in range(16)]
        errors.append(np.mean([float(((p @ p.T - K) ** 2).sum()) for p in draws]))
    slope = np.polyfit(np.log(heads), np.log(errors), 1)[0]
    assert -1.2 < slope < -0.8, slope


def test_monte_carlo_error_on_a_row_subsample_is_that_of_the_full_kernel(gen):
    # the kernel accumulated in place does not depend on error_rows; the subsample's errors
    # are the full matrix's first rows
    x0, X = sample_tokens(30, 3, 3, gen("tok"))

    def heads(m, k):
        return RandomFeatureAttention.sample(m, 3, gen("heads", k), mean="biased", c=1.0)

    full, stderr = monte_carlo_attention_kernel(x0, X, None, None, heads, 600, 60)
    rows, stderr_rows = monte_carlo_attention_kernel(x0, X, None, None, heads, 600, 60,
                                                     error_rows=7)
    torch.testing.assert_close(rows, full, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(stderr_rows, stderr[:7], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(full, full.T, rtol=1e-12, atol=1e-14)
    cross, _ = monte_carlo_attention_kernel(x0, X, x0, X, heads, 600, 60)
    torch.testing.assert_close(cross, full, rtol=1e-12, atol=1e-14)
    assert torch.isinf(monte_carlo_attention_kernel(x0, X, None, None, heads, 60, 60)[1]).all()


def test_finite_heads_approach_kernel_ridge(gen):
    x0, X = sample_tokens(150, 4, 3, gen("train"))
    t0, T = sample_tokens(100, 4, 3, gen("test"))
    y = make_target("query_key", 3, 4, degree=2)(x0, X)
    lam = [1e-3]
    K = rfa_relu_kernel(x0, X)
    ref = SpectralRidge.from_gram(K, y).predict(lam, cross_gram=rfa_relu_kernel(t0, T, x0, X))
    gaps = []
    for M in (10, 100, 1000, 10000):
        rfa = RandomFeatureAttention.sample(M, 3, gen("W", M))
        pred = SpectralRidge.from_features(rfa.features(x0, X), y).predict(lam,
                                                                           rfa.features(t0, T))
        gaps.append(float(((pred - ref) ** 2).mean() / (ref**2).mean()))
    assert all(b < a for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 0.02 * gaps[0] and gaps[-1] < 1e-2, gaps


def test_biased_sampler_adds_the_mean(gen):
    W = sample_query_key(3, 4, gen("W"), mean="biased", variance=0.0, c=2.5)
    expected = torch.zeros(5, 5)
    expected[:4, :4] = 2.5 * torch.eye(4)
    torch.testing.assert_close(W, expected.expand(3, 5, 5))


def test_softmax_heads_sum_to_one(gen):
    x0, X = sample_tokens(20, 7, 4, gen("tok"))
    a = RandomFeatureAttention.sample(3, 4, gen("W"), activation="softmax").head_weights(x0, X)
    torch.testing.assert_close(a.sum(-1), torch.ones(20, 3))


def test_zero_variance_zero_mean_heads_are_refused_not_silently_zero(gen):
    with pytest.raises(ConfigError, match="qk_variance must be > 0 for zero-mean heads"):
        RandomFeatureAttention.sample(3, 4, gen("W"), variance=0.0)
