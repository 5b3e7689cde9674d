"""Small dense linear algebra through LAPACK directly.

The matrices of the nuclear solver are small (tens to hundreds of rows), where the call
overhead of numpy's wrappers is a large part of the cost; each helper falls back to numpy
when LAPACK reports a failure.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas, lapack


def singular_values(M: np.ndarray) -> np.ndarray:
    """Singular values, largest first (LAPACK dgesdd; numpy's SVD if it fails)."""
    values, info = lapack.dgesdd(M, compute_uv=0)[1::2]
    return values if info == 0 else np.linalg.svd(M, compute_uv=False)


def svd(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U, s, V^T), singular values largest first (LAPACK dgesdd; numpy's SVD if it fails)."""
    left, values, right_t, info = lapack.dgesdd(M)
    return (left, values, right_t) if info == 0 else np.linalg.svd(M)


def revealed_rank(values: np.ndarray) -> int:
    """Rank at the largest ratio of consecutive singular values (largest first)."""
    ratios = values[:-1] / np.maximum(values[1:], 1e-300)
    return int(np.argmax(ratios)) + 1 if len(ratios) else 1


def cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of S; raises LinAlgError when S is not positive definite."""
    L, info = lapack.dpotrf(S, lower=1)
    if info:
        raise np.linalg.LinAlgError(f"matrix not positive definite (dpotrf info {info})")
    return L


def inverse_cholesky(S: np.ndarray) -> np.ndarray:
    """:math:`L^{-1}` for :math:`S = L L^\\top` (raises LinAlgError when S is not PD)."""
    return lapack.dtrtri(cholesky(S), lower=1)[0]


def least_norm(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x of least norm with L x = b (least squares through the SVD when L's rows are dependent)."""
    factor, info = lapack.dpotrf(blas.dsyrk(1.0, L.T, trans=1), lower=0)  # upper of L L^T
    if info:
        return np.linalg.lstsq(L, b, rcond=None)[0]
    return L.T @ lapack.dpotrs(factor, b, lower=0)[0]


def transposed_rows(rows: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The rows of every :math:`A_j^\\top`, stacked: (len(rows) d2, d1)."""
    d1, d2 = shape
    return rows.reshape(-1, d1, d2).transpose(0, 2, 1).reshape(-1, d1)


def factor_rows(rows: np.ndarray, shape: tuple[int, int], P: np.ndarray, Q: np.ndarray,
                transposed: np.ndarray | None = None) -> np.ndarray:
    r"""Row j: :math:`(\mathrm{vec}(A_j Q), \mathrm{vec}(A_j^\top P))`, the linear map
    :math:`(N, M) \mapsto \langle A_j, N Q^\top + P M^\top\rangle`; ``transposed``: the
    rows' :func:`transposed_rows`, when the caller keeps them."""
    k = len(rows)
    if transposed is None:
        transposed = transposed_rows(rows, shape)
    return np.hstack([(rows.reshape(-1, shape[1]) @ Q).reshape(k, -1),
                      (transposed @ P).reshape(k, -1)])
