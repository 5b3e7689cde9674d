"""Update spectra, ranks, truncation and pruning against known closed forms."""

import math

import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.lowrank import (effective_rank, numerical_rank, prune_mask, span_energy, stable_rank,
                            truncate)


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
