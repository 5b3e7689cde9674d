r"""The infinite-width kernels of the lab's random-feature models, as Gram matrices on samples.

- ReLU attention (and the ``kernel`` model): :func:`rfattn.rfa.rfa_relu_kernel`, the closed
  form for zero-mean heads (Fu et al. 2023), a one-dimensional quadrature of the rectified
  Gaussian moment for biased heads [ours]; a ``kernel`` model with a user's ``model.kernel``:
  that kernel;
- softmax attention, zero-mean or biased: the Mehler-Hermite expansion,
  :func:`rfattn.rfa.hermite_kernel.hermite_softmax_kernel` [ours] (deterministic; its relative
  truncation bound is recorded as the kernel's error), where its Gauss-Hermite grid of
  ``nodes**d`` points fits (d <= 5 at the default 8 nodes); at larger d, Monte Carlo: over
  antithetic heads with the Taylor control variate for zero-mean heads
  (:func:`rfattn.rfa.softmax_kernel.softmax_attention_kernel`), over fresh heads for biased ones;
- attention with a user's activation: Monte Carlo over fresh heads,
  :func:`rfattn.rfa.monte_carlo_attention_kernel` (these estimates carry the error of their
  finite number of heads, which the study records);
- the RFMLP: :math:`\mathbb E_w[\mathrm{ReLU}\langle w,z\rangle\mathrm{ReLU}\langle w,z'\rangle]`,
  :math:`w\sim\mathcal N(0, s^2 I)`, on :math:`z = [x_0; x_1; \dots; x_N; 1]`, the first-order
  arc-cosine kernel (:func:`rfattn.linalg.relu_arccos_kernel`).

Every Gram matrix is the limit of :math:`\Phi\Phi^\top` of the model's features, the
normalization of :mod:`rfattn.rfa.features` (1/sqrt(M) per head, 1/sqrt(width) for the MLP).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.checks import ConfigError
from ..core.runtime import generator
from ..linalg.blocks import block_rows
from ..linalg.kernels import relu_arccos_kernel
from ..rfa import (ModelSettings, RandomFeatureAttention, monte_carlo_attention_kernel,
                   rfa_relu_kernel, user_kernel)
from ..rfa.hermite_kernel import grid_fits, hermite_softmax_kernel
from ..rfa.settings import bias_c
from ..rfa.softmax_kernel import relative_error, softmax_attention_kernel


ERROR_ROWS = 512  # rows of a Monte Carlo Gram matrix whose spread gives its error


def default_heads_per_draw(mc_heads: int) -> int:
    """Heads of one Monte Carlo draw: at most 256, and at least 8 draws for the error."""
    return max(1, min(256, mc_heads // 8))


def mlp_input(x0: Tensor, X: Tensor) -> Tensor:
    """The RFMLP's input :math:`z = [x_0; x_1; \\dots; x_N; 1]`, (n, (N+1) d + 1)."""
    z = torch.cat([x0[:, None], X], 1).flatten(1)
    return torch.cat([z, torch.ones_like(z[:, :1])], 1)


