"""Random Att-SVM instances shared by the tests."""

import numpy as np


def instance(n, N, d, seed):
    """The official notebooks' data: unit-norm Gaussian tokens and queries, v ~ N(0, I)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N, d))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    z = rng.standard_normal((n, d))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    v = rng.standard_normal(d)
    return X, z, v / np.linalg.norm(v), rng.choice([-1.0, 1.0], n)
