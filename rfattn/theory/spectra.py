r"""Spectra of kernel integral operators estimated from a sample, with a fitted tail.

From a Gram matrix :math:`K_s` on :math:`n_s` fresh samples of the data distribution: the
operator's eigenvalues are approximated by those of :math:`K_s/n_s`, its eigenfunctions on the
sample by :math:`\sqrt{n_s}\,u_i`, and a target's coefficients by
:math:`v_i = u_i^\top f^*(X_s)/\sqrt{n_s}` (Parseval: :math:`\sum_i v_i^2` is the sample's mean
of :math:`f^{*2}`; the constant mode carries :math:`(\mathbb E f^*)^2` for an uncentred target).

Only the top modes of a sample are accurate: predictions at n close to :math:`n_s` need the
tail. :func:`with_tail` keeps the top ``keep`` sampled eigenspaces, fits a power law
:math:`\lambda_i \approx C i^{-\alpha}` to the sampled spectrum below them, and continues it
to a large index in log-spaced bins; the target power of the sample's modes below the kept
ones (the sample's estimate of the tail's power) is spread over the tail in proportion to its
eigenvalues; given the exact :math:`\mathbb E f^{*2}`, all powers are rescaled to it (the
sample's mean of :math:`f^{*2}` is off by its sampling error). :func:`compress` bins
eigenspaces of nearly equal eigenvalue so that the learning-curve equations run over a few
hundred eigenspaces.
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
        Let the CPU path overwrite a float64 ``gram`` (saves a copy of it).

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
        values, coords = _tridiagonal_eigh(gram, Y.numpy(), modes, overwrite)
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


def _tridiagonal_eigh(gram: torch.Tensor, Y: np.ndarray, modes: int, overwrite: bool):
    """Eigenvalues (increasing) of a symmetric matrix and the coordinates U^T Y of Y on the
    eigenvectors of the largest ``modes`` of them."""
    a = gram.to(torch.float64).numpy()
    a = a.T if a.flags.c_contiguous else np.asfortranarray(a)  # symmetric: the transpose is a
    n = a.shape[0]
    lwork = int(lapack.dsytrd_lwork(n, lower=1)[0])
    reflectors, diagonal, offdiagonal, tau, info = lapack.dsytrd(
        a, lower=1, lwork=lwork, overwrite_a=int(overwrite and gram.dtype == torch.float64))
    if info != 0:
        raise RuntimeError(f"LAPACK dsytrd failed (info {info})")
    Y = np.array(Y, dtype=np.float64)
    for i in range(n - 1):  # Q^T Y = H_{n-1} ... H_1 Y, H_i = I - tau_i v v^T
        v = reflectors[i + 1:, i].copy()
        v[0] = 1.0
        Y[i + 1:] -= tau[i] * np.outer(v, v @ Y[i + 1:])
    del reflectors, a
    values = linalg.eigh_tridiagonal(diagonal, offdiagonal, eigvals_only=True)
    _, vectors = linalg.eigh_tridiagonal(diagonal, offdiagonal, select="i",
                                         select_range=(n - modes, n - 1), lapack_driver="stemr")
    return values, vectors.T @ Y


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


def with_tail(spectrum: Spectrum, keep: int, fit: tuple[int, int], until: float,
              total_power: dict | None = None, bins: int = 200) -> Spectrum:
    """The top ``keep`` modes of ``spectrum`` and a power-law tail to mode ``until``.

    Parameters
    ----------
    spectrum : Spectrum
        A sampled spectrum (multiplicities 1).
    keep : int
        Modes kept as sampled.
    fit : (int, int)
        Mode range of the power-law fit.
    until : float
        Last mode of the tail (a large multiple of the sample size).
    total_power : dict of str to float, optional
        Each target's exact :math:`\\mathbb E f^{*2}`: the powers are rescaled to it.
    bins : int
        Log-spaced bins of the tail.

    Returns
    -------
    Spectrum
    """
    keep = positive_int("keep", keep)
    if keep >= len(spectrum.eigenvalues):
        raise ConfigError(f"keep must be below the {len(spectrum.eigenvalues)} sampled modes")
    C, alpha = power_law_fit(spectrum, *fit)
    if not alpha > 1:
        raise ConfigError(f"the fitted tail decays like i^-{alpha:.2f}: a trace-class kernel "
                          "needs alpha > 1; fit on a larger sample or another range")
    edges = np.unique(np.geomspace(keep + 1, until, bins + 1).round())
    mult = np.diff(edges)
    mids = np.sqrt(edges[:-1] * (edges[1:] - 1).clip(min=edges[:-1]))
    tail = C * mids ** (-alpha)
    tail = np.minimum(tail, spectrum.eigenvalues[keep - 1])
    eigenvalues = np.concatenate([spectrum.eigenvalues[:keep], tail])
    multiplicity = np.concatenate([spectrum.multiplicity[:keep], mult])
    power = {}
    share = tail * mult / (tail * mult).sum()
    for name, p in spectrum.power.items():
        scale = 1.0 if total_power is None else float(total_power[name]) / float(p.sum())
        power[name] = np.concatenate([p[:keep], float(p[keep:].sum()) * share]) * scale
    return Spectrum(eigenvalues, multiplicity, power)


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
