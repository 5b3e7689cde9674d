r"""Exact spectra of dot-product kernels on a sphere (Funk-Hecke).

A kernel :math:`k(\langle x, x'\rangle)` on :math:`S^{D-1}` with the uniform (probability)
measure has the spherical harmonics as eigenfunctions. The eigenvalue of degree l, shared by
the :math:`N(D, l) = \frac{2l + D - 2}{l + D - 2}\binom{l + D - 2}{l}` harmonics of that degree,
is (Funk-Hecke; e.g. Atkinson and Han, "Spherical Harmonics and Approximations on the Unit
Sphere", 2012, Theorem 2.22)

.. math:: \mu_l = \frac{\Gamma(D/2)}{\sqrt\pi\,\Gamma((D-1)/2)}
          \int_{-1}^{1} k(t)\, P_{l,D}(t)\,(1 - t^2)^{(D-3)/2}\,dt,

with :math:`P_{l,D} = C_l^{(D-2)/2}/C_l^{(D-2)/2}(1)` the Legendre polynomial of dimension D
(Chebyshev :math:`T_l` on the circle, D = 2). The integral is done by Gauss-Jacobi quadrature.
Check: :math:`\sum_l N(D,l)\,\mu_l = k(1)`.

Only where the measure is uniform on one sphere: the NTK and NNGP of inputs on the sphere,
yes; the RFMLP input :math:`[x_0; x_1; \dots; x_N]` of sphere tokens has constant norm but is
uniform on a product of spheres, not on one, so it has no such spectrum.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

from ..core.checks import ConfigError, positive_int
from .curves import Spectrum

RESOLVED = 1e-12  # eigenvalues below this share of the largest are quadrature noise


def multiplicity(D: int, l: int) -> int:
    """Number :math:`N(D, l)` of spherical harmonics of degree l on :math:`S^{D-1}`.

    Parameters
    ----------
    D : int
        Ambient dimension, >= 2.
    l : int
        Degree, >= 0.

    Returns
    -------
    int
    """
    if l == 0:
        return 1
    if D == 2:
        return 2
    return (2 * l + D - 2) * math.comb(l + D - 3, l - 1) // l


def legendre_rows(D: int, degrees: int, t: np.ndarray):
    """:math:`P_{l,D}(t)` for l = 0, 1, ... < ``degrees``, one array of t's shape at a time, by
    the stable recurrence :math:`(l + D - 3) P_l = (2l + D - 4)\\,t\\,P_{l-1} - (l - 1)
    P_{l-2}` (Atkinson and Han, 2012, eq. 2.89), :math:`P_0 = 1`, :math:`P_1 = t`: values stay
    in [-1, 1]. Only the last two rows are kept."""
    t = np.asarray(t, dtype=np.float64)
    before, last = np.ones(t.shape), t
    for l in range(degrees):
        if l >= 2:
            before, last = last, ((2 * l + D - 4) * t * last - (l - 1) * before) / (l + D - 3)
        yield before if l == 0 else last


def legendre_table(D: int, degrees: int, t: np.ndarray) -> np.ndarray:
    """:math:`P_{l,D}(t)` for l < ``degrees``, (degrees, len(t)) (:func:`legendre_rows`)."""
    t = np.asarray(t, dtype=np.float64).ravel()
    table = np.empty((degrees, t.size))
    for l, row in enumerate(legendre_rows(D, degrees, t)):
        table[l] = row
    return table


def legendre_series(D: int, weights: np.ndarray, t: np.ndarray) -> np.ndarray:
    """:math:`\\sum_l w_l P_{l,D}(t)` over l < len(weights) (:func:`legendre_rows`: two rows in
    memory, not one per degree; for t of n^2 inner products and a thousand degrees the table
    would take gigabytes).

    Parameters
    ----------
    D : int
        Ambient dimension (the sphere :math:`S^{D-1}`), >= 2.
    weights : array_like
        :math:`w_l` for l = 0, 1, ...
    t : ndarray
        Points in [-1, 1].

    Returns
    -------
    ndarray
        Same shape as ``t``.
    """
    t = np.asarray(t, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    total = np.zeros(t.shape)
    for w, row in zip(weights, legendre_rows(D, len(weights), t)):
        if w:
            total += w * row
    return total


def legendre(D: int, l: int, t: np.ndarray) -> np.ndarray:
    """:math:`P_{l,D}(t)`, the Legendre polynomial of dimension D, normalized to 1 at t = 1
    (Gegenbauer :math:`C_l^{(D-2)/2}/C_l^{(D-2)/2}(1)`; Chebyshev :math:`T_l` for D = 2).

    Parameters
    ----------
    D : int
        Ambient dimension (the sphere :math:`S^{D-1}`), >= 2.
    l : int
        Degree, >= 0.
    t : ndarray
        Points in [-1, 1].

    Returns
    -------
    ndarray
        Same shape as ``t``.
    """
    t = np.asarray(t, dtype=np.float64)
    return legendre_table(D, l + 1, t)[l].reshape(t.shape)


def funk_hecke(kernel: Callable[[np.ndarray], np.ndarray], D: int, degrees: int,
               points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues :math:`\\mu_l` and multiplicities :math:`N(D, l)` for l < ``degrees``.

    Parameters
    ----------
    kernel : callable
        t -> k(t) on arrays of inner products in [-1, 1].
    D : int
        Ambient dimension (the sphere is :math:`S^{D-1}`), >= 2.
    degrees : int
        Number of degrees, from 0.
    points : int
        Gauss-Jacobi nodes (the kernel is smooth away from t = +-1: 400 give ~1e-12).

    Returns
    -------
    (ndarray, ndarray)
        Eigenvalues per degree and their multiplicities.
    """
    D, degrees = positive_int("D", D), positive_int("degrees", degrees)
    if D < 2:
        raise ConfigError(f"D must be >= 2 for a sphere S^(D-1) (got {D})")
    a = (D - 3) / 2
    t, w = special.roots_jacobi(positive_int("points", points), a, a)
    w = w / w.sum()  # the density of one coordinate of a uniform point, normalized
    k = np.asarray(kernel(t), dtype=np.float64)
    mu = legendre_table(D, degrees, t) @ (w * k)
    return mu, np.array([multiplicity(D, l) for l in range(degrees)], dtype=np.float64)


