"""Token selection: multi-token SVM-equivalence, global / local / neither."""

import numpy as np

from rfattn.svm import optimal_selection, token_scores

from .instances import instance


def test_multi_token_equivalence_meets_its_constraints():
    from rfattn.svm.selection import multi_token_svm

    X, z, _, _ = instance(3, 4, 8, 5)
    scores = np.array([[0.6, 0.4, 1e-8, 1e-9], [1.0 - 2e-8, 1e-8, 1e-8, 0.0],
                       [0.3, 0.3, 0.4 - 1e-8, 1e-8]])
    eq = multi_token_svm(X, z, scores)
    assert [o.tolist() for o in eq.selected] == [[0, 1], [0], [0, 1, 2]]
    assert eq.W_dir.optimal
    for i, O in enumerate(eq.selected):
        s_dir = X[i] @ eq.W_dir.W @ z[i]
        s_fin = X[i] @ eq.W_fin @ z[i]
        assert np.allclose(s_dir[O], s_dir[O[0]], atol=1e-9)  # equal scores inside O_i
        assert (s_dir[O[0]] - np.delete(s_dir, O) >= 1 - 1e-9).all()  # margin 1 outside
        assert np.allclose(s_fin[O] - s_fin[O[0]], np.log(scores[i, O] / scores[i, O[0]]))
    # R is the 1-D least-squares fit: the residual is orthogonal to W_dir
    W_final = eq.W_fin + 7.0 * eq.W_dir.W + 0.01
    resid = W_final - eq.prediction(W_final)
    assert abs((resid * eq.W_dir.W).sum()) < 1e-9


def test_classification_of_selections():
    from rfattn.svm.selection import classify, is_locally_optimal

    X, z, v, Y = instance(5, 5, 10, 3)
    opt = optimal_selection(X, Y, v)
    assert classify(X, z, Y, v, opt) == "global"
    X2 = X.copy()
    X2[:, 4] = X2[:, 2]
    assert classify(X2, z, Y, v, np.full(5, 2)) == "neither"  # infeasible: duplicate token
    gamma = token_scores(X, Y, v)
    worst = np.argmin(gamma, axis=1)  # the lowest-scoring token cannot be locally optimal
    assert not is_locally_optimal(X, z, Y, v, worst)
