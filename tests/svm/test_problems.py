"""Att-SVM constraint systems: sequence-to-sequence, causal, degenerate inputs."""

import numpy as np
import pytest

from rfattn.core import ConfigError
from rfattn.svm import constraints, solve_frobenius, token_scores

from .instances import instance


def test_sequence_to_sequence_and_causal_blocks():
    X, _, _, _ = instance(3, 4, 5, 0)
    alpha = np.tile(np.arange(4), (3, 1))  # each query selects itself
    seq = constraints(X, alpha, attention="seq2seq")
    assert seq.n_constraints == 3 * 4 * 3
    causal = constraints(X, alpha, attention="causal")
    assert causal.n_constraints == 3 * (0 + 1 + 2 + 3)
    assert (causal.rows[:, 2] <= causal.rows[:, 1]).all()
    i, k, t = causal.rows[5]
    expected = np.outer(X[i, alpha[i, k]] - X[i, t], X[i, k]).reshape(-1)
    assert np.allclose(causal.A[5], expected)
    assert solve_frobenius(seq).status in ("optimal", "infeasible")


@pytest.mark.parametrize("args, match", [
    ((np.zeros((2, 1, 3)), np.array([0, 0]), np.ones((2, 3))), r"N \(tokens\) must be >= 2"),
    ((np.ones((2, 3, 3)), np.array([0, 0]), np.zeros((2, 3))), "z\\[0\\] is zero"),
    ((np.full((2, 3, 3), np.nan), np.array([0, 0]), np.ones((2, 3))), "NaN or inf"),
    ((np.ones((2, 3, 3)), np.array([0, 0]), np.ones((3, 3))), "z must have shape"),
    ((np.ones((2, 3, 3)), np.array([0, 3]), np.ones((2, 3))),
     "alpha must lie in \\[0, N-1\\] = \\[0, 2\\]"),
    ((np.ones((2, 3, 3)), np.array([0.0, 1.0]), np.ones((2, 3))), "alpha must be integers"),
])
def test_degenerate_inputs_give_clear_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        constraints(*args)


def test_causal_selection_must_be_visible_and_scores_check_shapes():
    X, _, v, Y = instance(2, 3, 4, 0)
    with pytest.raises(ConfigError, match="causal"):
        constraints(X, np.full((2, 3), 2), attention="causal")
    with pytest.raises(ConfigError, match="Y must have shape"):
        token_scores(X, Y[:1], v)
    assert np.allclose(token_scores(X, Y, v), Y[:, None] * (X @ v))
