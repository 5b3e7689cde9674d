"""NTK lab: analytic against Monte Carlo, methods against each other, closed forms, dynamics."""

import math

import pytest
import torch
from torch import nn

from rfattn.core import ConfigError, generator
from rfattn.ntk import (EmpiricalNTK, FullyConnected, ValueOnlyAttention, empirical_ntk, fc_kernels,
                        gradient_flow, monte_carlo_ntk, random_features)
from rfattn.ntk.study import circle as study_circle
from rfattn.rfa import RandomFeatureAttention, rfa_relu_kernel, sample_tokens


def circle(k):
    return study_circle(k)[1]


def test_jacot_check_value():
    x = torch.tensor([[1.0, 0.0]])
    assert fc_kernels(x, depth=4, b_std=0.1).ntk.item() == pytest.approx(0.2825, abs=5e-5)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_analytic_kernels_symmetric_psd_and_stable_on_equal_inputs(activation):
    x = torch.randn(30, 4, generator=generator(0, "x"))
    x = torch.cat([x, x[:3], x[:3] * (1 + 1e-12)])  # equal and nearly equal inputs
    k = fc_kernels(x, depth=5, activation=activation, w_std=1.3, b_std=0.2)
    for K in (k.nngp, k.ntk):
        assert torch.isfinite(K).all()
        torch.testing.assert_close(K, K.T, rtol=1e-12, atol=1e-12)
        # duplicated rows make K singular; arccos near cos = 1 turns a 1e-16 cosine error into
        # a 1e-8 angle error, which bounds how negative the null eigenvalues can round
        assert torch.linalg.eigvalsh(K).min() > -1e-7 * K.diagonal().max()
    torch.testing.assert_close(k.ntk[:3, :3], k.ntk[30:33, 30:33], rtol=1e-7, atol=1e-9)


def test_quadrature_matches_closed_form_for_erf():
    x = torch.randn(8, 3, generator=generator(0, "x"))
    closed = fc_kernels(x, depth=4, activation="erf")
    errs = []
    for points in (20, 100):
        quad = fc_kernels(x, depth=4, activation=lambda t: torch.erf(t), quadrature_points=points)
        errs.append(float((quad.ntk - closed.ntk).abs().max() / closed.ntk.abs().max()))
        torch.testing.assert_close(quad.nngp, closed.nngp, rtol=10 * errs[-1], atol=1e-12)
    assert errs[1] < 1e-5 and errs[1] < errs[0] / 10, errs


def test_standard_parameterization_relations():
    x = torch.randn(6, 3, generator=generator(0, "x"))
    ntk, sp = fc_kernels(x, depth=3, w_std=1.0, b_std=1.0), fc_kernels(
        x, depth=3, w_std=1.0, b_std=1.0, parameterization="standard")
    torch.testing.assert_close(sp.ntk, ntk.ntk)  # identical at w = b = 1
    a, b = fc_kernels(x, depth=3, w_std=1.7, b_std=0.3), fc_kernels(
        x, depth=3, w_std=1.7, b_std=0.3, parameterization="standard")
    torch.testing.assert_close(a.nngp, b.nngp)  # the NNGP does not depend on it


def test_nngp_against_monte_carlo_over_networks():
    x = torch.randn(4, 3, generator=generator(0, "x"))
    outs = torch.stack([FullyConnected(3, 512, 3, generator=generator(s, "net"), b_std=0.3)(x)[:, 0]
                        for s in range(600)]).detach()
    mc = outs.T @ outs / outs.shape[0]
    exact = fc_kernels(x, depth=3, b_std=0.3).nngp
    # standard error of a second moment of Gaussians ~ sqrt(2/S) * scale; 1/width finite-size bias
    assert ((mc - exact).abs() / exact.diagonal().max()).max() < 0.15


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_empirical_ntk_converges_to_analytic(activation):
    x = torch.randn(5, 3, generator=generator(0, "x"))
    exact = fc_kernels(x, depth=3, activation=activation, b_std=0.2).ntk
    errs = []
    for width in (64, 1024):
        mc, _ = monte_carlo_ntk(lambda s: FullyConnected(3, width, 3, activation=activation,
                                                         b_std=0.2, generator=generator(s, width)),
                                x, samples=4)
        errs.append(float((mc - exact).norm() / exact.norm()))
    assert errs[1] < 0.05 and errs[1] < errs[0] / 2, errs


