r"""Target functions with a complexity axis, each normalized to unit variance.

Families (Fu et al. 2023, arXiv 2307.11353, target classes; ``p`` = degree):

- ``single_key``:  :math:`\frac1N\sum_i \mathrm{He}_p(\sqrt d\,\langle\beta, x_i\rangle)/\sqrt{p!}`,
  :math:`\beta = e_1` (no loss of generality: tokens and weights are rotation invariant);
- ``query_key``:   :math:`\frac1N\sum_i \mathrm{He}_p(\sqrt d\,\langle x_0, x_i\rangle)/\sqrt{p!}`;
- ``similarity``:  :math:`\frac1N\sum_i F(\sqrt d\,\langle x_0, x_i\rangle)`, ``F`` in
  :data:`SIMILARITY_FUNCTIONS`;
- ``two_key``:     :math:`\frac1{N^2}\sum_{i,j}\langle x_i, x_j\rangle`, a negative control:
  its part that couples two keys is orthogonal to every :math:`\frac1N\sum_i F(x_0, x_i)`, so
  1/N-normalized ReLU attention cannot learn it at any M;
- ``custom``:      a user's own function ``fn = "module:function"``,
  ``f(x0 (n, d), X (n, N, d)) -> (n,)`` (:mod:`rfattn.core.plugins`).

A target is the family's function divided by its standard deviation, :math:`f^* = f/\sigma`
(the paper's form: neither RFA nor the ridge has an intercept, so the model fits the mean
too), or, with ``centred=True``, :math:`(f - \mathbb E f)/\sigma`. Either way
:math:`\mathrm{Var} f^* = 1`.

The mean and variance are exact for sphere tokens at any d. The summands are i.i.d.
functions of :math:`s = \sqrt d\,t`, :math:`t=\langle u, x_i\rangle`, whose density on the
sphere is :math:`\propto(1-t^2)^{(d-3)/2}`:

- Hermite targets: in rational arithmetic from the sphere moments
  :math:`\mathbb E t^{2k} = \prod_{j<k} (2j+1)/(d+2j)` (exact);
- other functions: adaptive quadrature, with the algebraic endpoint weight for d < 12 and,
  from d = 12, on the density of s, :math:`\exp(\frac{d-3}{2}\log(1 - s^2/d))` normalized by
  its own quadrature; split at the kink s = 0 (accurate to 1e-13 at any d);
- ``two_key``: mean 1/N and variance :math:`2(N-1)/(N^3 d)`.

Gaussian tokens, and every ``custom`` target, use a fixed Monte Carlo sample of 2^17 draws
(the stream ``(0, "target-normalization")``, the same for every seed, so that every seed fits
the same function); its size and the constants are part of the target (:attr:`Target.constants`),
and a job records them in its ``run.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from scipy import integrate, special
from torch import Tensor

from ..core.checks import ConfigError, boolean, choice, positive_int
from ..core.plugins import call_plugin, is_plugin, load_plugin
from ..core.runtime import generator
from .sampling import TOKEN_DISTRIBUTIONS, check_tokens, sample_tokens

TARGETS = ("single_key", "query_key", "similarity", "two_key", "custom")
CUSTOM_SIGNATURE = "f(x0 (n, d), X (n, N, d)) -> (n,)"
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


def hermite_coefficients(p: int) -> list[int]:
    r"""Integer coefficients :math:`c_j` of :math:`\mathrm{He}_p(z) = \sum_j c_j z^j`."""
    return [0 if (p - j) % 2 else (-1) ** ((p - j) // 2) * math.factorial(p)
            // (math.factorial((p - j) // 2) * math.factorial(j) * 2 ** ((p - j) // 2))
            for j in range(p + 1)]


def sphere_moment(m: int, d: int) -> Fraction:
    r""":math:`\mathbb E s^m` for :math:`s = \sqrt d\,t`, t a coordinate of a uniform point on
    :math:`S^{d-1}`: 0 for odd m, :math:`\prod_{j<k} d\,(2j+1)/(d+2j)` for m = 2k (exact)."""
    if m % 2:
        return Fraction(0)
    out = Fraction(1)
    for j in range(m // 2):
        out *= Fraction(d * (2 * j + 1), d + 2 * j)
    return out


def _hermite_mean_var(p: int, d: int) -> tuple[float, float]:
    """Mean and variance of He_p(s)/sqrt(p!) on the sphere, from exact rational moments."""
    c = hermite_coefficients(p)
    mean = sum(cj * sphere_moment(j, d) for j, cj in enumerate(c) if cj)
    second = sum(ci * cj * sphere_moment(i + j, d)
                 for i, ci in enumerate(c) if ci for j, cj in enumerate(c) if cj)
    scale = math.factorial(p)
    return float(mean) / math.sqrt(scale), float((second - mean * mean) / scale)


LOG_DENSITY_FROM = 12  # from this d, quadrature on the log density of s (module docstring)
QUAD = {"epsabs": 1e-13, "epsrel": 1e-12, "limit": 200}


def _sphere_mean_var(g, d: int) -> tuple[float, float]:
    """E g(s) and Var g(s) for s = sqrt(d) t, t a coordinate of a uniform point on S^{d-1}."""
    if d == 1:
        vals = np.array([g(np.array(-1.0)), g(np.array(1.0))], dtype=float)
        return float(vals.mean()), float(vals.var())
    a = (d - 3) / 2
    if d < LOG_DENSITY_FROM:
        norm = math.sqrt(math.pi) * math.exp(special.gammaln(a + 1) - special.gammaln(a + 1.5))
        sd = math.sqrt(d)

        def moment(power: int) -> float:
            left = integrate.quad(lambda t: g(sd * t) ** power * (1 - t) ** a, -1, 0,
                                  weight="alg", wvar=(a, 0), **QUAD)
            right = integrate.quad(lambda t: g(sd * t) ** power * (1 + t) ** a, 0, 1,
                                   weight="alg", wvar=(0, a), **QUAD)
            return (left[0] + right[0]) / norm
    else:
        edge = min(math.sqrt(d), 40.0)  # beyond |s| = 40 the density is below e^-800

        def integral(power: int) -> float:  # of g^power against the unnormalized density
            def f(s):
                return g(s) ** power * math.exp(a * math.log1p(-s * s / d))
            return integrate.quad(f, -edge, 0, **QUAD)[0] + integrate.quad(f, 0, edge, **QUAD)[0]

        mass = integral(0)  # normalizing by quadrature: no log-gamma difference to round

        def moment(power: int) -> float:
            return integral(power) / mass

    m1, m2 = moment(1), moment(2)
    return m1, m2 - m1 * m1


@dataclass(frozen=True)
class Target:
    """A target function of unit variance; build it with :func:`make_target`.

    Calling ``target(x0, X)`` returns ``raw / std``, or ``(raw - mean) / std`` when ``centred``,
    where ``mean`` and ``std`` are those of ``raw`` under the token distribution (exact on the
    sphere where a closed form exists).

    Parameters
    ----------
    name : str
        ``single_key``, ``query_key``, ``similarity`` or ``two_key``.
    d, N : int
        Token dimension and number of keys.
    degree : int
        Polynomial degree p of ``single_key`` and ``query_key``.
    function : str
        F of ``similarity`` (``relu``, ``tanh``, ``abs``, ``sin``); the ``module:function`` of
        a ``custom`` target.
    tokens : str
        ``sphere`` or ``gaussian``.
    centred : bool
        Subtract the mean.
    mean, std : float
        Mean and standard deviation of the raw function.
    """

    name: str
    d: int
    N: int
    degree: int = 0
    function: str = ""
    tokens: str = "sphere"
    centred: bool = False
    mean: float = 0.0
    std: float = 1.0

    @property
    def constants(self) -> dict:
        """The normalization: mean, standard deviation and how they were computed."""
        exact = self.tokens == "sphere" and self.name != "custom"
        return {"target": self.label, "mean": self.mean, "std": self.std,
                "normalization": "exact" if exact else
                f"monte carlo, {MC_NORMALIZATION_SAMPLES} samples, stream (0, "
                "target-normalization)"}

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
        elif self.name == "custom":
            return call_plugin("target.fn", self.function, load_plugin("target.fn", self.function),
                               x0, X, shape=(x0.shape[0],), signature=CUSTOM_SIGNATURE).to(x0)
        else:
            return (X.mean(1) ** 2).sum(-1)
        if self.name == "similarity":
            return SIMILARITY_FUNCTIONS[self.function][0](s).mean(1)
        return hermite_e(self.degree, s).mean(1) / math.sqrt(math.factorial(self.degree))

    def __call__(self, x0: Tensor, X: Tensor) -> Tensor:
        check_tokens(x0, X, self.d)
        if X.shape[1] != self.N:
            raise ConfigError(f"target was built for N={self.N} keys; tokens have "
                              f"N={X.shape[1]}")
        raw = self.raw(x0, X)
        return ((raw - self.mean) if self.centred else raw) / self.std


def make_target(name: str, d: int, N: int, degree: int = 1, function: str = "relu",
                tokens: str = "sphere", centred: bool = False, fn: str | None = None) -> Target:
    r"""A target of family ``name``, normalized to unit variance (module docstring).

    Parameters
    ----------
    name : str
        ``single_key``, ``query_key``, ``similarity`` or ``two_key``.
    d, N : int
        Token dimension and keys per sample.
    degree : int
        Hermite degree p of the polynomial families, in [1, 12].
    function : str
        F of the similarity family (:data:`SIMILARITY_FUNCTIONS`).
    tokens : str
        ``sphere`` (exact normalization) or ``gaussian`` (Monte Carlo, 2^17 draws).
    centred : bool
        Subtract the mean (False: the paper's uncentred :math:`f/\sigma`).
    fn : str, optional
        ``custom`` only: the user's ``module:function`` (``target.fn``), called on a small
        sample first, so that a bad one is named in one line.

    Returns
    -------
    Target

    Raises
    ------
    ConfigError
        A bad value, a bad ``fn``, or a constant target.
    """
    choice("target", name, TARGETS)
    d, N = positive_int("d", d), positive_int("N", N)
    choice("tokens", tokens, TOKEN_DISTRIBUTIONS)
    boolean("centred", centred)
    if name == "custom":
        if not is_plugin(fn):
            raise ConfigError(f"target.fn must have the form module:function (got {fn!r})")
        degree, function = 0, fn
        x0, X = sample_tokens(4, N, d, generator(0, "target-check"), tokens)
        call_plugin("target.fn", fn, load_plugin("target.fn", fn), x0, X, shape=(4,),
                    signature=CUSTOM_SIGNATURE)
    elif name in POLYNOMIAL_TARGETS:
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
    target = Target(name, d, N, degree, function, tokens, centred)
    if tokens == "sphere" and name != "custom":
        if name == "two_key":
            mean, var = 1.0 / N, 2.0 * (N - 1) / (N**3 * d)
        elif name == "similarity":
            mean, var = _sphere_mean_var(SIMILARITY_FUNCTIONS[function][1], d)
            var /= N
        else:
            mean, var = _hermite_mean_var(degree, d)
            var /= N
    else:
        x0, X = sample_tokens(MC_NORMALIZATION_SAMPLES, N, d, generator(0, "target-normalization"),
                              tokens)
        raw = target.raw(x0, X)
        mean, var = float(raw.mean()), float(raw.var())
    if not var > 1e-14 * max(1.0, mean * mean):
        if name == "custom":
            raise ConfigError(f"target.fn={fn}: the target is constant on "
                              f"{MC_NORMALIZATION_SAMPLES} samples (mean {mean:.6g}, variance "
                              f"{var:.3g}); a target must vary")
        raise ConfigError(f"target {target.label} is constant for d={d}, N={N}; "
                          "choose another degree or function")
    return Target(name, d, N, degree, function, tokens, centred, float(mean), math.sqrt(var))
