r"""Learning curves of kernel and random-feature ridge regression, predicted from a spectrum.

**Kernel ridge regression** (the eigenlearning equations: Simon, Dickens, Karkada, DeWeese,
"The eigenlearning framework", TMLR 2023, eqs. 4-8; Canatar, Bordelon, Pehlevan, Nat. Commun.
2021; Jacot et al. 2020; Wei, Hu, Steinhardt 2022). A kernel has eigenvalues :math:`\lambda_i`
on its data measure, the target :math:`f^* = \sum_i v_i\phi_i`, labels carry noise of variance
:math:`\epsilon^2`. This lab's ridge minimizes :math:`\frac1n\|y - \Phi w\|^2 + \lambda\|w\|^2`,
the kernel ridge :math:`\delta = n\lambda` of the paper. The effective regularization
:math:`\kappa` solves :math:`\sum_i \frac{\lambda_i}{\lambda_i+\kappa} + \frac{\delta}{\kappa} = n`,
that is :math:`\lambda = \kappa\,(1 - \mathrm{df}_1(\kappa)/n)` with
:math:`\mathrm{df}_1(\kappa) = \sum_i \lambda_i/(\lambda_i+\kappa)`; mode i is learned to the
fraction :math:`L_i = \lambda_i/(\lambda_i+\kappa)`, the overfitting factor is
:math:`E_0 = n/(n - \sum_i L_i^2)`, and

.. math::
    \mathbb E(\hat f - f^*)^2 = E_0\Big(\sum_i (1-L_i)^2 v_i^2 + \epsilon^2\Big) - \epsilon^2,
    \qquad \text{train MSE} = (\lambda/\kappa)^2\,E_0\Big(\sum_i (1-L_i)^2 v_i^2 + \epsilon^2\Big).

**P random features** of the same kernel (Bach 2024, "High-dimensional analysis of double
descent for linear regression with random projections", SIAM J. Math. Data Sci.; Simon,
Karkada, Ghosh, Belkin 2023, "More is better"; Atanasov, Zavatone-Veth, Pehlevan 2024).
Derived here as two nested deterministic equivalents: ridge on the P features given their
draw, whose covariance :math:`A = \Lambda^{1/2}(F^\top F/P)\Lambda^{1/2}` is a sample covariance
of P draws, and the draw itself. The effective regularization :math:`\tilde\kappa` solves

.. math:: \lambda = \tilde\kappa\,\big(1 - \mathrm{df}_1(\tilde\kappa)/n\big)
          \big(1 - \mathrm{df}_1(\tilde\kappa)/P\big),

and with :math:`a = 1 - \mathrm{df}_1/P`, :math:`s = 1 - \mathrm{df}_2/P`,
:math:`\mathrm{df}_2 = \sum_i \lambda_i^2/(\lambda_i+\tilde\kappa)^2`,
:math:`T_k = \sum_i v_i^2/(\lambda_i+\tilde\kappa)^k`,

.. math::
    B = \frac{a\tilde\kappa^2 T_2 + \tilde\kappa T_1(\mathrm{df}_1-\mathrm{df}_2)/P}{s},
    \qquad \mathrm{df}_2^{RF} = \frac{\mathrm{df}_2
        - (2\,\mathrm{df}_1\mathrm{df}_2 - \mathrm{df}_1^2)/P}{s},
    \qquad \mathbb E(\hat f - f^*)^2 = \frac{B + \epsilon^2}{1 - \mathrm{df}_2^{RF}/n} - \epsilon^2,

and the train MSE :math:`(\lambda/(a\tilde\kappa))^2 (B+\epsilon^2)/(1-\mathrm{df}_2^{RF}/n)`.
As :math:`P\to\infty` these are the kernel equations; at small ridge the error peaks at
:math:`n = P` (double descent). ``tests/theory`` checks both against simulated ridge regression.

A :class:`Spectrum` holds eigenspaces (eigenvalue, multiplicity) and each target's power on
them, so that exact spectra with multiplicities (:mod:`rfattn.theory.sphere`), sampled ones and
binned tails (:mod:`rfattn.theory.spectra`) are used alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.checks import ConfigError, positive_int, real

ROOT_STEPS = 200  # safeguarded Newton: about 10 steps converge; bisection bounds it


@dataclass(frozen=True)
class Spectrum:
    """Eigenspaces of a kernel's integral operator and the targets' power on them.

    Attributes
    ----------
    eigenvalues : ndarray
        (K,) positive, in decreasing order.
    multiplicity : ndarray
        (K,) modes per eigenspace (a binned tail holds fractional counts).
    power : dict of str to ndarray
        Each target's power :math:`\\sum v_i^2` on each eigenspace, (K,).
    """

    eigenvalues: np.ndarray
    multiplicity: np.ndarray
    power: dict = field(default_factory=dict)

    def __post_init__(self):
        lam = np.asarray(self.eigenvalues, dtype=np.float64)
        mult = np.asarray(self.multiplicity, dtype=np.float64)
        if lam.ndim != 1 or mult.shape != lam.shape or not len(lam):
            raise ConfigError("eigenvalues and multiplicity must be non-empty 1-D arrays of one "
                              "length")
        if not (np.isfinite(lam).all() and (lam > 0).all() and (mult > 0).all()):
            raise ConfigError("eigenvalues must be finite and > 0, multiplicities > 0")
        for name, p in self.power.items():
            p = np.asarray(p, dtype=np.float64)
            if p.shape != lam.shape or not np.isfinite(p).all() or (p < 0).any():
                raise ConfigError(f"power[{name!r}] must be finite, >= 0, one per eigenspace")
        object.__setattr__(self, "eigenvalues", lam)
        object.__setattr__(self, "multiplicity", mult)
        object.__setattr__(self, "power", {k: np.asarray(v, dtype=np.float64)
                                           for k, v in self.power.items()})

    @property
    def modes(self) -> float:
        """Number of modes (the sum of the multiplicities)."""
        return float(self.multiplicity.sum())

    def df1(self, kappa) -> np.ndarray:
        r""":math:`\mathrm{df}_1(\kappa) = \sum_i \lambda_i/(\lambda_i+\kappa)`, any kappa shape."""
        kappa = np.asarray(kappa, dtype=np.float64)[..., None]
        return (self.multiplicity * self.eigenvalues / (self.eigenvalues + kappa)).sum(-1)


def _grid(n, ridge, features):
    """(n as a column, ridge as a row, P) checked: n integers >= 1, ridge >= 0, P > 0 or inf."""
    n = np.array([positive_int(f"n[{i}]", v) for i, v in enumerate(np.atleast_1d(n).tolist())],
                 dtype=np.float64)
    ridge = np.atleast_1d(np.asarray(ridge, dtype=np.float64))
    if not len(n) or not len(ridge) or not (np.isfinite(ridge).all() and (ridge >= 0).all()):
        raise ConfigError(f"n and ridge must be non-empty; ridge finite and >= 0 (got {ridge!r})")
    if features is None or features == np.inf:
        return n[:, None], ridge[None, :], np.inf
    return n[:, None], ridge[None, :], real("features", features, low=0.0, low_open=True)


def effective_regularization(spectrum: Spectrum, n, ridge, features: float | None = None
                             ) -> np.ndarray:
    r"""The effective regularization :math:`\tilde\kappa` for every (n, ridge).

    Parameters
    ----------
    spectrum : Spectrum
        The kernel's eigenspaces; they must number more modes than min(n, features).
    n : int or sequence of int
        Training sizes.
    ridge : float or sequence of float
        This lab's ridge :math:`\lambda` (>= 0; 0 is the ridgeless limit).
    features : float, optional
        Number of random features P (None or inf: the kernel itself).

    Returns
    -------
    ndarray
        (len(n), len(ridge)).
    """
    n, ridge, P = _grid(n, ridge, features)
    if (ridge == 0).any() and spectrum.modes <= min(n.max(), P):
        raise ConfigError(f"the spectrum has {spectrum.modes:.0f} modes; ridgeless predictions "
                          f"at n={n.max():.0f} need more (extend its tail)")
    cap = np.minimum(n, P)
    lam, mult = spectrum.eigenvalues, spectrum.multiplicity

    def degrees_of_freedom(u):
        """df1 and d df1 / d log kappa = -(df1 - df2) at kappa = exp(u)."""
        frac = lam / (lam + np.exp(u)[..., None])
        df1 = frac @ mult
        return df1, -(df1 - (frac * frac) @ mult)

    def ridgeless(u):  # df1(kappa_0) = min(n, P): decreasing in u
        df1, slope = degrees_of_freedom(u)
        return df1 - cap, slope

    def ridged(u):  # kappa (1 - df1/n)(1 - df1/P) = ridge: increasing in u above kappa_0
        df1, slope = degrees_of_freedom(u)
        a, b = 1 - df1 / n, 1 - df1 / P
        kappa = np.exp(u)
        return kappa * a * b - ridge, kappa * (a * b - slope * (b / n + a / P))

    trace = float((mult * lam).sum())
    lo = np.full_like(cap, np.log(lam[-1]) - 60.0)
    hi = np.full_like(cap, np.log(max(trace, lam[0])) + 5.0)
    kappa0 = np.exp(_root(ridgeless, lo, hi, increasing=False)) * np.ones_like(ridge)
    lo = np.log(kappa0)
    hi = np.log(np.maximum(kappa0, 4 * ridge + 4 * trace / cap) * 2)
    return np.where(ridge > 0, np.exp(_root(ridged, lo, hi + 0 * lo, increasing=True)), kappa0)


def _root(fn, lo: np.ndarray, hi: np.ndarray, increasing: bool) -> np.ndarray:
    """The root in [lo, hi] of a monotone ``fn(u) -> (value, slope)``, entrywise: Newton steps
    kept inside a shrinking bracket (bisection where a step would leave it), to 1e-13 in u."""
    u = (lo + hi) / 2
    for _ in range(ROOT_STEPS):
        value, slope = fn(u)
        above = (value > 0) == increasing  # the root lies below u
        hi, lo = np.where(above, u, hi), np.where(above, lo, u)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = u - value / slope
        inside = np.isfinite(step) & (step >= lo) & (step <= hi)
        new = np.where(inside, step, (lo + hi) / 2)
        done = np.abs(new - u) < 1e-13 * np.maximum(1.0, np.abs(u))
        u = new
        if done.all():
            break
    return u


@dataclass(frozen=True)
class Curve:
    r"""Predicted errors on a (n, ridge) grid, one array (len(n), len(ridge)) per quantity.

    Attributes
    ----------
    n, ridge : ndarray
        The grid.
    features : float
        P (``inf`` for the kernel).
    kappa : ndarray
        The effective regularization.
    test : dict of str to ndarray
        Per target, the excess error :math:`\mathbb E(\hat f - f^*)^2` (noise excluded).
    train : dict of str to ndarray
        Per target, the training MSE (noise included).
    """

    n: np.ndarray
    ridge: np.ndarray
    features: float
    kappa: np.ndarray
    test: dict
    train: dict

    def best(self, target: str) -> tuple[np.ndarray, np.ndarray]:
        """The smallest predicted test error over the ridge grid and its ridge, per n."""
        idx = np.argmin(self.test[target], axis=1)
        rows = np.arange(len(self.n))
        return self.test[target][rows, idx], self.ridge[idx]


def learning_curve(spectrum: Spectrum, n, ridge, noise: float = 0.0,
                   features: float | None = None) -> Curve:
    """Predicted test and train errors of kernel (or P-random-feature) ridge regression.

    Parameters
    ----------
    spectrum : Spectrum
        Eigenspaces of the kernel and the targets' power on them.
    n, ridge : sequences
        Training sizes and this lab's ridge values (module docstring).
    noise : float
        Standard deviation of the label noise :math:`\\epsilon`.
    features : float, optional
        Number of random features P (None: the kernel).

    Returns
    -------
    Curve
        For every target of the spectrum.
    """
    noise2 = real("noise", noise, low=0.0) ** 2
    n_col, ridge_row, P = _grid(n, ridge, features)
    kappa = effective_regularization(spectrum, n, ridge, features)
    lam, mult = spectrum.eigenvalues, spectrum.multiplicity
    inverse = 1 / (lam + kappa[..., None])  # (n, ridge, eigenspaces)
    frac = lam * inverse
    df1 = frac @ mult
    df2 = (frac * frac) @ mult
    a, s = 1 - df1 / P, 1 - df2 / P
    df2_rf = (df2 - (2 * df1 * df2 - df1 * df1) / P) / s
    e0 = 1 / np.maximum(1 - df2_rf / n_col, 1e-300)
    names = list(spectrum.power)
    powers = np.stack([spectrum.power[name] for name in names], 1) if names else None
    t1 = inverse @ powers if names else None  # (n, ridge, targets)
    t2 = (inverse * inverse) @ powers if names else None
    test, train = {}, {}
    for j, name in enumerate(names):
        bias = (a * kappa**2 * t2[..., j] + kappa * t1[..., j] * (df1 - df2) / P) / s
        total = e0 * (bias + noise2)
        test[name] = total - noise2
        train[name] = (ridge_row / (a * kappa)) ** 2 * total
    return Curve(n_col[:, 0], ridge_row[0], P, kappa, test, train)


def learnability(spectrum: Spectrum, n: int, ridge: float,
                 features: float | None = None) -> np.ndarray:
    r"""Learnability :math:`L_i = \lambda_i/(\lambda_i+\tilde\kappa)` of every eigenspace at one
    (n, ridge) (Simon et al. 2023): the fraction of mode i that is learned.

    Parameters
    ----------
    spectrum : Spectrum
    n : int
        Training samples.
    ridge : float
        This lab's ridge :math:`\lambda`.
    features : float, optional
        P random features (None: the kernel).

    Returns
    -------
    ndarray
        (K,), each in [0, 1].
    """
    kappa = effective_regularization(spectrum, [n], [ridge], features)[0, 0]
    return spectrum.eigenvalues / (spectrum.eigenvalues + kappa)
