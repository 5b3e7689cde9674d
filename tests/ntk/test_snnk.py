"""SNNK layers: unbiased estimates of the dense layer with error ~ 1/m, the GERF variant's
lower error, the shared Gaussian as a buffer, bad settings named; the bundled network against
its layers, against the exact network as m grows, and its closed form against L-BFGS."""

import math

import numpy as np
import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.ntk.snnk import (SNNK_FEATURES, BundledSNNK, SNNKLayer, exact_layer, gerf_mu,
                             normalize_rows)


def dense(gen, l=5, d=6):
    W = torch.randn(l, d, generator=gen("W"), dtype=torch.float64)
    b = 0.3 * torch.randn(l, generator=gen("b"), dtype=torch.float64)
    x = torch.randn(40, d, generator=gen("x"), dtype=torch.float64)
    return x, W, b


def draws(kind, x, W, b, m, count, seed_name, **settings):
    with torch.no_grad():
        return torch.stack([SNNKLayer(W, b, m, kind, generator(0, seed_name, kind, m, r),
                                      **settings)(x) for r in range(count)])


@pytest.mark.parametrize("kind", SNNK_FEATURES)
def test_layer_is_unbiased_and_its_error_falls_like_one_over_m(gen, kind):
    x, W, b = dense(gen)
    exact = exact_layer(kind, normalize_rows(x), normalize_rows(W), b)
    big = draws(kind, x, W, b, 256, 200, "unbiased")
    z = (big.mean(0) - exact) / (big.std(0) / math.sqrt(len(big)))
    assert z.abs().max() < 5.0, float(z.abs().max())
    # the rate, without normalization at norms 1/2 (at unit norms the exponential features'
    # log-normal tails bias a 200-draw mean squared error low at small m)
    x, W = 0.5 * normalize_rows(x), 0.5 * normalize_rows(W)
    exact = exact_layer(kind, x, W, b)
    ms = [16, 64, 256]
    mse = [float(((draws(kind, x, W, b, m, 200, "rate", normalize="none", gerf_sq_norm=0.5)
                   - exact) ** 2).mean()) for m in ms]
    slope = np.polyfit(np.log(ms), np.log(mse), 1)[0]
    assert -1.15 < slope < -0.85, (kind, slope, mse)


def test_gerf_has_a_lower_error_than_positive_features_at_equal_m(gen):
    x, W, b = dense(gen)
    exact = exact_layer("exp", normalize_rows(x), normalize_rows(W), b)
    mse = {kind: float(((draws(kind, x, W, b, 64, 60, "gerf") - exact) ** 2).mean())
           for kind in ("exp", "gerf")}
    assert mse["gerf"] < 0.8 * mse["exp"], mse


def test_gerf_mu_minimizes_the_second_moment():
    # d log(1+4mu) - d/2 log(1+8mu) + 2 s^2 (1+4mu)/(1+8mu), on a grid of mu
    d, s2 = 6, 2.0
    mus = np.linspace(-0.1, 2.0, 20001)
    log_moment = (d * np.log1p(4 * mus) - d / 2 * np.log1p(8 * mus)
                  + 2 * s2 * (1 + 4 * mus) / (1 + 8 * mus))
    assert gerf_mu(d, s2) == pytest.approx(mus[np.argmin(log_moment)], abs=2e-4)
    assert gerf_mu(d, 0.0) == 0.0


def test_shared_gaussian_is_a_buffer_saved_and_moved(gen):
    x, W, b = dense(gen)
    layer = SNNKLayer(W, b, 32, "cos", generator(0, "buffer"))
    assert set(layer.state_dict()) == {"G", "M"}
    assert [name for name, _ in layer.named_parameters()] == ["M"]
    other = SNNKLayer(W, b, 32, "cos", generator(1, "buffer"))
    assert not torch.equal(other(x), layer(x))
    other.load_state_dict(layer.state_dict())
    torch.testing.assert_close(other(x), layer(x), rtol=0, atol=0)
    single = layer.to(torch.float32)
    assert single.G.dtype == torch.float32 and single.M.dtype == torch.float32


