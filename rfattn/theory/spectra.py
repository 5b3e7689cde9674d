r"""Spectra of kernel integral operators estimated from a sample, with a fitted tail.

From a Gram matrix :math:`K_s` on :math:`n_s` fresh samples of the data distribution: the
operator's eigenvalues are approximated by those of :math:`K_s/n_s`, its eigenfunctions on the
sample by :math:`\sqrt{n_s}\,u_i`, and a target's coefficients by
:math:`v_i = u_i^\top f^*(X_s)/\sqrt{n_s}` (Parseval: :math:`\sum_i v_i^2` is the sample's mean
of :math:`f^{*2}`; the constant mode carries :math:`(\mathbb E f^*)^2` for an uncentred target).

Only the top modes of a sample are accurate: predictions at n close to :math:`n_s` need the
tail. :func:`with_tail` keeps the top ``keep`` sampled eigenspaces and gives the modes below
them the trace they miss, :math:`\mathbb E\,k(x,x) - \sum_{i \le k}\lambda_i` (fixed, not
fitted), in the shape of a power law fitted to the sampled spectrum (``power``) or of the
sampled modes themselves (``sample``: the two bracket the prediction's dependence on the
tail); the target power of the sample's modes below the kept ones is spread over the tail in
proportion to its eigenvalues; given the exact :math:`\mathbb E f^{*2}`, all powers are
rescaled to it (the sample's mean of :math:`f^{*2}` is off by its sampling error).
:func:`compress` bins eigenspaces of nearly equal eigenvalue so that the learning-curve
equations run over a few hundred eigenspaces.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg
from scipy.linalg import lapack

from ..core.checks import ConfigError, finite_array, positive_int
from .curves import Spectrum


def sampled_spectrum(gram, targets: dict, modes: int | None = None,
                     overwrite: bool = False) -> Spectrum:
    """Eigenspaces of :math:`K_s/n_s` (decreasing, positive ones) and the targets' power.

    On a GPU, :func:`torch.linalg.eigh`. On the CPU only the targets' coordinates are needed,
    not the eigenvectors: LAPACK's ``dsytrd`` reduces :math:`K_s = Q T Q^\top` to a tridiagonal
    T, the Householder reflectors of Q are applied to the targets, and eigenvectors of T (MRRR,
    ``dstemr``) give :math:`u_i^\top y` (8192 samples: about a third of the time of ``eigh``).

    Parameters
    ----------
    gram : Tensor or ndarray
        The symmetric (n_s, n_s) Gram matrix of the kernel on the sample.
    targets : dict of str to Tensor or ndarray
        Each target's values on the sample, (n_s,).
    modes : int, optional
        Resolve the targets' power on the leading ``modes`` eigenspaces only (all eigenvalues
        are computed): the power beyond them is known in total (Parseval) and spread in
        proportion to their eigenvalues, as :func:`with_tail` does with ``keep <= modes``.
    overwrite : bool
        Let the CPU path overwrite a float64 ``gram`` (saves a copy of it). Passed as the
        caller's last reference (``grams.pop()``), the matrix is also freed before the
        eigenvectors, whose MRRR workspace (LAPACK ``dstemr``) is another (n_s, n_s) matrix:
        the peak stays at one Gram matrix.

    Returns
    -------
    Spectrum
    """
    gram = finite_array("gram", gram)
    n = gram.shape[0]
    if gram.ndim != 2 or gram.shape[1] != n or n < 2:
        raise ConfigError(f"gram must be a square matrix of a sample of >= 2 (got "
                          f"{tuple(gram.shape)})")
    modes = n if modes is None else min(positive_int("modes", modes), n)
    names = list(targets)
    columns = []
    for name in names:
        y = finite_array(f"targets[{name!r}]", targets[name])
        if y.shape != (n,):
            raise ConfigError(f"targets[{name!r}] must have shape ({n},) (got {tuple(y.shape)})")
        columns.append(y.to(device=gram.device, dtype=torch.float64))
    Y = torch.stack(columns, 1) if columns else gram.new_zeros(n, 0, dtype=torch.float64)
    if gram.device.type == "cpu":
        diagonal, offdiagonal, rotated = _tridiagonalize(gram, Y.numpy(), overwrite)
        del gram  # with overwrite and the caller's last reference, its memory is free now
        values, coords = _top_coordinates(diagonal, offdiagonal, rotated, modes)
    else:
        values, vectors = torch.linalg.eigh(gram.to(torch.float64))
        values, coords = values.cpu().numpy(), (vectors[:, n - modes:].T @ Y).cpu().numpy()
    values, coords = values[::-1] / n, coords[::-1]
    keep = values > values[0] * 1e-13 if values[0] > 0 else values > 0
    resolved = min(modes, int(keep.sum()))
    rest = values[resolved:][keep[resolved:]]
    power = {}
    for j, name in enumerate(names):
        head = coords[:resolved, j] ** 2 / n
        remainder = max(float((Y[:, j] ** 2).sum()) / n - head.sum(), 0.0)
        power[name] = np.concatenate([head, remainder * rest / rest.sum() if len(rest) else []])
    return Spectrum(values[keep].copy(), np.ones(int(keep.sum())), power)


def _tridiagonalize(gram: torch.Tensor, Y: np.ndarray, overwrite: bool):
    """LAPACK ``dsytrd``: :math:`K = Q T Q^\top`; the diagonal and off-diagonal of T and
    :math:`Q^\top Y`. A copy of ``gram`` made here is overwritten (never a second one)."""
    given = gram.numpy() if gram.dtype == torch.float64 else None
    a = gram.to(torch.float64).numpy()
    del gram
    a = a.T if a.flags.c_contiguous else np.asfortranarray(a)  # symmetric: the transpose is a
    own_copy = given is None or not np.may_share_memory(a, given)
    del given
    n = a.shape[0]
    lwork = int(lapack.dsytrd_lwork(n, lower=1)[0])
    reflectors, diagonal, offdiagonal, tau, info = lapack.dsytrd(
        a, lower=1, lwork=lwork, overwrite_a=int(overwrite or own_copy))
    if info != 0:
        raise RuntimeError(f"LAPACK dsytrd failed (info {info})")
    del a
    Y = np.array(Y, dtype=np.float64)
    for i in range(n - 1):  # Q^T Y = H_{n-1} ... H_1 Y, H_i = I - tau_i v v^T
        v = reflectors[i + 1:, i].copy()
        v[0] = 1.0
        Y[i + 1:] -= tau[i] * np.outer(v, v @ Y[i + 1:])
    return diagonal, offdiagonal, Y


def _top_coordinates(diagonal: np.ndarray, offdiagonal: np.ndarray, rotated: np.ndarray,
                     modes: int):
    """Eigenvalues (increasing) of the tridiagonal T and the coordinates of ``rotated``
    (:math:`Q^\top Y`) on the eigenvectors of its largest ``modes`` (MRRR, ``dstemr``)."""
    n = len(diagonal)
    values = linalg.eigh_tridiagonal(diagonal, offdiagonal, eigvals_only=True)
    _, vectors = linalg.eigh_tridiagonal(diagonal, offdiagonal, select="i",
                                         select_range=(n - modes, n - 1), lapack_driver="stemr")
    return values, vectors.T @ rotated


def power_law_fit(spectrum: Spectrum, start: int, stop: int) -> tuple[float, float]:
    r"""Least-squares fit of :math:`\lambda_i \approx C\,i^{-\alpha}` in log-log on modes
    [start, stop).

    Parameters
    ----------
    spectrum : Spectrum
        A sampled spectrum (multiplicities 1).
    start, stop : int
        Mode range (1-based start, exclusive stop).

    Returns
    -------
    (float, float)
        C and alpha.
    """
    index = np.cumsum(spectrum.multiplicity) - (spectrum.multiplicity - 1) / 2
    use = (index >= start) & (index < stop)
    if use.sum() < 4:
        raise ConfigError(f"a tail fit needs at least 4 eigenspaces in [{start}, {stop})")
    slope, intercept = np.polyfit(np.log(index[use]), np.log(spectrum.eigenvalues[use]), 1)
    return float(np.exp(intercept)), float(-slope)


TAIL_SHAPES = ("power", "sample")


def with_tail(spectrum: Spectrum, keep: int, fit: tuple[int, int], until: float,
              total_power: dict | None = None, bins: int = 200, trace: float | None = None,
              shape: str = "power") -> Spectrum:
    r"""The top ``keep`` modes of ``spectrum`` and a tail below them that carries the missing
    trace.

    The tail's mass is fixed, not fitted: :math:`m = \operatorname{tr} - \sum_{i\le k}
    \lambda_i`, with :math:`\operatorname{tr} = \mathbb E\,k(x, x)` when ``trace`` is given
    (else the sampled modes' own sum). Only its shape is modelled:

    - ``power``: :math:`\lambda_i = \min(\lambda_k, C i^{-\alpha})` for i from k+1 to
      ``until``, :math:`\alpha` fitted on ``fit`` (any :math:`\alpha > 0`: the tail ends at
      ``until``, so it needs no trace-class exponent) and C set so that the tail's mass is m;
      in log-spaced bins;
    - ``sample``: the sampled modes below the kept ones, rescaled to mass m.

    Where the fit range holds fewer than 4 positive eigenspaces or a non-decaying spectrum,
    ``power`` falls back to ``sample``; where m <= 0 (a finite-rank kernel) there is no tail,
    and a sample with fewer positive modes than ``keep`` keeps them all.
    The target power of the sampled modes below the kept ones is spread over the tail in
    proportion to the eigenvalues (``power``) or kept per mode (``sample``), and given the exact
    :math:`\mathbb E f^{*2}` every target's power is rescaled to it.

    Parameters
    ----------
    spectrum : Spectrum
        A sampled spectrum (multiplicities 1).
    keep : int
        Modes kept as sampled.
    fit : (int, int)
        Mode range of the power-law fit of the tail's shape.
    until : float
        Last mode of a ``power`` tail (a large multiple of the sample size).
    total_power : dict of str to float, optional
        Each target's exact :math:`\mathbb E f^{*2}`: the powers are rescaled to it.
    bins : int
        Log-spaced bins of a ``power`` tail.
    trace : float, optional
        The kernel's trace :math:`\mathbb E\,k(x, x)` on the data measure.
    shape : str
        ``power`` or ``sample``.

    Returns
    -------
    Spectrum
    """
    keep = min(positive_int("keep", keep), len(spectrum.eigenvalues))  # a low-rank kernel
    if shape not in TAIL_SHAPES:
        raise ConfigError(f"shape must be one of {', '.join(TAIL_SHAPES)} (got {shape!r})")
    lam, mult = spectrum.eigenvalues, spectrum.multiplicity
    below = float((lam[keep:] * mult[keep:]).sum())
    mass = below if trace is None else float(trace) - float((lam[:keep] * mult[:keep]).sum())
    alpha = tail_exponent(spectrum, *fit) if shape == "power" else None
    if mass <= 1e-12 * float((lam * mult).sum()) or (alpha is None and below <= 0):
        tail_lam, tail_mult, share = np.zeros(0), np.zeros(0), None
    elif alpha is None:
        tail_lam, tail_mult = lam[keep:] * (mass / below), mult[keep:]
        share = None
    else:
        edges = np.unique(np.geomspace(keep + 1, until, bins + 1).round())
        tail_mult = np.diff(edges)
        mids = np.sqrt(edges[:-1] * (edges[1:] - 1).clip(min=edges[:-1]))
        tail_lam = _capped_law(mids ** -alpha, tail_mult, lam[keep - 1], mass)
        share = tail_lam * tail_mult / (tail_lam * tail_mult).sum()
    power = {}
    for name, p in spectrum.power.items():
        scale = 1.0 if total_power is None else float(total_power[name]) / float(p.sum())
        rest = p[keep:] if share is None else float(p[keep:].sum()) * share
        if not len(tail_lam):  # no tail: the power below the kept modes stays on the last one
            head = p[:keep].copy()
            head[-1] += float(p[keep:].sum())
            power[name] = head * scale
        else:
            power[name] = np.concatenate([p[:keep], rest]) * scale
    return Spectrum(np.concatenate([lam[:keep], tail_lam]),
                    np.concatenate([mult[:keep], tail_mult]), power)


def tail_exponent(spectrum: Spectrum, start: int, stop: int) -> float | None:
    """The decay exponent of a power law fitted on modes [start, stop), or None where the
    range holds fewer than 4 eigenspaces or the fit does not decay."""
    index = np.cumsum(spectrum.multiplicity) - (spectrum.multiplicity - 1) / 2
    if ((index >= start) & (index < stop)).sum() < 4:
        return None
    alpha = power_law_fit(spectrum, start, stop)[1]
    return alpha if alpha > 0 else None


def _capped_law(law: np.ndarray, mult: np.ndarray, cap: float, mass: float) -> np.ndarray:
    r""":math:`\min(\mathrm{cap}, C\,\mathrm{law})` with C such that the mass is ``mass``
    (bisection in log C: the mass grows with C up to cap times the modes)."""
    if cap * mult.sum() <= mass:
        return np.full_like(law, mass / mult.sum())
    lo, hi = np.log(mass / (law * mult).sum()), np.log(cap / law.min())
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (np.minimum(cap, np.exp(mid) * law) * mult).sum() < mass:
            lo = mid
        else:
            hi = mid
    return np.minimum(cap, np.exp(hi) * law)


def compress(spectrum: Spectrum, keep: int = 256, rtol: float = 0.01) -> Spectrum:
    """Bin the eigenspaces below the top ``keep`` by eigenvalue (relative width ``rtol``).

    A bin's eigenvalue is its multiplicity-weighted mean and its power the sum, so the trace
    and every target's power are kept exactly; the learning curves change by O(rtol).

    Parameters
    ----------
    spectrum : Spectrum
    keep : int
        Leading eigenspaces kept as they are.
    rtol : float
        Relative width of a bin.

    Returns
    -------
    Spectrum
    """
    lam, mult = spectrum.eigenvalues, spectrum.multiplicity
    if len(lam) <= keep:
        return spectrum
    head = slice(0, keep)
    key = np.floor(np.log(lam[keep:]) / np.log1p(rtol)).astype(np.int64)
    _, start = np.unique(-key, return_index=True)  # groups of equal key, in order
    bounds = np.append(start, len(key))
    tail_mult = np.add.reduceat(mult[keep:], bounds[:-1])
    tail_lam = np.add.reduceat(mult[keep:] * lam[keep:], bounds[:-1]) / tail_mult
    power = {name: np.concatenate([p[head], np.add.reduceat(p[keep:], bounds[:-1])])
             for name, p in spectrum.power.items()}
    return Spectrum(np.concatenate([lam[head], tail_lam]),
                    np.concatenate([mult[head], tail_mult]), power)
