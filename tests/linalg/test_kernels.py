"""Gram matrices built by blocks against the plain product."""

import pytest
import torch

from rfattn.linalg import add_gram_, gram_matrix


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
