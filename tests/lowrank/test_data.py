"""The pattern data model: orthonormal patterns, token shares, labels, noise, validation."""

import math
import re

import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.lowrank import PatternData, orthonormal_patterns
from rfattn.lowrank.data import majority_vote

from .helpers import BASE, draw


def test_patterns_are_orthonormal():
    P = orthonormal_patterns(20, 13, generator(3, "patterns"))
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
    assert ((index >= 4).sum(1) == data.N - n_star - n_conf).all()
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
    ({"patterns": 40}, "patterns"),
    ({"K": 7}, "K"),
    ({"alpha_star": 0.8, "alpha_conf": 0.4}, "alpha_star + alpha_conf"),
    ({"alpha_conf": -0.1}, "alpha_conf"),
    ({"tau": -1.0}, "tau"),
    ({"noise": "uniform"}, "noise"),
    ({"mix": "both"}, "mix"),
    ({"K": 6, "patterns": 12}, "irrelevant"),
    ({"N": 0}, "N"),
])
def test_data_model_validation_names_the_parameter(kw, name):
    with pytest.raises(ConfigError, match=re.escape(name)):
        PatternData(**{**BASE, **kw})


def test_sampling_does_not_depend_on_torch_default_dtype():
    old = torch.get_default_dtype()
    try:
        draws = []
        for dtype in (torch.float32, torch.float64):
            torch.set_default_dtype(dtype)
            draws.append(draw(n=64, seed=3))
    finally:
        torch.set_default_dtype(old)
    for a, b in zip(draws[0][2:], draws[1][2:]):
        assert torch.equal(a, b)