@pytest.mark.parametrize("mode", ["full", "trace", "diagonal"])
def test_jacobian_contraction_equals_ntk_vector_products(mode):
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x1 = torch.randn(6, 3, generator=generator(0, "a"))
    x2 = torch.randn(4, 3, generator=generator(0, "b"))
    jac = empirical_ntk(model, x1, x2, mode=mode, method="jacobian")
    vp = empirical_ntk(model, x1, x2, mode=mode, method="ntk_vp")
    tiled = EmpiricalNTK(model)(x1, x2, mode=mode, method="jacobian", block_rows=2)
    torch.testing.assert_close(vp, jac, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(tiled, jac, rtol=1e-12, atol=1e-12)


def test_empirical_ntk_symmetric_psd_and_full_trace_consistent():
    model = FullyConnected(2, 32, 3, outputs=2, generator=generator(0, "m"))
    x = torch.randn(9, 2, generator=generator(0, "x"))
    full = EmpiricalNTK(model)(x, mode="full", block_rows=4)
    trace = empirical_ntk(model, x, mode="trace")
    torch.testing.assert_close(full.diagonal(dim1=2, dim2=3).sum(-1), trace)
    torch.testing.assert_close(trace, trace.T)
    assert torch.linalg.eigvalsh(trace).min() > -1e-10 * trace.diagonal().max()


def test_modules_with_buffers_and_batch_coupling():
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1)).double()
    x = torch.randn(5, 3, generator=generator(0, "x"))
    with pytest.raises(ConfigError, match="BatchNorm1d"):
        empirical_ntk(model, x)
    model.eval()
    K = empirical_ntk(model, x, method="jacobian")
    torch.testing.assert_close(K, empirical_ntk(model, x, method="ntk_vp"))


def test_value_only_attention_ntk_is_the_rfa_kernel():
    x0, X = sample_tokens(6, 3, 3, generator(0, "tok"))
    tokens = torch.cat([x0[:, None], X], 1)
    small = RandomFeatureAttention.sample(20, 3, generator(0, "W"))
    phi = small.features(x0, X)
    torch.testing.assert_close(empirical_ntk(ValueOnlyAttention(small), tokens), phi @ phi.T)
    wide = RandomFeatureAttention.sample(40_000, 3, generator(1, "W"))
    K = empirical_ntk(ValueOnlyAttention(wide), tokens)
    exact = rfa_relu_kernel(x0, X)
    assert float((K - exact).norm() / exact.norm()) < 0.03


def test_gradient_flow_matches_training_a_wide_network():
    width, steps, lr = 4096, 400, 0.5
    net = FullyConnected(2, width, 2, generator=generator(0, "net"))
    x, xt = circle(9)[1::2], circle(13)
    y = (x[:, 0] * x[:, 1] * 4)[:, None]
    ntk = EmpiricalNTK(net)
    K, Kt = ntk(x), ntk(xt, x)
    with torch.no_grad():
        f0, f0t = net(x)[:, 0].clone(), net(xt)[:, 0].clone()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((net(x) - y) ** 2).mean()).backward()
        opt.step()
    pred = gradient_flow(K, Kt, y[:, 0], [steps * lr], f0_train=f0, f0_eval=f0t).mean[:, 0]
    with torch.no_grad():
        trained = net(xt)[:, 0]
    assert float((trained - pred).abs().max()) < 0.03 * float(y.abs().max())


def test_gradient_flow_limits():
    x = torch.randn(6, 2, generator=generator(0, "x"))
    xt = torch.randn(4, 2, generator=generator(0, "xt"))
    y = torch.randn(6, generator=generator(0, "y"))
    k, kt = fc_kernels(x, depth=3), fc_kernels(xt, x, depth=3)
    kd = fc_kernels(xt, depth=3).nngp.diagonal()
    pred = gradient_flow(k.ntk, kt.ntk, y, [0.0, math.inf], k.nngp, kt.nngp, kd)
    torch.testing.assert_close(pred.mean[:, 0], torch.zeros(4))
    torch.testing.assert_close(pred.variance[:, 0], kd)  # at t = 0: the prior
    torch.testing.assert_close(pred.mean[:, 1], kt.ntk @ torch.linalg.solve(k.ntk, y))
    on_train = gradient_flow(k.ntk, k.ntk, y, [math.inf], k.nngp, k.nngp, k.nngp.diagonal())
    torch.testing.assert_close(on_train.mean[:, 0], y)
    assert on_train.variance.max() < 1e-8  # the Gaussian term vanishes on the training set


@pytest.mark.parametrize("fn", random_features.FUNCTIONS)
def test_random_features_unbiased_with_mse_like_one_over_m(fn):
    x = torch.randn(4, 3, generator=generator(0, "x")) * 0.5
    w = torch.randn(3, 3, generator=generator(0, "w")) * 0.5
    b = torch.randn(3, generator=generator(0, "b")) * 0.3
    exact = random_features.exact(fn, x, w, b)
    mse = []
    for m in (200, 3200):
        est = torch.stack([random_features.estimate(fn, x, w, b, m, generator(s, fn, m))
                           for s in range(60)])
        mse.append(float(((est - exact) ** 2).mean()))
        stderr = est.std(0) / math.sqrt(est.shape[0])
        assert ((est.mean(0) - exact).abs() < 5 * stderr + 1e-12).all()
    slope = math.log(mse[1] / mse[0]) / math.log(16)
    assert -1.35 < slope < -0.65, slope


