"""One-layer transformer study: data model, network, analyses, adapters, jobs."""

import math
import re

import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.lowrank import (Parameterization, PatternData, effective_rank, evaluate, forward,
                            init_weights, majority_vote, numerical_rank, orthonormal_patterns,
                            prune_mask, run_lowrank_job, sample, span_energy, stable_rank, train,
                            truncate)
from rfattn.lowrank.model import METHODS, attention


def draw(n=4000, seed=0, **kw):
    data = PatternData(**{"d": 16, "M": 12, "L": 20, "K": 2, **kw})
    P = orthonormal_patterns(data.d, data.M, seed)
    return data, P, *sample(data, n, P, generator(seed, "test"))


def test_patterns_are_orthonormal():
    P = orthonormal_patterns(20, 13, seed=3)
    assert torch.allclose(P @ P.T, torch.eye(13, dtype=P.dtype), atol=1e-13)


@pytest.mark.parametrize("mix", ["token", "sample"])
def test_token_shares_labels_and_subtypes(mix):
    data, P, X, y, index = draw(mix=mix, alpha_star=0.3, alpha_conf=0.1)
    n_star, n_conf = data.token_counts
    assert (n_star, n_conf) == (6, 2)
    cls = torch.where(y > 0, 0, 1)[:, None]
    own = (index >= cls * 2) & (index < cls * 2 + 2)
    other = (index >= (1 - cls) * 2) & (index < (1 - cls) * 2 + 2)
    assert (own.sum(1) == n_star).all() and (other.sum(1) == n_conf).all()
    assert ((index >= 4).sum(1) == data.L - n_star - n_conf).all()
    assert torch.equal(majority_vote(index, data.K), y)
    # labels balanced: 4000 fair coin flips, 5 standard deviations
    assert abs(float((y > 0).double().mean()) - 0.5) < 5 * 0.5 / math.sqrt(len(y))
    patterns_per_sample = torch.tensor([torch.unique(row[m]).numel()
                                       for row, m in zip(index[:200], own[:200])])
    if mix == "sample":
        assert (patterns_per_sample == 1).all()
    else:
        assert (patterns_per_sample == 2).float().mean() > 0.9  # 6 tokens over 2 patterns


def test_noise_sizes():
    data, P, X, y, index = draw(tau=0.5, noise="bounded")
    z = X - P[index]
    assert z.norm(dim=-1).max() <= 0.5 + 1e-12
    # uniform in the ball of R^16: E||z||^2 = tau^2 d/(d+2)
    assert float((z**2).sum(-1).mean()) == pytest.approx(0.25 * 16 / 18, rel=0.01)
    data, P, X, y, index = draw(tau=0.5, noise="gaussian")
    assert float(((X - P[index]) ** 2).sum(-1).mean()) == pytest.approx(0.25, rel=0.01)


@pytest.mark.parametrize("kw, name", [
    ({"alpha_star": 0.1, "alpha_conf": 0.1}, "alpha_star"),
    ({"M": 40}, "M"),
    ({"K": 7}, "K"),
    ({"alpha_star": 0.8, "alpha_conf": 0.4}, "alpha_star + alpha_conf"),
    ({"alpha_conf": -0.1}, "alpha_conf"),
    ({"tau": -1.0}, "tau"),
    ({"noise": "uniform"}, "noise"),
    ({"mix": "both"}, "mix"),
    ({"K": 6, "M": 12}, "irrelevant"),
    ({"L": 0}, "L"),
])
def test_data_model_validation_names_the_parameter(kw, name):
    with pytest.raises(ConfigError, match=re.escape(name)):
        PatternData(**{"d": 16, "M": 12, "L": 20, "K": 2, **kw})


def small_net(S=2, d=6, m=8, seed=0, dtype=torch.float64):
    W, a = init_weights(d, 5, 4, m, [generator(seed, "net", s) for s in range(S)], o_std=1.0)
    return {k: w.to(dtype) for k, w in W.items()}, a.to(dtype)


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


def test_rank_metrics_on_known_spectra():
    D = torch.diag(torch.tensor([4.0, 2.0, 0.3, 0.0], dtype=torch.float64))[None]
    assert int(numerical_rank(D, 0.1)) == 2 and int(numerical_rank(D, 0.05)) == 3
    assert float(stable_rank(D)) == pytest.approx((16 + 4 + 0.09) / 16)
    p = torch.tensor([4.0, 2.0, 0.3]) / 6.3
    assert float(effective_rank(D)) == pytest.approx(math.exp(-(p * p.log()).sum()))
    assert int(numerical_rank(torch.zeros(1, 3, 3), 0.1)) == 0
    basis = torch.eye(4, dtype=torch.float64)[:2]
    assert float(span_energy(D, basis)) == pytest.approx((16 + 4) / 20.09)


