"""Target normalization: exact (quadrature, closed form) against Monte Carlo."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from rfattn.core import ConfigError
from rfattn.rfa import make_target, sample_tokens
from rfattn.rfa.targets import hermite_e

CASES = [("single_key", 3, 1, "relu"), ("query_key", 6, 2, "relu"), ("query_key", 2, 3, "relu"),
         ("similarity", 5, 1, "relu"), ("similarity", 8, 1, "tanh"), ("two_key", 4, 1, "relu"),
         ("query_key", 1, 1, "relu"), ("single_key", 1, 3, "relu")]


@pytest.mark.parametrize("name,d,degree,function", CASES)
@pytest.mark.parametrize("centred", [False, True])
def test_normalized_targets_have_their_mean_and_unit_variance(gen, name, d, degree, function,
                                                              centred):
    n = 400_000
    t = make_target(name, d, 3, degree=degree, function=function, centred=centred)
    y = t(*sample_tokens(n, 3, d, gen(name, d)))
    # standard errors of the mean and of the variance (with the sample's own kurtosis)
    se_var = float(((y - y.mean()) ** 2).std()) / math.sqrt(n)
    mean = 0.0 if centred else t.mean / t.std  # the paper's target keeps its mean
    assert abs(float(y.mean()) - mean) < 5 / math.sqrt(n)
    assert abs(float(y.var()) - 1) < 5 * se_var


def mean_abs_coordinate(d: int) -> Fraction:
    """E|t| / c for t a coordinate on S^{d-1}, exactly: c = 2/pi for even d, 1 for odd d
    (E|t| = 2/pi at d = 2, 1/2 at d = 3, and times d/(d+1) from d to d + 2)."""
    value = Fraction(1) if d % 2 == 0 else Fraction(1, 2)
    for k in range(2 if d % 2 == 0 else 3, d, 2):
        value *= Fraction(k, k + 1)
    return value


@pytest.mark.parametrize("d", [2, 3, 8, 11, 12, 13, 100, 1500, 2050, 6001])
def test_normalization_is_exact_at_any_dimension(d):
    # ReLU and |.| similarity: E relu(s) = sqrt(d) E|t| / 2, E relu(s)^2 = 1/2, E s^2 = 1
    e_abs = float(mean_abs_coordinate(d)) * (2 / math.pi if d % 2 == 0 else 1.0)
    relu = make_target("similarity", d, 2, function="relu")
    assert relu.mean == pytest.approx(math.sqrt(d) * e_abs / 2, rel=1e-13)
    assert relu.std**2 == pytest.approx((0.5 - d * e_abs**2 / 4) / 2, rel=1e-12)
    absolute = make_target("similarity", d, 2, function="abs")
    assert absolute.std**2 == pytest.approx((1 - d * e_abs**2) / 2, rel=1e-12)
    # Hermite targets: E He_2(s) = d E t^2 - 1 = 0, Var He_2(s) / 2 = (3d/(d+2) - 1) / 2
    qk = make_target("query_key", d, 2, degree=2)
    assert qk.mean == 0.0 and qk.std**2 == pytest.approx((3 * d / (d + 2) - 1) / 4, rel=1e-14)


def test_quadrature_and_rational_moments_agree():
    from rfattn.rfa.targets import _hermite_mean_var, _sphere_mean_var

    for d in (2, 4, 11, 12, 40):
        for p in (1, 2, 3, 6):
            quad = _sphere_mean_var(lambda z: hermite_e(p, z) / math.sqrt(math.factorial(p)), d)
            exact = _hermite_mean_var(p, d)
            assert quad[0] == pytest.approx(exact[0], abs=1e-12)
            assert quad[1] == pytest.approx(exact[1], rel=1e-11)


def test_tanh_similarity_at_large_dimension_against_monte_carlo():
    # a coordinate t of a uniform point on S^{d-1}: t^2 ~ Beta(1/2, (d-1)/2), symmetric sign
    d, n = 1500, 400_000
    rng = np.random.default_rng(1500)
    s = math.sqrt(d) * np.sqrt(rng.beta(0.5, (d - 1) / 2, n)) * rng.choice([-1.0, 1.0], n)
    t = make_target("similarity", d, 1, function="tanh")
    y = torch.tanh(torch.from_numpy(s))
    assert abs(float(y.mean()) - t.mean) < 5 * float(y.std()) / math.sqrt(n)
    se_var = float(((y - y.mean()) ** 2).std()) / math.sqrt(n)
    assert abs(float(y.var()) - t.std**2) < 5 * se_var


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
