r"""Target functions with a complexity axis, each normalized to zero mean and unit variance.

Families (Fu et al. 2023, arXiv 2307.11353, target classes; ``p`` = degree):

- ``single_key``:  :math:`\frac1N\sum_i \mathrm{He}_p(\sqrt d\,\langle\beta, x_i\rangle)/\sqrt{p!}`,
  :math:`\beta = e_1` (no loss of generality: tokens and weights are rotation invariant);
- ``query_key``:   :math:`\frac1N\sum_i \mathrm{He}_p(\sqrt d\,\langle x_0, x_i\rangle)/\sqrt{p!}`;
- ``similarity``:  :math:`\frac1N\sum_i F(\sqrt d\,\langle x_0, x_i\rangle)`, ``F`` in
  :data:`SIMILARITY_FUNCTIONS`;
- ``two_key``:     :math:`\frac1{N^2}\sum_{i,j}\langle x_i, x_j\rangle`, a negative control:
  its part that couples two keys is orthogonal to every :math:`\frac1N\sum_i F(x_0, x_i)`, so
  1/N-normalized ReLU attention cannot learn it at any M.

Normalization is exact for sphere tokens: the summands are i.i.d. functions of
:math:`t=\langle u, x_i\rangle` with density :math:`\propto(1-t^2)^{(d-3)/2}` on [-1, 1], so the
mean and variance are 1-D integrals (adaptive quadrature with the algebraic endpoint weight,
split at the kink t = 0); for ``two_key``, mean 1/N and variance :math:`2(N-1)/(N^3 d)`.
Gaussian tokens use a fixed Monte Carlo sample of 2^17 draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import integrate, special
from torch import Tensor

from ..core.checks import ConfigError, choice, positive_int
from ..core.runtime import generator
from .sampling import TOKEN_DISTRIBUTIONS, sample_tokens

TARGETS = ("single_key", "query_key", "similarity", "two_key")
POLYNOMIAL_TARGETS = ("single_key", "query_key")
SIMILARITY_FUNCTIONS = {
    "relu": (torch.relu, lambda t: np.maximum(t, 0.0)),
    "tanh": (torch.tanh, np.tanh),
    "abs": (torch.abs, np.abs),
    "sin": (torch.sin, np.sin),
}
MAX_DEGREE = 12
MC_NORMALIZATION_SAMPLES = 2**17


def hermite_e(p: int, z):
    r"""Probabilists' Hermite polynomial :math:`\mathrm{He}_p(z)` (torch or numpy input)."""
    prev, cur = z * 0 + 1, z
    if p == 0:
        return prev
    for k in range(1, p):
        prev, cur = cur, z * cur - k * prev
    return cur


def _sphere_moments(g, d: int) -> tuple[float, float]:
    """E g(sqrt(d) t), E g(sqrt(d) t)^2 for t a coordinate of a uniform point on S^{d-1}."""
    if d == 1:
        vals = np.array([g(np.array(-1.0)), g(np.array(1.0))], dtype=float)
        return float(vals.mean()), float((vals**2).mean())
    a = (d - 3) / 2
    norm = math.sqrt(math.pi) * math.exp(special.gammaln(a + 1) - special.gammaln(a + 1.5))
    sd = math.sqrt(d)

    def moment(power: int) -> float:
        left = integrate.quad(lambda t: g(sd * t) ** power * (1 - t) ** a, -1, 0,
                              weight="alg", wvar=(a, 0), epsabs=1e-13, epsrel=1e-12, limit=200)
        right = integrate.quad(lambda t: g(sd * t) ** power * (1 + t) ** a, 0, 1,
                               weight="alg", wvar=(0, a), epsabs=1e-13, epsrel=1e-12, limit=200)
        return (left[0] + right[0]) / norm

    return moment(1), moment(2)


@dataclass(frozen=True)
class Target:
    """A normalized target ``(raw(x0, X) - mean) / std``; build it with :func:`make_target`."""

    name: str
    d: int
    N: int
    degree: int = 0
    function: str = ""
    tokens: str = "sphere"
    mean: float = 0.0
    std: float = 1.0

    @property
    def label(self) -> str:
        if self.name in POLYNOMIAL_TARGETS:
            return f"{self.name} p={self.degree}"
        return f"{self.name} {self.function}".strip()

    def raw(self, x0: Tensor, X: Tensor) -> Tensor:
        """The un-normalized target, shape (n,)."""
        d = x0.shape[1]
        if self.name == "single_key":
            s = X[..., 0] * d**0.5
        elif self.name in ("query_key", "similarity"):
            s = torch.einsum("bd,bid->bi", x0, X) * d**0.5
        else:
            return (X.mean(1) ** 2).sum(-1)
        if self.name == "similarity":
            return SIMILARITY_FUNCTIONS[self.function][0](s).mean(1)
        return hermite_e(self.degree, s).mean(1) / math.sqrt(math.factorial(self.degree))

    def __call__(self, x0: Tensor, X: Tensor) -> Tensor:
        if x0.shape[1] != self.d or X.shape[1] != self.N:
            raise ValueError(f"target was built for d={self.d}, N={self.N}; tokens have "
                             f"d={x0.shape[1]}, N={X.shape[1]}")
        return (self.raw(x0, X) - self.mean) / self.std


def make_target(name: str, d: int, N: int, degree: int = 1, function: str = "relu",
                tokens: str = "sphere") -> Target:
    """A target of family ``name`` normalized to zero mean and unit variance (see module doc)."""
    choice("target", name, TARGETS)
    d, N = positive_int("d", d), positive_int("N", N)
    choice("tokens", tokens, TOKEN_DISTRIBUTIONS)
    if name in POLYNOMIAL_TARGETS:
        degree = positive_int("degree", degree)
        if degree > MAX_DEGREE:
            raise ConfigError(f"degree must lie in [1, {MAX_DEGREE}] (got {degree})")
        function = "hermite"
    else:
        degree = 0
        if name == "similarity":
            choice("function", function, list(SIMILARITY_FUNCTIONS))
        else:
            function = "pair"
    if name == "two_key" and N < 2:
        raise ConfigError("N must be >= 2 for the two_key target (with N=1 it is constant)")
    if name == "single_key" and d < 2 and degree % 2 == 0:
        raise ConfigError("d must be >= 2 for an even-degree single_key target "
                          "(with d=1 it is constant)")
    target = Target(name, d, N, degree, function, tokens)
    if tokens == "sphere":
        if name == "two_key":
            mean, var = 1.0 / N, 2.0 * (N - 1) / (N**3 * d)
        else:
            if name == "similarity":
                g = SIMILARITY_FUNCTIONS[function][1]
            else:
                def g(z):
                    return hermite_e(degree, z) / math.sqrt(math.factorial(degree))
            m1, m2 = _sphere_moments(g, d)
            mean, var = m1, (m2 - m1**2) / N
    else:
        x0, X = sample_tokens(MC_NORMALIZATION_SAMPLES, N, d, generator(0, "target-normalization"),
                              tokens)
        raw = target.raw(x0, X)
        mean, var = float(raw.mean()), float(raw.var())
    if not var > 1e-14:
        raise ConfigError(f"target {target.label} is constant for d={d}, N={N}; "
                          "choose another degree or function")
    return Target(name, d, N, degree, function, tokens, float(mean), math.sqrt(var))
