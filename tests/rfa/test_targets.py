"""Target normalization: exact (quadrature, closed form) against Monte Carlo."""

import math

import pytest
import torch

from rfattn.core import ConfigError
from rfattn.rfa import make_target, sample_tokens
from rfattn.rfa.targets import hermite_e

CASES = [("single_key", 3, 1, "relu"), ("query_key", 6, 2, "relu"), ("query_key", 2, 3, "relu"),
         ("similarity", 5, 1, "relu"), ("similarity", 8, 1, "tanh"), ("two_key", 4, 1, "relu"),
         ("query_key", 1, 1, "relu"), ("single_key", 1, 3, "relu")]


@pytest.mark.parametrize("name,d,degree,function", CASES)
def test_normalized_targets_have_zero_mean_unit_variance(gen, name, d, degree, function):
    n = 400_000
    t = make_target(name, d, 3, degree=degree, function=function)
    y = t(*sample_tokens(n, 3, d, gen(name, d)))
    # standard errors of the mean and of the variance (with the sample's own kurtosis)
    se_var = float(((y - y.mean()) ** 2).std()) / math.sqrt(n)
    assert abs(float(y.mean())) < 5 / math.sqrt(n)
    assert abs(float(y.var()) - 1) < 5 * se_var


def test_two_key_closed_form():
    t = make_target("two_key", d=6, N=5)
    assert t.mean == pytest.approx(1 / 5)
    assert t.std**2 == pytest.approx(2 * 4 / (125 * 6))


def test_gaussian_tokens_normalize_by_monte_carlo(gen):
    t = make_target("query_key", 4, 3, degree=2, tokens="gaussian")
    y = t(*sample_tokens(200_000, 3, 4, gen("g"), distribution="gaussian"))
    assert abs(float(y.mean())) < 0.02 and abs(float(y.var()) - 1) < 0.03


def test_hermite_orthonormality_under_gaussian(gen):
    z = torch.randn(2_000_000, generator=gen("z"))
    for p, q in [(2, 2), (3, 3), (2, 3), (1, 3)]:
        inner = float((hermite_e(p, z) * hermite_e(q, z)).mean())
        expected = math.factorial(p) if p == q else 0.0
        assert inner == pytest.approx(expected, abs=0.03 * math.factorial(max(p, q)))


@pytest.mark.parametrize("kwargs,param", [
    (dict(name="cubic"), "target"), (dict(name="query_key", degree=0), "degree"),
    (dict(name="query_key", degree=40), "degree"), (dict(name="similarity", function="gelu"),
                                                    "function"),
    (dict(name="two_key", N=1), "N"), (dict(name="query_key", d=0), "d"),
    (dict(name="query_key", tokens="cube"), "tokens"),
    (dict(name="query_key", d=1, degree=2), "constant")])
def test_bad_targets_are_named(kwargs, param):
    args = dict(d=4, N=3) | kwargs
    with pytest.raises(ConfigError, match=param):
        make_target(**args)
