"""Small data sets and networks shared by the low-rank tests."""

import torch

from rfattn.core import generator
from rfattn.lowrank import PatternData, init_weights, orthonormal_patterns, sample

BASE = {"d": 16, "patterns": 12, "N": 20, "K": 2, "alpha_star": 0.25, "alpha_conf": 0.1,
        "tau": 0.4, "noise": "bounded", "mix": "token"}


def draw(n=4000, seed=0, **kw):
    data = PatternData(**{**BASE, **kw})
    P = orthonormal_patterns(data.d, data.patterns, generator(seed, "lowrank", "patterns"))
    return data, P, *sample(data, n, P, generator(seed, "test"))


def small_net(S=2, d=6, m=8, seed=0, dtype=torch.float64):
    W, a = init_weights(d, 5, 4, m, [generator(seed, "net", s) for s in range(S)], o_std=1.0)
    return {k: w.to(dtype) for k, w in W.items()}, a.to(dtype)
