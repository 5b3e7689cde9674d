"""Spectra: sampled against known ones (linear and quadratic kernels on Gaussian data), exact
sphere spectra (Funk-Hecke) against the addition theorem and against sampled ones, tails."""

import math

import numpy as np
import pytest
import torch

from rfattn.core import ConfigError
from rfattn.ntk import fc_kernels
from scipy import special

from rfattn.theory import (Spectrum, compress, funk_hecke, learning_curve, legendre,
                           legendre_series,
                           multiplicity, power_law_fit, sampled_spectrum, sphere_spectrum,
                           with_tail)


def gaussian(gen, n, scales):
    return torch.randn(n, len(scales), generator=gen) * torch.tensor(scales).sqrt()


def test_linear_kernel_spectrum_is_the_covariance_and_powers_are_the_coordinates(gen):
    scales, w = [4.0, 2.0, 1.0, 0.5, 0.25], torch.tensor([1.0, -0.5, 2.0, 0.3, 1.0])
    n = 4000
    X = gaussian(gen("linear"), n, scales)
    y = X @ w
    s = sampled_spectrum(X @ X.T, {"f": y})
    # the nonzero eigenvalues of K/n are those of the sample covariance X^T X / n, exactly
    cov = torch.linalg.eigvalsh(X.T @ X / n).flip(0).numpy()
    np.testing.assert_allclose(s.eigenvalues[:5], cov, rtol=1e-10)
    assert s.eigenvalues[5:].sum() < 1e-10 * cov.sum()
    assert s.power["f"].sum() == pytest.approx(float((y * y).mean()), rel=1e-10)  # Parseval
    # and the population's: eigenvalue s_j, power w_j^2 s_j (sampling error ~ sqrt(2/n))
    np.testing.assert_allclose(s.eigenvalues[:5], scales, rtol=5 * math.sqrt(2 / n))
    np.testing.assert_allclose(s.power["f"][:5], (w * w).numpy() * scales, rtol=0.25)


@pytest.mark.parametrize("modes", [None, 40])
def test_tridiagonal_path_matches_a_full_eigendecomposition(gen, modes):
    # the CPU path (dsytrd, reflectors on the targets, dstemr) against torch.linalg.eigh
    n = 300
    A = torch.randn(n, n, generator=gen("A"))
    gram, y = A @ A.T / n, torch.randn(n, generator=gen("y"))
    s = sampled_spectrum(gram, {"y": y}, modes=modes)
    values, vectors = torch.linalg.eigh(gram)
    values, power = values.flip(0).numpy() / n, ((vectors.T @ y) ** 2 / n).flip(0).numpy()
    np.testing.assert_allclose(s.eigenvalues, values, rtol=1e-9, atol=1e-14)
    top = modes or n
    np.testing.assert_allclose(s.power["y"][:top], power[:top], rtol=1e-7, atol=1e-13)
    assert s.power["y"].sum() == pytest.approx(float((y * y).mean()), rel=1e-12)
    if modes:  # the rest in total (Parseval), spread in proportion to the eigenvalues
        rest = s.power["y"][modes:]
        np.testing.assert_allclose(rest / rest.sum(), values[modes:] / values[modes:].sum(),
                                   rtol=1e-9, atol=1e-14)


def test_spectrum_of_a_consumed_or_sliced_gram_matches_the_copying_path(gen):
    # overwrite on the caller's last reference, a slice of a larger matrix and a float32 matrix
    # (converted) give the spectrum of an untouched copy
    n = 240
    A = torch.randn(n, n, generator=gen("A"), dtype=torch.float64)
    gram, y = A @ A.T / n, torch.randn(n, generator=gen("y"), dtype=torch.float64)
    reference = sampled_spectrum(gram.clone(), {"y": y}, modes=60)
    grams = [gram.clone()]
    consumed = sampled_spectrum(grams.pop(), {"y": y}, modes=60, overwrite=True)
    larger = torch.zeros(n + 17, n + 17, dtype=torch.float64)
    larger[:n, :n] = gram
    sliced = sampled_spectrum(larger[:n, :n], {"y": y}, modes=60)
    for s in (consumed, sliced):
        np.testing.assert_allclose(s.eigenvalues, reference.eigenvalues, rtol=1e-12)
        np.testing.assert_allclose(s.power["y"], reference.power["y"], rtol=1e-9, atol=1e-15)
    torch.testing.assert_close(larger[:n, :n], gram, rtol=0, atol=0)  # a slice is not touched
    single = sampled_spectrum(gram.float(), {"y": y}, modes=60)
    np.testing.assert_allclose(single.eigenvalues[:20], reference.eigenvalues[:20], rtol=1e-5)


