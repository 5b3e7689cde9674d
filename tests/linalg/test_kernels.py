"""Gram matrices built by blocks against the plain product; the rectified Gaussian moment
against the truncated bivariate normal's moments and closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from rfattn.linalg import add_gram_, gram_matrix
from rfattn.linalg.kernels import arccos_angular_, rectified_gaussian_moment


@pytest.mark.parametrize("blocks", [1, 4, 7])
def test_gram_blocks_in_place_equal_the_plain_product(gen, blocks):
    phi = torch.randn(53, 11, generator=gen("phi"), dtype=torch.float64)
    start = torch.randn(53, 53, generator=gen("start"), dtype=torch.float64)
    out = start.clone()
    assert add_gram_(out, phi, alpha=0.3, blocks=blocks) is out
    torch.testing.assert_close(out, start + 0.3 * phi @ phi.T, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(gram_matrix(phi, blocks=blocks), phi @ phi.T, rtol=1e-13,
                               atol=1e-13)


def test_gram_in_place_names_a_wrong_shape(gen):
    with pytest.raises(ValueError, match=r"out must have shape \(5, 5\)"):
        add_gram_(torch.zeros(4, 4), torch.ones(5, 2))


def rosenbaum_moment(a, b, rho):
    """E[(a+X)^+ (b+Y)^+] from the moments of the truncated bivariate normal (Rosenbaum 1961),
    with scipy's bivariate normal CDF: an independent reference."""
    h, k, s, n = -a, -b, math.sqrt(1 - rho * rho), stats.norm
    mass = stats.multivariate_normal.cdf([a, b], mean=[0, 0], cov=[[1, rho], [rho, 1]],
                                         abseps=1e-13, releps=1e-13)
    tail_h, tail_k = n.sf((k - rho * h) / s), n.sf((h - rho * k) / s)
    ex = n.pdf(h) * tail_h + rho * n.pdf(k) * tail_k
    ey = n.pdf(k) * tail_k + rho * n.pdf(h) * tail_h
    exy = (rho * mass + rho * h * n.pdf(h) * tail_h + rho * k * n.pdf(k) * tail_k
           + s / math.sqrt(2 * math.pi) * n.pdf(math.sqrt((h * h - 2 * rho * h * k + k * k)
                                                          / (1 - rho * rho))))
    return a * b * mass + a * ey + b * ex + exy


def test_rectified_gaussian_moment_against_truncated_normal_moments():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-3, 3, (2, 40))
    rho = rng.uniform(-0.95, 0.95, 40)
    mine = rectified_gaussian_moment(*(torch.tensor(v) for v in (a, b, rho)))
    reference = [rosenbaum_moment(*v) for v in zip(a, b, rho)]
    np.testing.assert_allclose(mine.numpy(), reference, rtol=1e-6, atol=1e-8)


def test_rectified_gaussian_moment_closed_forms():
    rho = torch.linspace(-1, 1, 21, dtype=torch.float64)
    zero = torch.zeros_like(rho)
    j1, _ = arccos_angular_(rho.clone())  # zero means: the arc-cosine kernel
    torch.testing.assert_close(rectified_gaussian_moment(zero, zero, rho), j1 / (2 * math.pi),
                               rtol=0, atol=1e-14)
    a = torch.linspace(-3, 3, 13, dtype=torch.float64)
    cdf, pdf = torch.special.ndtr(a), torch.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    same = rectified_gaussian_moment(a, a, torch.ones_like(a))  # E[((a+X)^+)^2]
    torch.testing.assert_close(same, (a * a + 1) * cdf + a * pdf, rtol=0, atol=1e-8)
    mean = a * cdf + pdf  # independent: the product of rectified means
    torch.testing.assert_close(rectified_gaussian_moment(a, a.flip(0), torch.zeros_like(a)),
                               mean * mean.flip(0), rtol=1e-14, atol=1e-15)