def model_gram(model: ModelSettings, d: int, x0: Tensor, X: Tensor, seed: int,
               mc_heads: int, heads_per_draw: int | None = None) -> tuple[Tensor, float]:
    """The infinite-width kernel of ``model`` on the samples (x0, X), and its error: 0 for a
    closed form, the relative Frobenius norm of the truncation bound for the Mehler-Hermite
    expansion of softmax heads, and for Monte Carlo the Frobenius norm of the entrywise
    standard errors relative to that of the kernel, on its first :data:`ERROR_ROWS` rows (the
    samples are independent). The Gram matrix is the only (n, n) matrix built: a closed form
    or an expansion by row blocks, a Monte Carlo kernel accumulated in place.

    Parameters
    ----------
    model : rfattn.rfa.ModelSettings
        An RFA model config (``conf/model/``).
    d : int
        Token dimension.
    x0, X : Tensor
        Queries (n, d) and keys (n, N, d).
    seed : int
        Seed of the Monte Carlo heads (stream ``(seed, "theory", "heads", ...)``).
    mc_heads : int
        Heads of a Monte Carlo kernel.
    heads_per_draw : int, optional
        Heads drawn at once (default: :func:`default_heads_per_draw`).

    Returns
    -------
    (Tensor, float)
    """
    if model.closed_form:
        return closed_form_kernel(model, x0, X), 0.0
    if model.family != "attention":
        raise ConfigError(f"model.family {model.family!r} has no kernel here")
    c = bias_c(model, d)
    if model.activation == "softmax" and grid_fits(d):
        return hermite_softmax_kernel(x0, X, None, None, model.qk_variance, c)
    heads_per_draw = heads_per_draw or default_heads_per_draw(mc_heads)
    if model.activation == "softmax" and model.qk_mean == "zero":
        kernel, stderr = softmax_attention_kernel(x0, X, None, None, model.qk_variance, mc_heads,
                                                  seed, heads_per_draw, ERROR_ROWS)
        return kernel, relative_error(kernel, stderr)

    def heads(m: int, draw: int) -> RandomFeatureAttention:
        return RandomFeatureAttention.sample(m, d, generator(seed, "theory", "heads", draw),
                                             model.activation, model.qk_mean,
                                             model.qk_variance, c, x0.dtype, x0.device)

    mean, stderr = monte_carlo_attention_kernel(x0, X, None, None, heads, mc_heads,
                                                heads_per_draw, error_rows=ERROR_ROWS)
    scale = float(mean[:ERROR_ROWS].norm())
    return mean, float(stderr.norm()) / scale if scale > 0 else math.inf


def closed_form_kernel(model: ModelSettings, x0a: Tensor, Xa: Tensor, x0b: Tensor | None = None,
                       Xb: Tensor | None = None) -> Tensor:
    """The closed-form infinite-width kernel of ``model`` between two samples (the Gram
    matrix of the first when the second is omitted): a user's ``model.kernel``, zero-mean ReLU
    attention (and the ``kernel`` model), or the RFMLP's arc-cosine kernel.

    Parameters
    ----------
    model : rfattn.rfa.ModelSettings
        A model with ``closed_form`` true.
    x0a, Xa : Tensor
        Queries (na, d) and keys (na, N, d).
    x0b, Xb : Tensor, optional
        A second sample.

    Returns
    -------
    Tensor
        (na, nb).
    """
    if not model.closed_form:
        raise ConfigError(f"model {model.name!r} has no closed-form kernel (softmax attention "
                          "is a Monte Carlo average)")
    if model.kernel is None and model.family == "attention":
        return rfa_relu_kernel(x0a, Xa, x0b, Xb, variance=model.qk_variance,
                               c=bias_c(model, x0a.shape[1]))
    if x0b is None:
        x0b, Xb = x0a, Xa
    if model.kernel is not None:
        def pair(x0r, Xr):
            return user_kernel(model.kernel, x0r, Xr, x0b, Xb)
    else:
        zb = mlp_input(x0b, Xb)
        zb_norms = (zb * zb).sum(1)
        variance = 1.0 / (Xa.shape[1] + 2)  # as RandomFeatureMLP.sample

        def pair(x0r, Xr):
            za = mlp_input(x0r, Xr)
            return relu_arccos_kernel(za @ zb.T, (za * za).sum(1)[:, None] * zb_norms, variance)
    out = torch.empty(x0a.shape[0], x0b.shape[0], dtype=x0a.dtype, device=x0a.device)
    step = block_rows(4 * out.element_size() * out.shape[1], None, out.device)
    for start in range(0, out.shape[0], step):  # row blocks: no (na, nb) temporaries
        out[start:start + step] = pair(x0a[start:start + step], Xa[start:start + step])
    return out