def test_relu_snnk_is_the_arc_cosine_kernel_not_relu(gen):
    x, W, b = dense(gen)
    xn, Wn = normalize_rows(x), normalize_rows(W)
    kernel = exact_layer("relu", xn, Wn, b)
    torch.testing.assert_close(kernel, (torch.sqrt(1 - (xn @ Wn.T).clamp(-1, 1) ** 2)
                                        + (math.pi - torch.arccos((xn @ Wn.T).clamp(-1, 1)))
                                        * (xn @ Wn.T)) / (2 * math.pi), rtol=1e-12, atol=1e-12)
    assert (kernel - torch.relu(xn @ Wn.T)).abs().max() > 0.1


@pytest.mark.parametrize("kwargs, message", [
    ({"m": 0}, "m must be"), ({"kind": "softplus"}, "kind must be one of"),
    ({"normalize": "l1"}, "normalize must be one of"),
    ({"kind": "gerf", "normalize": "none"}, "gerf_sq_norm is required")])
def test_bad_snnk_settings_are_named(gen, kwargs, message):
    x, W, b = dense(gen)
    settings = {"m": 8, "kind": "exp", "normalize": "unit", **kwargs}
    with pytest.raises(ConfigError, match=message):
        SNNKLayer(W, b, generator=generator(0, "bad"), **settings)


@pytest.mark.parametrize("kind", ["cos", "relu", "gerf"])
def test_one_layer_bundle_is_the_readout_of_the_snnk_layer(gen, kind):
    x, W, b = dense(gen)
    readout, bias = torch.randn(3, 5, generator=gen("out"), dtype=torch.float64), torch.ones(3)
    layer = SNNKLayer(W, b, 32, kind, generator(0, "bundle"))
    net = BundledSNNK.from_mlp([W], [b], readout, bias.double(), [32], [kind],
                               generator(0, "bundle"))
    with torch.no_grad():
        torch.testing.assert_close(net(x), layer(x) @ readout.T + 1, rtol=1e-12, atol=1e-12)


def test_two_layer_bundle_approaches_the_network_as_m_grows(gen):
    # y = W3 cos(W2 cos(W1 x + b1) + b2): the bundled estimate converges as the features grow
    d, h1, h2 = 4, 6, 5
    x = 0.5 * normalize_rows(torch.randn(30, d, generator=gen("x2"), dtype=torch.float64))
    W1 = 0.3 * torch.randn(h1, d, generator=gen("W1"), dtype=torch.float64)
    W2 = 0.3 * torch.randn(h2, h1, generator=gen("W2"), dtype=torch.float64)
    W3 = torch.randn(2, h2, generator=gen("W3"), dtype=torch.float64)
    b1, b2, b3 = (0.1 * torch.ones(k, dtype=torch.float64) for k in (h1, h2, 2))
    exact = torch.cos(torch.cos(x @ W1.T + b1) @ W2.T + b2) @ W3.T + b3
    errors = {}
    for m in (16, 128, 1024):
        with torch.no_grad():
            out = torch.stack([BundledSNNK.from_mlp([W1, W2], [b1, b2], W3, b3, [m, m],
                                                    ["cos", "cos"], generator(0, "two", m, r),
                                                    normalize="none")(x) for r in range(20)])
        errors[m] = float(((out - exact) ** 2).mean())
    assert errors[1024] < errors[128] / 4 < errors[16] / 16, errors  # 1/m: factors of 8


