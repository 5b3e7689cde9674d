"""Gradient descent on attention: convergence to the SVM direction, closed forms."""

import numpy as np
import pytest

from rfattn.core import ConfigError
from rfattn.svm import constraints, solve_frobenius


def test_gd_direction_converges_to_the_svm_on_a_small_e3_setting():
    import torch

    from rfattn.core import generator
    from rfattn.svm.dynamics import correlation, random_data, saturation, train_attention

    data = random_data(8, 3, 4, 6, generator(0, "test-e3"))
    traj = train_attention(data, 1500, 0.1, "W", record_every=500, generator=generator(0, "init"))
    assert float(saturation(traj.scores).min()) > 0.99
    alpha = traj.scores.argmax(-1).numpy()
    corr = []
    for r in range(8):
        X, z = data.X[r].numpy(), data.z[r].numpy()
        res = solve_frobenius(constraints(X, alpha[r], z))
        assert res.optimal
        corr.append(correlation(traj.W[r], torch.tensor(res.W)[None]).numpy())
    corr = np.array(corr)
    assert corr[:, -1].mean() > 0.98
    assert (corr[:, -1] > corr[:, 1]).mean() >= 0.75  # the correlation grows along the path


def test_dynamics_closed_forms_and_zero_init():
    import torch

    from rfattn.core import generator
    from rfattn.svm.dynamics import correlation, outputs, random_data, train_attention

    data = random_data(2, 3, 4, 5, generator(1, "d"))
    W = torch.zeros(2, 5, 5, dtype=torch.float64)  # uniform softmax: f = v^T mean_t x_t
    assert torch.allclose(outputs(W, data), torch.einsum("rntd,rd->rn", data.X, data.v) / 4)
    A = torch.randn(3, 4, generator=generator(0, "a"), dtype=torch.float64)
    assert float(correlation(A, -2 * A)) == pytest.approx(-1.0)
    traj = train_attention(data, 3, 0.1, "KQ", init="zero", record_every=1, generator=generator(0))
    assert float(traj.W[:, 0].abs().max()) == 0.0 and float(traj.W[:, -1].abs().max()) > 0
    with pytest.raises(ConfigError, match="parameterization"):
        train_attention(data, 3, parameterization="QK", generator=generator(0))
