"""SNNK adapters in the one-layer transformer: start at W(0), estimate the arc-cosine kernel,
count their parameters, train only themselves."""

import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.linalg import relu_arccos_kernel
from rfattn.lowrank import evaluate, forward, train
from rfattn.lowrank.snnk_adapters import ADAPTER_INIT_STD, SNNKAdapters, adapt
from rfattn.lowrank.study import STUDY

from .helpers import small_net


def test_adapters_start_at_w0_and_count_their_parameters():
    W, a = small_net(d=8)  # two seeds
    adapters = SNNKAdapters(W, 3, [generator(s, "snnk") for s in range(2)])
    X = torch.randn(2, 16, 5, 8, generator=generator(4, "x"), dtype=torch.float64)
    assert torch.equal(forward(adapters.matrices(), a, X), forward(W, a, X))  # u = 0
    m_a, m = W["o"].shape[-1], W["o"].shape[-2]
    per_seed = sum(p.numel() for p in adapters.parameters()) // 2
    assert per_seed == (m_a + m) * (3 + 1)


def test_the_adapter_is_an_snnk_of_the_arc_cosine_kernel():
    """Psi phi(h) with Psi = ReLU(W_down G^T)/sqrt(p) estimates E_g[ReLU(g.h) ReLU(g.w_k)]
    for the rows w_k of W_down: within 3 standard errors at p = 20000."""
    width, p = 6, 20000
    G = torch.randn(1, p, width, generator=generator(0, "G"), dtype=torch.float64)
    down = ADAPTER_INIT_STD * torch.randn(width, width, generator=generator(1, "down"),
                                          dtype=torch.float64)
    psi = torch.relu(down @ G[0].T)[None] / p ** 0.5
    h = torch.randn(1, 1, 3, width, generator=generator(2, "h"), dtype=torch.float64)
    up = torch.ones(1, width, dtype=torch.float64)
    estimate = adapt(h, (G, psi, up)) - h
    exact = relu_arccos_kernel(h[0, 0] @ down.T, (h[0, 0] ** 2).sum(1, keepdim=True)
                               * (down ** 2).sum(1)[None])
    per_feature = torch.relu(h[0, 0] @ G[0].T)[:, None, :] * torch.relu(down @ G[0].T)[None]
    stderr = per_feature.std(-1) / p ** 0.5
    z = (estimate[0, 0] - exact) / stderr
    assert z.abs().max() < 3.5 and exact.abs().min() > 0


def test_training_moves_only_the_adapters_and_lowers_the_loss():
    W, a = small_net(d=8)
    adapters = SNNKAdapters(W, 4, [generator(s, "snnk") for s in range(2)])
    X = torch.randn(2, 64, 5, 8, generator=generator(4, "x"), dtype=torch.float64)
    y = torch.where(X[..., 0].sum(-1) > 0, 1, -1)
    before = evaluate(adapters.matrices(), a, X, y)[1]
    train(adapters, a, X, y, 5.0, 16, 10, [generator(s, "b") for s in range(2)])
    after = evaluate(adapters.matrices(), a, X, y)[1]
    assert (after < before).all()
    for k in ("q", "k", "v", "o"):
        assert torch.equal(adapters.matrices()[k], W[k])
    assert adapters.up["hidden"].abs().sum() > 0


def test_snnk_adapter_features_are_validated():
    cfg = job_config(compose("lowrank", ["kind=adapter", "method=snnk", "r=5000"]))
    with pytest.raises(ConfigError, match=r"r must lie in \[1, 4096\] for method snnk"):
        STUDY.validate(cfg)
    with pytest.raises(ConfigError, match="features"):
        SNNKAdapters(small_net(d=8)[0], 0, [generator(0), generator(1)])