@pytest.mark.parametrize("kwargs,param", [
    (dict(depth=0), "depth"), (dict(w_std=-1.0), "w_std"), (dict(b_std=-0.1), "b_std"),
    (dict(activation="swish"), "activation"), (dict(parameterization="mup"),
                                               "parameterization")])
def test_invalid_arguments_are_named(kwargs, param):
    with pytest.raises(ConfigError, match=param):
        fc_kernels(torch.ones(2, 3), **kwargs)


def test_mismatched_input_widths_are_named():
    with pytest.raises(ConfigError, match="input width"):
        fc_kernels(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(ConfigError, match="per-example shape"):
        empirical_ntk(nn.Linear(3, 1).double(), torch.ones(2, 3), torch.ones(2, 4))


def test_linearized_networks_approach_the_limiting_gaussian():
    """Networks linearized at their init and run to t = inf (Jacot Fig 2's setting): over 40
    networks the mean matches the analytic mean, and the excess of their spread over the
    NNGP-based standard deviation shrinks as the width grows."""
    ang = torch.tensor([-3, -1, 1, 3]) * math.pi / 4
    x = torch.stack([ang.cos(), ang.sin()], 1)
    y = 2 * x[:, 0] * x[:, 1]
    xc = circle(13)
    k, kc = fc_kernels(x, depth=4), fc_kernels(xc, x, depth=4)
    kd = fc_kernels(xc, depth=4).nngp.diagonal()
    limit = gradient_flow(k.ntk, kc.ntk, y, [math.inf], k.nngp, kc.nngp, kd)
    std = limit.variance[:, 0].sqrt()
    excess = []
    for width in (64, 1000):
        preds = []
        for s in range(40):
            net = FullyConnected(2, width, 4, generator=generator(s, "lin", width))
            ntk = EmpiricalNTK(net)
            with torch.no_grad():
                f0, f0c = net(x)[:, 0], net(xc)[:, 0]
            preds.append(gradient_flow(ntk(x), ntk(xc, x), y, [math.inf], f0_train=f0,
                                       f0_eval=f0c).mean[:, 0])
        preds = torch.stack(preds)
        excess.append(float((preds.std(0) / std - 1).abs().mean()))
    # at width 1000 the mean is within 3 standard errors (plus a finite-width 0.02)
    assert ((preds.mean(0) - limit.mean[:, 0]).abs() <= 3 * std / math.sqrt(40) + 0.02).all()
    assert excess[1] < excess[0] / 1.5, excess


def scalar_relu_kernels(x1, x2, depth, w_std, b_std):
    """Jacot's ReLU recursion for one pair in Python floats (math.acos), as a reference.

    Equal inputs take the closed form (angle 0 at every layer: Sigma -> w^2 Sigma / 2 + b^2,
    Theta -> w^2 Theta / 2 + Sigma); other pairs the recursion, with the cosine formed so that
    opposite inputs give exactly -1.
    """
    n0 = len(x1)
    k11 = w_std**2 * sum(a * a for a in x1) / n0 + b_std**2
    k22 = w_std**2 * sum(a * a for a in x2) / n0 + b_std**2
    k12 = w_std**2 * sum(a * b for a, b in zip(x1, x2)) / n0 + b_std**2
    ntk = k12
    for _ in range(depth - 1):
        if x1 == x2:
            k12 = w_std**2 * k12 / 2 + b_std**2
            ntk = ntk * w_std**2 / 2 + k12
            continue
        norm = k11 if k11 == k22 else math.sqrt(k11 * k22)
        cos = max(-1.0, min(1.0, k12 / norm))
        theta = math.acos(cos)
        ee = norm * (math.sin(theta) + (math.pi - theta) * cos) / (2 * math.pi)
        dd = (math.pi - theta) / (2 * math.pi)
        k12 = w_std**2 * ee + b_std**2
        ntk = ntk * w_std**2 * dd + k12
        k11, k22 = w_std**2 * k11 / 2 + b_std**2, w_std**2 * k22 / 2 + b_std**2
    return k12, ntk


@pytest.mark.parametrize("depth", [2, 4, 8])
def test_relu_kernels_are_exact_at_equal_and_opposite_inputs(depth):
    # a cosine one ulp off +-1 once became 1.5e-8 off in the angle (1.7e-8 in Theta at depth 8)
    x = torch.randn(6, 5, generator=generator(depth, "exact"), dtype=torch.float64)
    for other, b_std in ((x, 0.1), (-x, 0.0), (-x, 0.1)):
        k = fc_kernels(x, other, depth=depth, b_std=b_std)
        for i in range(len(x)):
            nngp, ntk = scalar_relu_kernels(x[i].tolist(), other[i].tolist(), depth, 1.0, b_std)
            assert float(k.nngp[i, i]) == pytest.approx(nngp, rel=1e-13, abs=1e-15)
            assert float(k.ntk[i, i]) == pytest.approx(ntk, rel=1e-13, abs=1e-15)