def sphere_spectrum(kernel: Callable[[np.ndarray], np.ndarray], D: int, degrees: int,
                    targets: dict | None = None, points: int = 400,
                    trace: float | None = None) -> Spectrum:
    r"""The exact spectrum of a dot-product kernel :math:`k(\langle x, x'\rangle)` on
    :math:`S^{D-1}` under the uniform measure (Funk-Hecke, :func:`funk_hecke`).

    Eigenspaces are sorted by eigenvalue; degrees whose eigenvalue vanishes (such as the odd
    degrees of an even kernel) are left out. Quadrature resolves :math:`\mu_l` only down to
    about :math:`10^{-12}\mu_0`; in high dimension the many modes below that still carry
    trace (on :math:`S^{19}` the ReLU NTK's degrees 23-100 hold 1.7% of it). Given the trace
    :math:`k(1) = \sum_l N(D, l)\mu_l`, the degrees after the last resolved one L continue
    the law :math:`\mu_l = c\,l^{-a}` fitted on the last resolved degrees, up to degree
    :math:`10(L+1)`, with c set so that they carry the missing trace.

    Parameters
    ----------
    kernel : callable
        :math:`t \mapsto k(t)` on [-1, 1], vectorized over a numpy array.
    D : int
        Ambient dimension.
    degrees : int
        Degrees 0 .. degrees - 1.
    targets : dict of str to array_like, optional
        Each target's total power on each degree, summed over the degree's
        :math:`N(D, l)` modes, (degrees,): for :math:`f = \sum_l a_l P_{l,D}(\langle\beta,
        x\rangle)` it is :math:`a_l^2 / N(D, l)` on degree l (the squared norm of
        :math:`a_l P_{l,D}`), and the powers sum to :math:`\mathbb E f^2`.
    points : int
        Gauss-Jacobi quadrature nodes.
    trace : float, optional
        :math:`k(1)`: complete the unresolved degrees (above).

    Returns
    -------
    Spectrum
    """
    mu, mult = funk_hecke(kernel, D, degrees, points)
    targets = {name: np.asarray(p, dtype=np.float64) for name, p in (targets or {}).items()}
    resolved = np.flatnonzero(mu > RESOLVED * np.abs(mu).max())
    powered = [int(np.flatnonzero(p)[-1]) for p in targets.values() if p.any()]
    last = max([int(resolved[-1])] + powered)
    mu, mult = mu[:last + 1], mult[:last + 1]
    targets = {name: p[:last + 1] for name, p in targets.items()}
    missing = 0.0 if trace is None else float(trace) - float((mu * mult).clip(min=0).sum())
    if missing > 1e-12 * float(trace or 0.0) and len(resolved) >= 2:
        fit = resolved[-6:]
        fit = fit[fit > 0]
        slope = np.polyfit(np.log(fit), np.log(mu[fit]), 1)[0] if len(fit) >= 2 else -D
        extra = np.arange(last + 1, 10 * (last + 1), dtype=np.float64)
        law = extra ** min(slope, -1e-3)
        extra_mult = np.array([multiplicity(D, int(l)) for l in extra], dtype=np.float64)
        mu = np.concatenate([mu, law * missing / float((law * extra_mult).sum())])
        mult = np.concatenate([mult, extra_mult])
        targets = {name: np.concatenate([p, np.zeros(len(extra))]) for name, p in targets.items()}
    keep = mu > RESOLVED * np.abs(mu).max()
    keep[last + 1:] = True  # the continued degrees
    order = np.argsort(-mu[keep])
    power = {name: p[keep][order] for name, p in targets.items()}
    return Spectrum(mu[keep][order], mult[keep][order], power)
