r"""Token and query-key samplers for random-feature attention (Fu et al. 2023, arXiv 2307.11353).

Tokens: one query :math:`x_0` and :math:`N` keys :math:`x_1..x_N` in :math:`\mathbb R^d`,

- ``sphere`` (default, the paper's setting): i.i.d. uniform on :math:`S^{d-1}`;
- ``gaussian``: i.i.d. :math:`\mathcal N(0, I_d/d)`, the same second moment.

Query-key matrices :math:`W_m \in \mathbb R^{(d+1)\times(d+1)}` act on :math:`\tilde x=[x;1]`:

- ``zero``: entries i.i.d. :math:`\mathcal N(0, s^2)`; with sphere tokens
  :math:`\|\tilde x_0 \tilde x_i^\top\|_F = 2`, so :math:`s^2=1/4` gives unit-variance scores;
- ``biased``: :math:`W_m = W_0 + G_m`, :math:`W_0 = c\,\mathrm{blockdiag}(I_d, 0)`, so each head
  sees the similarity :math:`c\langle x_0, x_i\rangle` directly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.checks import ConfigError, choice, finite_array, nonnegative, positive_int

TOKEN_DISTRIBUTIONS = ("sphere", "gaussian")
QK_MEANS = ("zero", "biased")


def sample_tokens(n: int, N: int, d: int, generator: torch.Generator,
                  distribution: str = "sphere", dtype: torch.dtype = torch.float64,
                  device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Draw ``n`` samples of a query and ``N`` keys.

    Parameters
    ----------
    n, N, d : int
        Samples, keys per sample and token dimension.
    generator : torch.Generator
        The random stream.
    distribution : str
        ``sphere`` (uniform on the unit sphere, the paper's) or ``gaussian`` (:math:`N(0, I/d)`).
    dtype, device
        Of the result (the draw is made on the CPU in float64).

    Returns
    -------
    (Tensor, Tensor)
        Queries ``x0`` (n, d) and keys ``X`` (n, N, d).
    """
    n, N, d = positive_int("n", n), positive_int("N", N), positive_int("d", d)
    choice("tokens", distribution, TOKEN_DISTRIBUTIONS)
    z = torch.randn(n, N + 1, d, generator=generator, dtype=torch.float64)
    z = z / z.norm(dim=-1, keepdim=True) if distribution == "sphere" else z / d**0.5
    z = z.to(device=device, dtype=dtype)
    return z[:, 0], z[:, 1:]


def check_tokens(x0: Tensor, X: Tensor, d: int | None = None, where: str = "") -> None:
    """Queries (n, d) and keys (n, N, d) of matching sizes, finite (d: the expected width)."""
    if x0.ndim != 2 or X.ndim != 3 or X.shape[0] != x0.shape[0] or X.shape[2] != x0.shape[1]:
        raise ConfigError(f"{where}x0 must be (n, d) and X (n, N, d); got {tuple(x0.shape)} and "
                          f"{tuple(X.shape)}")
    if d is not None and x0.shape[1] != d:
        raise ConfigError(f"{where}tokens have d={x0.shape[1]} but the model was drawn for d={d}")
    finite_array(f"{where}x0", x0)
    finite_array(f"{where}X", X)


def augment(x: Tensor) -> Tensor:
    r"""Append the constant coordinate: :math:`\tilde x = [x; 1]`."""
    return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)


def sample_query_key(M: int, d: int, generator: torch.Generator, mean: str = "zero",
                     variance: float = 0.25, c: float = 0.0,
                     dtype: torch.dtype = torch.float64,
                     device: torch.device | str = "cpu") -> Tensor:
    r"""Draw ``M`` frozen query-key matrices, shape (M, d+1, d+1).

    Entries are i.i.d. :math:`N(0, s^2)`; ``mean="biased"`` adds
    :math:`c\,\mathrm{blockdiag}(I_d, 0)` to each (Fu et al. 2023, biased sampling).

    Parameters
    ----------
    M, d : int
        Heads and token dimension.
    generator : torch.Generator
        The random stream (:func:`rfattn.core.generator`).
    mean : str
        ``zero`` or ``biased``.
    variance : float
        Entry variance :math:`s^2` >= 0 (> 0 for zero-mean heads, whose features would
        all vanish).
    c : float
        Bias scale (``biased`` only).
    dtype, device
        Of the result (the draw is made on the CPU in float64).

    Returns
    -------
    Tensor
        (M, d+1, d+1).
    """
    M, d = positive_int("M", M), positive_int("d", d)
    choice("qk_mean", mean, QK_MEANS)
    variance = nonnegative("qk_variance", variance)
    if mean == "zero" and variance == 0:
        raise ConfigError("qk_variance must be > 0 for zero-mean heads: with variance 0 every "
                          "W_m is 0 and every feature vanishes (got 0.0)")
    W = torch.randn(M, d + 1, d + 1, generator=generator, dtype=torch.float64) * variance**0.5
    if mean == "biased":
        if not torch.isfinite(torch.tensor(c)):
            raise ConfigError(f"c must be finite (got {c!r})")
        W[:, :d, :d] += c * torch.eye(d, dtype=torch.float64)
    return W.to(device=device, dtype=dtype)