def test_truncation_is_the_best_rank_r_approximation():
    A = torch.randn(3, 9, 7, generator=generator(0, "A"), dtype=torch.float64)
    s = torch.linalg.svdvals(A)
    for r in (0, 1, 3, 7, 10):
        T = truncate(A, r)
        assert (torch.linalg.matrix_rank(T) <= min(r, 7)).all()
        err = ((A - T) ** 2).sum((-1, -2))
        assert torch.allclose(err, (s[:, r:] ** 2).sum(-1), atol=1e-10)
    assert torch.allclose(truncate(A, 7), A, atol=1e-12)


def test_pruning_masks():
    norms = torch.tensor([[5.0, 1.0, 3.0, 2.0, 0.5, 4.0, 6.0, 0.1]], dtype=torch.float64)
    a = torch.tensor([1, 1, 1, 1, -1, -1, -1, -1], dtype=torch.float64)
    keep = prune_mask(norms, a, 0.5, "small", "sign")
    assert keep.tolist() == [[True, False, True, False, False, True, True, False]]
    keep = prune_mask(norms, a, 0.5, "large", "sign")
    assert keep.tolist() == [[False, True, False, True, True, False, False, True]]
    keep = prune_mask(norms, a, 0.5, "small", "global")
    assert keep.tolist() == [[True, False, True, False, False, True, True, False]]
    keep = prune_mask(norms, a, 0.25, "large", "global")  # drops 6 and 5: one sign each
    assert keep.tolist() == [[False, True, True, True, True, True, False, True]]
    assert prune_mask(norms, a, 0.0, "large", "sign").all()
    gens = lambda: [generator(0, "p")]  # noqa: E731
    r1, r2 = (prune_mask(norms, a, 0.5, "random", "sign", gens()) for _ in range(2))
    assert torch.equal(r1, r2) and int(r1.sum()) == 4 and int(r1[0, :4].sum()) == 2
    with pytest.raises(ConfigError, match="rate"):
        prune_mask(norms, a, 1.5, "small", "sign")
    with pytest.raises(ConfigError, match="order"):
        prune_mask(norms, a, 0.5, "smallest", "sign")


@pytest.mark.parametrize("method", [m for m in METHODS if m != "full"])
def test_adapters_start_at_w0_and_train_a_rank_r_part(method):
    W, a = small_net(d=8)
    gens = [generator(s, "lora") for s in range(2)]
    p = Parameterization(W, method, 2, gens=gens, sorsa_gamma=0.1)
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


TINY = ["d=16", "M=16", "n_train=300", "n_test=400", "m=16", "epochs=6", "probe=64",
        "r_grid=[0,1,2,4]", "prune_rates=[0.0,0.5]", "record_every=20"]


def job(*overrides):
    return run_lowrank_job(job_config(compose("lowrank", [*TINY, *overrides])))


def test_job_is_deterministic_and_seeds_do_not_interact():
    both = job("seeds=[0,1]")
    assert both.equals(job("seeds=[0,1]"))
    alone = job("seeds=[1]")
    one = both[both.seed == 1].reset_index(drop=True)
    assert list(one.analysis) == list(alone.analysis)
    assert torch.allclose(torch.tensor(one.value.values), torch.tensor(alone.value.values),
                          atol=1e-9, rtol=1e-9)
    assert set(both.analysis) == {"history", "final", "rank", "spectrum", "truncation",
                                  "pruning", "row_norms"}
    assert both.value.notna().all()


def test_value_update_is_rank_two_on_the_relevant_span():
    rows = job("seeds=[0]", "K=1", "epochs=15", "n_train=600")
    rank = rows[rows.analysis == "rank"].set_index(["matrix", "metric"]).value
    assert rank[("v", "numerical_rank")] == 2
    assert rank[("v", "relevant_energy")] > 0.9
    final = rows[rows.analysis == "final"].set_index("metric").value
    assert final["test_error"] < 0.05


def test_adapter_job_and_config_errors():
    rows = job("kind=adapter", "method=lora", "r=2", "seeds=[0]")
    assert set(rows.metric) == {"test_error", "test_hinge", "train_error", "train_hinge"}
    assert (rows.method == "lora").all() and (rows.r == 2).all()
    with pytest.raises(ConfigError, match="seeds"):
        job("seeds=[0,0]")
    with pytest.raises(ConfigError, match="r_grid"):
        job("r_grid=[-1]")
    with pytest.raises(ConfigError, match="adapter_lr.lora"):
        job("kind=adapter", "adapter_lr.lora=0")