def test_legendre_recurrence_matches_gegenbauer():
    t = np.linspace(-1, 1, 41)
    for D in (2, 3, 5, 9):
        for l in (0, 1, 2, 7, 40):
            reference = (np.cos(l * np.arccos(t)) if D == 2 else
                         special.eval_gegenbauer(l, (D - 2) / 2, t)
                         / special.eval_gegenbauer(l, (D - 2) / 2, 1.0))
            np.testing.assert_allclose(legendre(D, l, t), reference, atol=1e-11)


def test_legendre_series_sums_the_gegenbauer_polynomials():
    t = np.random.default_rng(0).uniform(-1, 1, (30, 30))
    weights = np.exp(-np.arange(60) / 9.0)
    weights[3] = 0.0
    for D in (2, 3, 7):
        reference = sum(w * (np.cos(l * np.arccos(t)) if D == 2 else
                             special.eval_gegenbauer(l, (D - 2) / 2, t)
                             / special.eval_gegenbauer(l, (D - 2) / 2, 1.0))
                        for l, w in enumerate(weights))
        np.testing.assert_allclose(legendre_series(D, weights, t), reference, atol=1e-11)
    assert legendre_series(3, [2.5], t).tolist() == np.full(t.shape, 2.5).tolist()


def test_quadratic_kernel_on_gaussian_data_has_eigenvalues_d_plus_2_and_2(gen):
    # (x.x')^2 on N(0, I_d): feature vec(x x^T), second moments E x_i x_j x_k x_l: eigenvalue
    # d + 2 (the direction |x|^2) once and 2 on the other d (d+1)/2 - 1 symmetric directions.
    d, n = 4, 3000
    X = gaussian(gen("quadratic"), n, [1.0] * d)
    s = sampled_spectrum((X @ X.T) ** 2, {})
    rank = d * (d + 1) // 2
    assert s.eigenvalues[0] == pytest.approx(d + 2, rel=0.05)
    assert s.eigenvalues[1:rank].mean() == pytest.approx(2.0, rel=0.03)
    assert s.eigenvalues[rank:].sum() < 1e-9 * s.eigenvalues.sum()


@pytest.mark.parametrize("D", [2, 3, 5])
def test_funk_hecke_recovers_the_addition_theorem(D):
    # k = P_{l,D}(<x, x'>) is sum_m Y_lm(x) Y_lm(x') / N(D, l): eigenvalue 1/N(D, l) on degree l
    for degree in range(6):
        mu, mult = funk_hecke(lambda t, l=degree: legendre(D, l, t), D, 8)
        expected = np.zeros(8)
        expected[degree] = 1 / multiplicity(D, degree)
        np.testing.assert_allclose(mu, expected, atol=1e-12)
        assert mult[degree] == multiplicity(D, degree)


def test_multiplicities_and_trace():
    assert [multiplicity(2, l) for l in range(4)] == [1, 2, 2, 2]
    assert [multiplicity(3, l) for l in range(4)] == [1, 3, 5, 7]
    assert [multiplicity(4, l) for l in range(4)] == [1, 4, 9, 16]
    mu, mult = funk_hecke(np.exp, 4, 30)  # a smooth kernel: sum_l N(D, l) mu_l = k(1)
    assert (mu * mult).sum() == pytest.approx(math.e, rel=1e-10)


def ntk_on_sphere(D):
    def k(t):
        t = torch.as_tensor(t, dtype=torch.float64)
        x2 = torch.stack([t, (1 - t * t).clamp(min=0).sqrt()] + [0 * t] * (D - 2), 1)
        x1 = torch.zeros(1, D, dtype=torch.float64)
        x1[0, 0] = 1.0
        return fc_kernels(x1, x2, depth=3, b_std=0.1).ntk[0].numpy()
    return k


