r"""Infinite-head kernels of random-feature attention (Fu et al. 2023, arXiv 2307.11353).

For zero-mean ReLU attention with entry variance :math:`s^2` and the :math:`1/\sqrt M` feature
scaling of :mod:`rfattn.rfa.features`, the feature inner product converges as
:math:`M\to\infty` to

.. math::  K((x_0,X),(x_0',X')) = \frac{1}{N^2}\sum_{i,j} k(u_i, u'_j)\,
           \langle\tilde x_i,\tilde x'_j\rangle, \qquad
           u_i = \mathrm{vec}(\tilde x_0\tilde x_i^\top),

with the first-order arc-cosine kernel (Cho & Saul 2009)

.. math::  k(u,u') = \mathbb E_W[\mathrm{ReLU}\langle W,u\rangle \mathrm{ReLU}\langle W,u'\rangle]
           = \frac{s^2}{2\pi}\Big(\sqrt{\|u\|^2\|u'\|^2-\langle u,u'\rangle^2}
           + (\pi-\theta)\langle u,u'\rangle\Big),

:math:`\cos\theta = \langle u,u'\rangle/(\|u\|\|u'\|)` and
:math:`\langle u_i,u'_j\rangle =
\langle\tilde x_0,\tilde x_0'\rangle\langle\tilde x_i,\tilde x'_j\rangle`.
Kernel ridge regression with K is the reference that finite-M RFA approaches; it is also the
NTK of value-only training. Biased and softmax attention have no simple closed form:
:func:`monte_carlo_attention_kernel` averages the finite-head kernel over fresh heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.checks import ConfigError, positive, positive_int
from ..core.plugins import call_plugin, load_plugin
from ..core.runtime import generator, progress
from ..linalg.blocks import block_rows
from ..linalg.kernels import add_gram_, arccos_angular_, rectified_gaussian_moment
from ..linalg.montecarlo import RunningMean
from .features import RandomFeatureAttention
from .sampling import augment, check_tokens, sample_tokens


def rfa_relu_kernel(x0a: Tensor, Xa: Tensor, x0b: Tensor | None = None, Xb: Tensor | None = None,
                    variance: float = 0.25, block_bytes: int | None = None,
                    c: float = 0.0) -> Tensor:
    r"""Infinite-head kernel of ReLU random-feature attention, zero-mean or biased, (na, nb).

    Head matrices :math:`W = c\,\mathrm{blockdiag}(I_d, 0) + sG` (G standard Gaussian; c = 0:
    zero-mean heads). The score of key i, :math:`z_i = \langle W, \tilde x_0\tilde x_i^\top
    \rangle`, is Gaussian with mean :math:`\mu_i = c\langle x_0, x_i\rangle` and standard
    deviation :math:`\sigma_i = s\|\tilde x_0\|\|\tilde x_i\|`; scores of two samples
    have correlation :math:`\rho_{ij} = c_q c_{ij}`, the product of the cosines of the
    augmented queries and of keys i, j. The kernel averages over the :math:`N^2` pairs

    .. math::  K = \frac{1}{N^2}\sum_{i,j}\sigma_i\sigma'_j\,
               R(\mu_i/\sigma_i, \mu'_j/\sigma'_j, \rho_{ij})\,
               \langle\tilde x_i, \tilde x'_j\rangle,

    with the rectified Gaussian moment R
    (:func:`~rfattn.linalg.kernels.rectified_gaussian_moment`). For c = 0 it is
    :math:`J_1(\rho)/(2\pi)`, :math:`J_1(c)=\sqrt{1-c^2}+(\pi-\arccos c)\,c`, in closed
    form (Fu et al. 2023, the arc-cosine kernel of Cho and Saul 2009); for c != 0 [ours]
    by Gauss-Legendre quadrature with 6 nodes (the kernel to 3e-9, relative Frobenius, against
    96 nodes, at c = sqrt(d)/2 and 2 sqrt(d), d = 4).

    Parameters
    ----------
    x0a, Xa : Tensor
        Queries (na, d) and keys (na, N, d).
    x0b, Xb : Tensor or None
        The second sample; None for the symmetric Gram matrix of the first (built from its upper
        blocks only).
    variance : float
        Entry variance :math:`s^2` of the query-key matrices (> 0).
    block_bytes : int, optional
        Bytes per temporary (default: cache-sized on the CPU, large on a GPU; see
        :func:`~rfattn.linalg.blocks.block_rows`).
    c : float
        Bias scale of biased heads (:func:`~rfattn.rfa.sample_query_key`); 0 for zero-mean.

    Returns
    -------
    Tensor
        The kernel matrix, (na, nb).
    """
    variance = positive("qk_variance", variance)
    if not math.isfinite(c):
        raise ConfigError(f"c must be finite (got {c!r})")
    symmetric = x0b is None
    if symmetric:
        x0b, Xb = x0a, Xa
    check_tokens(x0a, Xa, where="a: ")
    check_tokens(x0b, Xb, where="b: ")
    if Xa.shape[1:] != Xb.shape[1:]:
        raise ConfigError(f"token shapes differ: {tuple(Xa.shape)} vs {tuple(Xb.shape)}")
    qa, qb, ka, kb = augment(x0a), augment(x0b), augment(Xa), augment(Xb)
    na, nb, N = qa.shape[0], qb.shape[0], ka.shape[1]
    qna, qnb = qa.norm(dim=-1), qb.norm(dim=-1)
    qa_unit, qb_unit = qa / qna[:, None], qb / qnb[:, None]
    kna, knb = ka.norm(dim=-1), kb.norm(dim=-1)  # (n, N)
    ua = (ka / kna[..., None]).reshape(na * N, -1)
    ub = (kb / knb[..., None]).reshape(nb * N, -1)
    wa, wb = (kna * kna).reshape(-1), (knb * knb).reshape(-1)
    scale = variance / (2 * math.pi) / N**2
    if c != 0:  # the scores' means over their standard deviations, (n, N)
        ratio_a, ratio_b = (c * torch.einsum("nd,nid->ni", x0, X) / (qn[:, None] * kn)
                            / variance**0.5
                            for x0, X, qn, kn in ((x0a, Xa, qna, kna), (x0b, Xb, qnb, knb)))
    out = torch.empty(na, nb, dtype=qa.dtype, device=qa.device)
    step = block_rows(qa.element_size() * N * N * nb, block_bytes, qa.device)
    for s in progress(range(0, na, step), "attention kernel"):
        e = min(s + step, na)
        c0 = s if symmetric else 0  # columns left of the diagonal block come by symmetry
        ck = (ua[s * N:e * N] @ ub[c0 * N:].T).view(e - s, N, nb - c0, N)
        cq = qa_unit[s:e] @ qb_unit[c0:].T  # cosines of the queries, (e - s, nb - c0)
        if c == 0:
            t, _ = arccos_angular_(ck * cq[:, None, :, None])
        else:  # 2 pi R: the zero-mean J_1 with the scores' means
            t = rectified_gaussian_moment(ratio_a[s:e, :, None, None], ratio_b[None, None, c0:],
                                          ck * cq[:, None, :, None]).mul_(2 * math.pi)
        ck.mul_(wa[s * N:e * N].view(e - s, N, 1, 1)).mul_(wb[c0 * N:].view(1, 1, nb - c0, N))
        block = (t.mul_(ck)).sum((1, 3)).mul_(qna[s:e, None] * qnb[None, c0:] * scale)
        out[s:e, c0:] = block
        if symmetric:
            out[e:, s:e] = block[:, e - c0:].T
    return out


def monte_carlo_attention_kernel(x0a: Tensor, Xa: Tensor, x0b: Tensor | None,
                                 Xb: Tensor | None,
                                 sample_heads: Callable[[int, int], RandomFeatureAttention],
                                 total_heads: int, heads_per_draw: int = 256,
                                 error_rows: int | None = None,
                                 control: Callable[..., Tensor] | None = None
                                 ) -> tuple[Tensor, Tensor]:
    r"""Monte Carlo estimate of :math:`\lim_M \Phi_a\Phi_b^\top` for any attention variant.

    The estimate :math:`\sum_k (m_k/M)\,\Phi_a^{(k)}\Phi_b^{(k)\top}` over draws k of
    :math:`m_k` heads is accumulated in place (one (na, nb) matrix); the entrywise standard
    error comes from the spread of the per-draw kernels on the first ``error_rows`` rows.

    Parameters
    ----------
    x0a, Xa : Tensor
        Queries (na, d) and keys (na, N, d) of the first sample.
    x0b, Xb : Tensor or None
        The second sample; None for the symmetric Gram matrix of the first
        (:func:`~rfattn.linalg.add_gram_`).
    sample_heads : callable
        ``sample_heads(m, draw)`` returns ``m`` fresh heads as a
        :class:`RandomFeatureAttention` (draw = 0, 1, ...).
    total_heads : int
        Heads in all.
    heads_per_draw : int
        Heads per draw; the standard error comes from the spread of the per-draw kernels.
    error_rows : int, optional
        Rows whose standard error is estimated (default: all). The samples being independent,
        a row subsample estimates the relative error of the whole matrix without two more
        (na, nb) matrices.
    control : callable, optional
        ``control(heads, x0, X)``: features :math:`\psi` of the same heads whose kernel the
        caller knows; each draw then adds :math:`\Phi\Phi'^\top - \Psi\Psi'^\top`, and the
        caller adds the kernel of :math:`\psi` (:mod:`rfattn.rfa.softmax_kernel`).

    Returns
    -------
    (Tensor, Tensor)
        The kernel (na, nb) (less that of the control) and the entrywise standard error of its
        first ``error_rows`` rows (infinite with a single draw).
    """
    total_heads = positive_int("total_heads", total_heads)
    heads_per_draw = positive_int("heads_per_draw", min(heads_per_draw, total_heads))
    na = x0a.shape[0]
    rows = na if error_rows is None else min(positive_int("error_rows", error_rows), na)
    nb = na if x0b is None else x0b.shape[0]
    blocks = max(4, -(-na // block_rows(x0a.element_size() * nb, 256 * 2**20)))
    draws = math.ceil(total_heads / heads_per_draw)
    kernel = torch.zeros(na, nb, dtype=x0a.dtype, device=x0a.device)
    spread = RunningMean()
    for k in range(draws):
        m = min(heads_per_draw, total_heads - k * heads_per_draw)
        rfa = sample_heads(m, k)
        phi = rfa.features(x0a, Xa)
        phi_b = phi if x0b is None else rfa.features(x0b, Xb)
        # each draw's kernel is an average over its m heads: weight m
        if x0b is None:
            add_gram_(kernel, phi, alpha=m / total_heads, blocks=blocks)
        else:
            kernel.addmm_(phi, phi_b.T, alpha=m / total_heads)
        draw = phi[:rows] @ phi_b.T
        if control is not None:
            psi = control(rfa, x0a, Xa)
            psi_b = psi if x0b is None else control(rfa, x0b, Xb)
            if x0b is None:
                add_gram_(kernel, psi, alpha=-m / total_heads, blocks=blocks)
            else:
                kernel.addmm_(psi, psi_b.T, alpha=-m / total_heads)
            draw -= psi[:rows] @ psi_b.T
        spread.add(draw, weight=m)
    return kernel, spread.stderr


KERNEL_SIGNATURE = "k(x0 (n, d), X (n, N, d), y0 (m, d), Y (m, N, d)) -> (n, m)"


def check_kernel(setting: str, spec: str, d: int, N: int) -> Callable:
    """Load a user's kernel on samples ``module:function`` and check it on sphere tokens:
    the shape (n, m), finite values and symmetry of its Gram matrix.

    Parameters
    ----------
    setting : str
        The config key (``model.kernel``), for the error message.
    spec : str
        ``module:function`` with the signature of :data:`KERNEL_SIGNATURE`.
    d, N : int
        Token dimension and keys per sample of the job.

    Returns
    -------
    callable
        The kernel.

    Raises
    ------
    ConfigError
        One line naming the setting.
    """
    fn = load_plugin(setting, spec)
    x0, X = sample_tokens(7, N, d, generator(0, "kernel-check"))
    y0, Y = sample_tokens(5, N, d, generator(1, "kernel-check"))
    call_plugin(setting, spec, fn, x0, X, y0, Y, shape=(7, 5), signature=KERNEL_SIGNATURE)
    gram = call_plugin(setting, spec, fn, x0, X, x0, X, shape=(7, 7),
                       signature=KERNEL_SIGNATURE)
    if not torch.allclose(gram, gram.T, rtol=1e-8, atol=1e-10 * float(gram.abs().max())):
        raise ConfigError(f"{setting}={spec}: a kernel must be symmetric (k(a, b) = k(b, a))")
    return fn


def user_kernel(spec: str, x0a: Tensor, Xa: Tensor, x0b: Tensor | None = None,
                Xb: Tensor | None = None) -> Tensor:
    """A user's kernel ``module:function`` (:func:`check_kernel`) on two samples (the Gram
    matrix of the first when the second is omitted), in the tokens' dtype and device.

    Parameters
    ----------
    spec : str
        ``module:function``.
    x0a, Xa : Tensor
        Queries (n, d) and keys (n, N, d).
    x0b, Xb : Tensor, optional
        A second sample (m, d) and (m, N, d).

    Returns
    -------
    Tensor
        (n, m).
    """
    fn = load_plugin("model.kernel", spec)
    if x0b is None:
        x0b, Xb = x0a, Xa
    return torch.as_tensor(fn(x0a, Xa, x0b, Xb)).to(x0a)
