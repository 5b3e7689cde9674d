r"""Scalable neural network kernel (SNNK) layers (Sehanobish, Choromanski, Zhao, Dubey,
Likhosherstov, "Scalable Neural Network Kernels", ICLR 2024, arXiv 2310.13225).

A feedforward layer :math:`y_k = f(w_k^\top x + b_k)`, k = 1..l, is read as a kernel between
the input and each weight row, :math:`K_f(x, (w_k, b_k))`, and replaced by
:math:`y \approx M\,\phi(x)`: random features :math:`\phi` of the input alone and one
parameter matrix M (l x p), initialised from (W, b) as :math:`\Psi(W, b)`. Both towers share
one Gaussian matrix G (m x d, rows :math:`g_j\sim\mathcal N(0, I_d)`), a registered buffer.

- ``exp``, ``cos``, ``sin`` (universal random features, URFs): for :math:`a^2 = \kappa`,
  :math:`e^{\kappa\,w^\top x} = \mathbb E_g[e^{a g^\top x - a^2\|x\|^2/2}\,
  e^{a g^\top w - a^2\|w\|^2/2}]`; exp takes a = 1 (p = m, positive features); cos and sin
  take :math:`a = e^{i\pi/4}` (:math:`\kappa = i`) and the real or imaginary part, written
  with real features :math:`\phi = [\mathrm{Re}\,\Phi, \mathrm{Im}\,\Phi]` (p = 2m) and a
  real M. The estimate is unbiased; its variance is O(1/m) times a factor growing like
  :math:`e^{c(\|x\|^2 + \|w\|^2)}`, hence ``normalize``.
- ``gerf`` (exp only): the generalized exponential features of FAVOR++ (Likhosherstov et al.
  2022), each side :math:`(1+4\mu)^{d/4} e^{\sqrt{1+4\mu}\,g^\top x - \mu\|g\|^2 -
  \|x\|^2/2}`, unbiased for :math:`\mu > -1/8`; :math:`\mu` minimizes the second moment at
  :math:`\|x + w\|^2 = s^2`: :math:`d t^2 - (d + 2s^2)t - 2s^2 = 0`, :math:`t = 1 + 8\mu`
  [derived here].
- ``relu``: :math:`\phi(x) = \mathrm{ReLU}(Gx)/\sqrt m`, and the same map on the weight rows:
  it estimates the first-order arc-cosine kernel :math:`\mathbb E_g[\mathrm{ReLU}(g^\top x)
  \mathrm{ReLU}(g^\top w)] = \|x\|\|w\|J_1(\cos\theta)/(2\pi)` (Cho and Saul 2009), **not**
  :math:`\mathrm{ReLU}(w^\top x)`: a ReLU-SNNK layer is a different function of the same
  weights, trained as such.
- ``tanh``, ``gelu`` (series features): random Maclaurin features of the Maclaurin series
  truncated at degree 11 (:mod:`rfattn.ntk.snnk_features`); G is then (m, 11, d + 2). tanh's
  series converges for :math:`|w^\top x + b| < \pi/2` only: with ``normalize: none`` the
  layer refuses inputs that reach beyond it.

The towers themselves are in :mod:`rfattn.ntk.snnk_features`. The paper's own implementation
calls ``torch.manual_seed`` in ``forward`` and keeps its ReLU projection outside the state
dict; here G comes from the lab's seeded streams (:func:`rfattn.core.generator`), moves with
``.to()`` and is saved with the parameters.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..core.checks import ConfigError, choice, positive_int
from ..linalg import check_lambdas
from . import random_features
from .snnk_features import (SERIES, TANH_RADIUS, draw_tower, gerf_mu, input_features,
                            series_polynomial, tower_width, weight_features)

SNNK_FEATURES = ("exp", "cos", "sin", "relu", "gerf", *SERIES)
MAX_RELATIVE_VARIANCE = 1.0  # refuse inputs whose features' variance bound exceeds m times this
NORMALIZATIONS = ("none", "unit")
__all__ = ["SNNK_FEATURES", "BundledSNNK", "SNNKLayer", "exact_layer", "gerf_mu",
           "input_features", "normalize_rows", "weight_features"]


def exact_layer(kind: str, x: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """What an SNNK layer estimates, (n, l): :func:`rfattn.ntk.random_features.exact`, or for
    tanh and gelu the truncated Maclaurin series of :mod:`rfattn.ntk.snnk_features`."""
    choice("kind", kind, SNNK_FEATURES)
    if kind in SERIES:
        return series_polynomial(kind, x @ W.T + b)
    return random_features.exact("exp" if kind == "gerf" else kind, x, W, b)


def normalize_rows(x: Tensor) -> Tensor:
    """Rows scaled to unit Euclidean norm (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


class SNNKLayer(nn.Module):
    r"""An SNNK layer: :math:`y = M\,\phi(x)`, M (l x p) trainable, G a buffer.

    Parameters
    ----------
    weight : Tensor
        The dense layer's weights W (l, d), which initialise :math:`M = \Psi(W, b)`.
    bias : Tensor or None
        Its biases b (l,) (zeros when None; not used by relu).
    m : int
        Random features (rows of G).
    kind : str
        One of :data:`SNNK_FEATURES`.
    generator : torch.Generator
        The stream G is drawn from (:func:`rfattn.core.generator`).
    normalize : str
        ``unit``: inputs and weight rows scaled to unit norm (the layer then estimates
        :math:`f(\hat w^\top\hat x + b)`), bounding the variance; ``none``: as given.
    gerf_sq_norm : float, optional
        Typical :math:`\|x + w\|^2` for ``gerf`` (default: 2 with ``unit``, else required).

    Attributes
    ----------
    G : Tensor
        Buffer (m, d), in the state dict.
    M : nn.Parameter
        (l, p).
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, m: int, kind: str,
                 generator: torch.Generator, normalize: str = "unit",
                 gerf_sq_norm: float | None = None):
        super().__init__()
        choice("kind", kind, SNNK_FEATURES)
        choice("normalize", normalize, NORMALIZATIONS)
        m = positive_int("m", m)
        if weight.ndim != 2:
            raise ConfigError(f"weight must be (out_features, in_features) (got "
                              f"{tuple(weight.shape)})")
        l, d = weight.shape
        bias = torch.zeros(l, dtype=weight.dtype) if bias is None else bias
        if bias.shape != (l,):
            raise ConfigError(f"bias must have shape ({l},) (got {tuple(bias.shape)})")
        self.kind, self.normalize = kind, normalize
        if kind == "gerf" and gerf_sq_norm is None:
            if normalize != "unit":
                raise ConfigError("gerf_sq_norm is required with normalize=none (the typical "
                                  "||x + w||^2 that sets mu)")
            gerf_sq_norm = 2.0
        self.mu = gerf_mu(d, gerf_sq_norm) if kind == "gerf" else 0.0
        self.register_buffer("G", draw_tower(kind, m, d, generator).to(weight.dtype))
        if normalize == "unit":
            weight = normalize_rows(weight)
        self.max_weight_norm = float(weight.norm(dim=1).max())
        self.max_extended_norm = float(torch.cat([weight, bias[:, None]], 1).norm(dim=1).max())
        self.M = nn.Parameter(weight_features(kind, weight.detach(), bias.detach(), self.G,
                                              self.mu))

    @property
    def in_features(self) -> int:
        return tower_width(self.kind, self.G)

    def features(self, x: Tensor) -> Tensor:
        """The input tower :math:`\\phi(x)` (n, p): parameter-free."""
        if x.shape[-1] != self.in_features:
            raise ConfigError(f"x must have {self.in_features} features (got {x.shape[-1]})")
        if self.normalize == "unit":
            x = normalize_rows(x)
        elif self.kind not in ("relu", "gelu"):
            self._check_variance(float(x.norm(dim=-1).max()) if len(x) else 0.0)
        return input_features(self.kind, x, self.G, self.mu)

    def _check_variance(self, max_input_norm: float) -> None:
        r"""Refuse inputs whose features have a relative variance above
        ``MAX_RELATIVE_VARIANCE`` per feature average: one exponential feature's second moment
        over the squared kernel is :math:`e^{\|x + w\|^2} \le e^{(\|x\| + \|w\|)^2}`
        (exp, cos, sin)."""
        if self.kind == "tanh":  # |w'^T x'| <= |(x, 1)| |(w, b)| within the series' radius
            reach = math.hypot(max_input_norm, 1.0) * self.max_extended_norm
            if reach >= TANH_RADIUS:
                raise ConfigError(f"x: inputs of norm up to {max_input_norm:.3g} with weight "
                                  f"rows (with biases) up to {self.max_extended_norm:.3g} reach "
                                  f"|w^T x + b| up to {reach:.3g}, beyond tanh's series radius "
                                  f"pi/2 (allowed < {TANH_RADIUS:.4g}); use normalize=unit or "
                                  "smaller inputs")
            return
        exponent = (max_input_norm + self.max_weight_norm) ** 2
        m = self.G.shape[0]
        if exponent > math.log(MAX_RELATIVE_VARIANCE * m):
            raise ConfigError(
                f"x: inputs of norm up to {max_input_norm:.3g} with weight rows up to "
                f"{self.max_weight_norm:.3g} give {self.kind} features a relative variance up to "
                f"e^{exponent:.3g}/m = {math.exp(min(exponent, 700.0)) / m:.3g} (allowed <= "
                f"{MAX_RELATIVE_VARIANCE}); use normalize=unit, smaller inputs or more features")

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x) @ self.M.T


class BundledSNNK(nn.Module):
    r"""The fully bundled SNNK network :math:`y = M\,\bar\phi(x) + c`.

    Bundling (Sehanobish et al. 2024, Fig. 1c; our reading of it): in a network of SNNK layers
    the pre-activation of layer l is :math:`V_l\,\phi_{l-1}(\cdot)` with
    :math:`V_l = W_l M_{l-1}`, so layer l is an SNNK of the features
    :math:`\phi_{l-1}(\cdot)` themselves: :math:`f(V_l u + b_l) \approx
    \Psi_l(V_l, b_l)\,\phi_l(u)`. The input tower :math:`\bar\phi = \phi_L \circ \dots \circ
    \phi_1` has no parameters and the parameter tower collapses to one matrix,
    :math:`M = W_{\mathrm{out}}\Psi_L(W_L \Psi_{L-1}(\dots), b_L)`
    (:meth:`from_mlp`). For the squared loss M and c have a closed form: ridge regression on
    :math:`\bar\phi(x)` (:meth:`fit`), no backpropagation.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    ms : sequence of int
        Random features of each layer (rows of its G).
    kinds : sequence of str
        Features of each layer (:data:`SNNK_FEATURES`).
    generator : torch.Generator
        The stream the G's are drawn from, in layer order (as :class:`SNNKLayer` draws its G).
    normalize : str
        As :class:`SNNKLayer`, for every layer.
    dtype : torch.dtype
        Of the buffers and parameters.

    Attributes
    ----------
    M : nn.Parameter
        (out_features, p_L), zeros until fitted or bundled.
    c : nn.Parameter
        (out_features,).
    """

    def __init__(self, in_features: int, out_features: int, ms, kinds, generator: torch.Generator,
                 normalize: str = "unit", dtype: torch.dtype = torch.float64):
        super().__init__()
        ms, kinds = list(ms), list(kinds)
        if not ms or len(ms) != len(kinds):
            raise ConfigError(f"ms and kinds must be non-empty and of equal length (got "
                              f"{len(ms)} and {len(kinds)})")
        for i, (m, kind) in enumerate(zip(ms, kinds)):
            positive_int(f"ms[{i}]", m)
            choice(f"kinds[{i}]", kind, SNNK_FEATURES)
            if kind == "gerf" and normalize != "unit":
                raise ConfigError("gerf in a bundled network needs normalize=unit (it sets mu "
                                  "for ||x + w||^2 = 2)")
        choice("normalize", normalize, NORMALIZATIONS)
        self.kinds, self.normalize = kinds, normalize
        width = positive_int("in_features", in_features)
        self.mus = []
        for i, (m, kind) in enumerate(zip(ms, kinds)):
            self.register_buffer(f"G{i}", draw_tower(kind, m, width, generator).to(dtype))
            self.mus.append(gerf_mu(width, 2.0) if kind == "gerf" else 0.0)
            width = 2 * m if kind in ("cos", "sin") else m
        out_features = positive_int("out_features", out_features)
        self.M = nn.Parameter(torch.zeros(out_features, width, dtype=dtype))
        self.c = nn.Parameter(torch.zeros(out_features, dtype=dtype))

    def _gaussians(self) -> list[Tensor]:
        return [getattr(self, f"G{i}") for i in range(len(self.kinds))]

    def features(self, x: Tensor) -> Tensor:
        r"""The parameter-free input tower :math:`\bar\phi(x)`, (n, p_L)."""
        for kind, G, mu in zip(self.kinds, self._gaussians(), self.mus):
            if x.shape[-1] != tower_width(kind, G):
                raise ConfigError(f"x must have {tower_width(kind, G)} features (got "
                                  f"{x.shape[-1]})")
            x = input_features(kind, normalize_rows(x) if self.normalize == "unit" else x, G, mu)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x) @ self.M.T + self.c

    @classmethod
    def from_mlp(cls, weights, biases, readout_weight: Tensor, readout_bias: Tensor, ms, kinds,
                 generator: torch.Generator, normalize: str = "unit") -> BundledSNNK:
        r"""Bundle the MLP :math:`W_{\mathrm{out}} f_L(W_L \cdots f_1(W_1 x + b_1) \cdots +
        b_L) + b_{\mathrm{out}}` (each f_l the SNNK of ``kinds[l]``).

        Parameters
        ----------
        weights, biases : sequence of Tensor
            The hidden layers' W_l (l_l, l_{l-1}) and b_l (l_l,).
        readout_weight, readout_bias : Tensor
            :math:`W_{\mathrm{out}}` (k, l_L) and :math:`b_{\mathrm{out}}` (k,).
        ms, kinds, generator, normalize
            As the constructor.

        Returns
        -------
        BundledSNNK
        """
        weights, biases = list(weights), list(biases)
        if len(weights) != len(biases) or len(weights) != len(list(kinds)):
            raise ConfigError("weights, biases and kinds must have one entry per hidden layer")
        net = cls(weights[0].shape[1], readout_weight.shape[0], ms, kinds, generator, normalize,
                  readout_weight.dtype)
        tower = None
        for W, b, kind, G, mu in zip(weights, biases, net.kinds, net._gaussians(), net.mus):
            V = W if tower is None else W @ tower
            tower = weight_features(kind, normalize_rows(V) if normalize == "unit" else V,
                                    b, G, mu)
        with torch.no_grad():
            net.M.copy_(readout_weight @ tower)
            net.c.copy_(readout_bias)
        return net

    def fit(self, x: Tensor, Y: Tensor, lam: float) -> BundledSNNK:
        r"""The closed form for the squared loss: M and c minimizing
        :math:`\frac1n\|Y - \bar\phi(X) M^\top - c\|^2 + \lambda\|M\|_F^2`: ridge on the
        centred features F, every output at once, :math:`M^\top = (F^\top F/n + \lambda I)^{-1}
        F^\top Y/n` (or its dual form when n < p; least squares at :math:`\lambda = 0`).

        Parameters
        ----------
        x : Tensor
            Inputs (n, d).
        Y : Tensor
            Targets (n,) or (n, k).
        lam : float
            Ridge :math:`\lambda \ge 0`.

        Returns
        -------
        BundledSNNK
            Itself, fitted.
        """
        lam = float(check_lambdas([lam])[0])
        with torch.no_grad():
            phi = self.features(x)
            Y = Y.reshape(len(x), -1).to(phi)
            if Y.shape[1] != self.M.shape[0]:
                raise ConfigError(f"Y must have {self.M.shape[0]} columns (got {Y.shape[1]})")
            mean_phi, mean_y = phi.mean(0), Y.mean(0)
            F, T = phi - mean_phi, Y - mean_y
            n, p = F.shape
            if lam == 0:
                M = torch.linalg.lstsq(F, T).solution.T
            elif n >= p:
                M = torch.linalg.solve(F.T @ F / n + lam * torch.eye(p, dtype=F.dtype,
                                                                     device=F.device),
                                       F.T @ T / n).T
            else:
                M = (F.T @ torch.linalg.solve(F @ F.T + n * lam * torch.eye(
                    n, dtype=F.dtype, device=F.device), T)).T
            self.M.copy_(M)
            self.c.copy_(mean_y - M @ mean_phi)
        return self