def test_sampled_ntk_spectrum_on_the_sphere_matches_funk_hecke(gen):
    D, n = 3, 3000
    exact = sphere_spectrum(ntk_on_sphere(D), D, 30)
    ranked = np.repeat(exact.eigenvalues, exact.multiplicity.astype(int))
    x = torch.randn(n, D, generator=gen("sphere"))
    x = x / x.norm(dim=1, keepdim=True)
    sampled = sampled_spectrum(fc_kernels(x, depth=3, b_std=0.1).ntk, {})
    # degrees 0, 1, 2 (1 + 3 + 5 modes): each eigenspace's mean within 3%
    start = 0
    for size in exact.multiplicity[:3].astype(int):
        block = slice(start, start + size)
        assert sampled.eigenvalues[block].mean() == pytest.approx(ranked[block].mean(), rel=0.03)
        start += size
    assert exact.modes == sum(multiplicity(D, l) for l in range(30))


def test_tail_recovers_a_power_law_and_keeps_the_powers():
    index = np.arange(1, 4001, dtype=np.float64)
    lam, power = 2.0 * index**-1.7, index**-1.2
    spec = Spectrum(lam, np.ones_like(lam), {"f": power})
    C, alpha = power_law_fit(spec, 100, 1000)
    assert (C, alpha) == (pytest.approx(2.0, rel=1e-9), pytest.approx(1.7, rel=1e-9))
    # the exact trace of the law to mode 1e6 fixes the tail's mass: the tail continues the law
    trace = 2.0 * (np.arange(1, 10**6, dtype=np.float64) ** -1.7).sum()
    tailed = with_tail(spec, keep=1000, fit=(100, 1000), until=1e6, total_power={"f": 3.0},
                       trace=trace)
    assert tailed.modes == pytest.approx(1e6 - 1, rel=1e-9)
    assert tailed.power["f"].sum() == pytest.approx(3.0, rel=1e-12)
    assert (tailed.eigenvalues * tailed.multiplicity).sum() == pytest.approx(trace, rel=1e-9)
    # the trace of modes 1001..4000 as the sampled spectrum's
    head = tailed.multiplicity.cumsum() <= 4000
    tail_trace = (tailed.eigenvalues * tailed.multiplicity)[head][1000:].sum()
    assert tail_trace == pytest.approx(lam[1000:].sum(), rel=0.02)
    small = compress(tailed, keep=100, rtol=0.01)
    assert len(small.eigenvalues) < len(tailed.eigenvalues)
    trace = lambda s: (s.eigenvalues * s.multiplicity).sum()  # noqa: E731
    assert trace(small) == pytest.approx(trace(tailed), rel=1e-12)
    assert small.power["f"].sum() == pytest.approx(3.0, rel=1e-12)
    # binning eigenvalues within 1% moves the learning curves by about as much
    n, ridge = [10, 100, 1000, 10000], [0.0, 1e-4]
    np.testing.assert_allclose(learning_curve(small, n, ridge).test["f"],
                               learning_curve(tailed, n, ridge).test["f"], rtol=0.01)


def test_bad_spectra_are_named():
    with pytest.raises(ConfigError, match="eigenvalues must be finite and > 0"):
        Spectrum(np.array([1.0, -1.0]), np.ones(2))
    with pytest.raises(ConfigError, match="gram must be a square matrix"):
        sampled_spectrum(torch.ones(3, 4), {})
    with pytest.raises(ConfigError, match=r"targets\['f'\] must have shape \(3,\)"):
        sampled_spectrum(torch.eye(3), {"f": torch.ones(4)})
    with pytest.raises(ConfigError, match="shape must be one of power, sample"):
        with_tail(Spectrum(np.ones(10), np.ones(10)), keep=5, fit=(1, 5), until=100, shape="x")