def test_closed_form_fit_matches_lbfgs_on_the_same_objective(gen):
    x = torch.randn(80, 5, generator=gen("fx"), dtype=torch.float64)
    Y = torch.stack([torch.sin(x[:, 0]), x[:, 1] * x[:, 2]], 1)
    lam = 1e-2
    net = BundledSNNK(5, 2, [24], ["cos"], generator(0, "fit")).fit(x, Y, lam)
    phi = net.features(x).detach()
    M = torch.zeros_like(net.M, requires_grad=True)
    c = torch.zeros_like(net.c, requires_grad=True)
    opt = torch.optim.LBFGS([M, c], lr=1, max_iter=500, tolerance_grad=1e-12,
                            tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")

    def objective():
        return ((Y - phi @ M.T - c) ** 2).sum() / len(x) + lam * (M ** 2).sum()

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    torch.testing.assert_close(net.M.detach(), M.detach(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(net.c.detach(), c.detach(), rtol=1e-5, atol=1e-7)
    wide = BundledSNNK(5, 2, [60], ["cos"], generator(0, "fit"))  # p = 120 > n: dual form
    primal_weights = wide.features(x).detach()
    dual = wide.fit(x, Y, lam).M.detach()
    centred = primal_weights - primal_weights.mean(0)
    reference = torch.linalg.solve(centred.T @ centred / 80 + lam * torch.eye(120),
                                   centred.T @ (Y - Y.mean(0)) / 80).T
    torch.testing.assert_close(dual, reference, rtol=1e-8, atol=1e-10)


def test_inputs_that_would_explode_the_variance_are_refused_with_the_estimate(gen):
    x, W, b = dense(gen)
    W = normalize_rows(W)
    layer = SNNKLayer(W, b, 64, "cos", generator(0, "norms"), normalize="none")
    layer(0.5 * normalize_rows(x))  # (0.5 + 1)^2 = 2.25 < log 64
    with pytest.raises(ConfigError, match=r"x: inputs of norm up to 3 .* relative variance up "
                                          r"to e\^16/m"):
        layer(3 * normalize_rows(x))
    SNNKLayer(W, b, 64, "relu", generator(0, "norms"), normalize="none")(3 * x)  # bounded


def test_series_coefficients_and_their_polynomial():
    from rfattn.ntk.snnk_features import maclaurin_coefficients, series_polynomial

    tanh = maclaurin_coefficients("tanh")
    assert tanh[:8] == pytest.approx([0, 1, 0, -1 / 3, 0, 2 / 15, 0, -17 / 315], abs=1e-15)
    gelu = maclaurin_coefficients("gelu")
    root = math.sqrt(2 * math.pi)
    assert gelu[:7] == pytest.approx([0, 0.5, 1 / root, 0, -1 / (6 * root), 0,
                                      1 / (40 * root)], abs=1e-15)
    z = torch.linspace(-1, 1, 41, dtype=torch.float64)
    assert (series_polynomial("tanh", z) - torch.tanh(z)).abs().max() < 3e-3
    assert (series_polynomial("gelu", z) - torch.nn.functional.gelu(z)).abs().max() < 1e-5


def test_series_degrees_are_drawn_in_proportion_to_the_coefficients():
    from rfattn.ntk.snnk_features import SERIES_DEGREE, draw_tower, maclaurin_coefficients

    G = draw_tower("tanh", 20000, 3, generator(0, "degrees"))
    assert G.shape == (20000, SERIES_DEGREE, 5)
    degrees = (G[..., -1] == 0).sum(-1)
    a = np.abs(maclaurin_coefficients("tanh"))
    expected = a / a.sum()
    counts = torch.bincount(degrees, minlength=len(a)).double().numpy() / 20000
    assert (np.abs(counts - expected) <= 4 * np.sqrt(expected / 20000) + 1e-12).all()
    used = G[..., :-1][degrees[:, None] > torch.arange(SERIES_DEGREE)[None, :]]
    assert float(used.std()) == pytest.approx(1.0, abs=0.02)  # Gaussian projections


def test_tanh_inputs_beyond_the_series_radius_are_refused(gen):
    x, W, b = dense(gen)
    layer = SNNKLayer(normalize_rows(W), 0 * b, 64, "tanh", generator(0, "radius"),
                      normalize="none")
    layer(0.5 * normalize_rows(x))  # |(x, 1)| |(w, 0)| = 1.118 < pi/2
    with pytest.raises(ConfigError, match=r"x: .* beyond tanh's series radius pi/2"):
        layer(2 * normalize_rows(x))
