"""The one-layer transformer: gradients, closed forms, adapters, training."""


import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.lowrank import Parameterization, evaluate, forward, init_weights, train
from rfattn.lowrank.model import METHODS, attention

from .helpers import draw, small_net


def test_gradients_match_finite_differences():
    W, a = small_net()
    X = torch.randn(2, 3, 4, 6, generator=generator(0, "x"), dtype=torch.float64)
    y = torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]], dtype=torch.float64)
    names = list(W)

    def loss(*mats):
        out = forward(dict(zip(names, mats)), a, X)
        return torch.nn.functional.softplus(1 - y * out).mean()  # smooth surrogate of the hinge

    inputs = tuple(W[k].clone().requires_grad_() for k in names)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-7)


def test_forward_closed_form_and_token_permutation_invariance():
    W, a = small_net()
    x = torch.randn(2, 5, 1, 6, generator=generator(1, "x"), dtype=torch.float64)
    # one token: softmax = 1, F = a^T ReLU(W_O W_V x)
    direct = torch.einsum("j,snj->sn", a, torch.relu(
        torch.einsum("sjm,smd,snd->snj", W["o"], W["v"], x[:, :, 0])))
    assert torch.allclose(forward(W, a, x), direct, atol=1e-14)
    X = torch.randn(2, 5, 7, 6, generator=generator(2, "x"), dtype=torch.float64)
    perm = torch.randperm(7, generator=generator(3, "p"))
    assert torch.allclose(forward(W, a, X), forward(W, a, X[:, :, perm]), atol=1e-13)
    assert torch.allclose(attention(W, X).sum(-1), torch.ones(2, 5, 7, dtype=X.dtype))


@pytest.mark.parametrize("method", [m for m in METHODS if m != "full"])
def test_adapters_start_at_w0_and_train_a_rank_r_part(method):
    W, a = small_net(d=8)
    gens = [generator(s, "lora") for s in range(2)]
    p = Parameterization(W, method, 2, generators=gens, sorsa_gamma=0.1)
    for k, w in p.matrices().items():
        assert torch.allclose(w, W[k], atol=1e-13), k
    assert float(p.regularizer().detach()) == pytest.approx(0.0, abs=1e-20)
    X = torch.randn(2, 64, 5, 8, generator=generator(4, "x"), dtype=torch.float64)
    y = torch.where(X[..., 0].sum(-1) > 0, 1, -1)
    train(p, a, X, y, 0.5, 16, 3, [generator(s, "b") for s in range(2)])
    for k, w in p.matrices().items():  # W - W_res = BA or U diag(s) V^T: rank <= r = 2
        trained = (w - getattr(p, f"frozen_{k}")).detach()
        assert (torch.linalg.matrix_rank(trained, rtol=1e-9) <= 2).all(), k
        assert not torch.allclose(w, W[k]), k


def test_adapter_rank_is_validated():
    W, a = small_net(d=8)
    with pytest.raises(ConfigError, match="rank must be <= 4"):
        Parameterization(W, "pissa", 5)
    with pytest.raises(ConfigError, match="method"):
        Parameterization(W, "dora", 2)
    with pytest.raises(ConfigError, match="m must be even"):
        init_weights(4, 4, 4, 7, [generator(0)])


def test_training_lowers_the_loss_and_divergence_is_reported():
    data, P, X, y, _ = draw(n=256)
    W, a = init_weights(16, 16, 16, 16, [generator(0, "w")])
    X, y = X[None], y[None]
    p = Parameterization(W, "full")
    before = evaluate(p.matrices(), a, X, y)[1]
    train(p, a, X, y, 1.0, 32, 20, [generator(0, "b")])
    after = evaluate(p.matrices(), a, X, y)[1]
    assert float(after) < 0.5 * float(before)
    with pytest.raises(FloatingPointError, match="lr"):
        train(Parameterization(W, "full"), a, X * 1e3, y, 1e12, 32, 5, [generator(0, "b")])