def test_a_slow_tail_carries_the_missing_trace_in_either_shape():
    # i^-0.5 is not trace-class: a power law fitted to it cannot be continued to infinity, but
    # the trace fixes the tail's mass; both shapes carry it and keep the target's power
    lam = np.arange(1, 1001.0) ** -0.5
    spec = Spectrum(lam, np.ones_like(lam), {"f": lam.copy()})
    trace = 1.3 * lam.sum()
    for shape in ("power", "sample"):
        tailed = with_tail(spec, keep=250, fit=(30, 250), until=1e5, trace=trace, shape=shape,
                           total_power={"f": 2.0})
        assert (tailed.eigenvalues * tailed.multiplicity).sum() == pytest.approx(trace,
                                                                                rel=1e-9)
        assert tailed.power["f"].sum() == pytest.approx(2.0, rel=1e-12)
        if shape == "power":  # capped at the last kept eigenvalue
            assert tailed.eigenvalues[250:].max() <= lam[249] * (1 + 1e-12)
        else:  # the sampled modes, scaled to the missing trace
            np.testing.assert_allclose(tailed.eigenvalues[250:] / lam[250:], 0.3 * lam.sum()
                                       / lam[250:].sum() + 1, rtol=1e-12)
        np.testing.assert_array_equal(tailed.eigenvalues[:250], lam[:250])
        curve = learning_curve(tailed, [10, 100, 400], [0.0, 1e-3])
        assert np.isfinite(curve.test["f"]).all() and (curve.test["f"] > 0).all()
    # fewer positive modes than keep (a low-rank kernel): all of them are kept
    low_rank = with_tail(Spectrum(lam[:40], np.ones(40), {"f": lam[:40].copy()}), keep=250,
                         fit=(30, 250), until=1e5, trace=float(lam[:40].sum()))
    np.testing.assert_array_equal(low_rank.eigenvalues, lam[:40])
    # a finite-rank kernel: nothing is missing, no tail
    tailed = with_tail(spec, keep=250, fit=(30, 250), until=1e5,
                       trace=float(lam[:250].sum()))
    assert len(tailed.eigenvalues) == 250
    assert tailed.power["f"].sum() == pytest.approx(lam.sum(), rel=1e-12)


def test_sphere_spectrum_completes_the_trace_quadrature_cannot_resolve():
    # the ReLU NTK on S^19: quadrature resolves degrees to ~1e-12 of the top one, which
    # leaves about 3% of k(1); the continued degrees carry it
    D = 20

    def k(t):
        t = torch.as_tensor(np.atleast_1d(t), dtype=torch.float64)
        x2 = torch.zeros(len(t), D, dtype=torch.float64)
        x2[:, 0], x2[:, 1] = t, (1 - t * t).clamp(min=0).sqrt()
        return fc_kernels(torch.eye(D, dtype=torch.float64)[:1], x2, depth=3,
                          b_std=0.1).ntk[0].numpy()

    trace = float(k(1.0)[0])
    resolved = sphere_spectrum(k, D, 400, points=1600)
    share = (resolved.eigenvalues * resolved.multiplicity).sum() / trace
    assert 0.9 < share < 0.995
    complete = sphere_spectrum(k, D, 400, points=1600, trace=trace)
    assert (complete.eigenvalues * complete.multiplicity).sum() == pytest.approx(trace,
                                                                                rel=1e-9)
    np.testing.assert_allclose(complete.eigenvalues[:5], resolved.eigenvalues[:5], rtol=1e-12)


def test_sphere_target_power_is_the_total_on_each_degree_as_documented(gen):
    # f = P_1 + 2 P_2 on S^2: the power on degree l is a_l^2 / N(D, l), the total over the
    # degree's modes, and the powers sum to E f^2 (Parseval), checked on a large sample
    D = 3
    power = np.zeros(6)
    power[1], power[2] = 1 / multiplicity(D, 1), 4 / multiplicity(D, 2)
    spectrum = sphere_spectrum(lambda t: np.exp(t), D, 6, {"f": power})
    x = torch.randn(200_000, D, generator=gen("parseval-sphere"), dtype=torch.float64)
    t = (x[:, 0] / x.norm(dim=1)).numpy()
    second_moment = float(np.mean((legendre(D, 1, t) + 2 * legendre(D, 2, t)) ** 2))
    assert spectrum.power["f"].sum() == pytest.approx(second_moment, rel=0.01)
    assert second_moment == pytest.approx(1 / 3 + 4 / 5, rel=0.01)
    doc = " ".join(sphere_spectrum.__doc__.split())
    assert "total power on each degree" in doc and "per mode" not in doc
