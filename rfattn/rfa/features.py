r"""Random feature maps: random-feature attention (RFA) and the random-feature MLP (RFMLP).

RFA with :math:`M` frozen heads (Fu et al. 2023, arXiv 2307.11353) predicts

.. math::  f(x_0, X) = \frac{1}{\sqrt M}\sum_{m=1}^M \sum_{i=1}^N a_{mi}\,
           \langle v_m, \tilde x_i\rangle, \qquad
           a_{mi} = \begin{cases} \sigma(\tilde x_0^\top W_m \tilde x_i)/N & \text{relu}\\
           \operatorname{softmax}_i(\tilde x_0^\top W_m \tilde x_i) & \text{softmax}\end{cases}

so the features are :math:`\phi_m = \sum_i a_{mi}\tilde x_i \in \mathbb R^{d+1}`, stacked over
heads (``M (d+1)`` of them) and linear in the trainable values :math:`v_m`. The
:math:`1/\sqrt M` scaling makes :math:`\Phi\Phi^\top` converge to the infinite-head kernel
(:mod:`rfattn.rfa.kernels`) as :math:`M\to\infty`.

RFMLP: :math:`f(z)=\frac{1}{\sqrt{M'}}\sum_m a_m \mathrm{ReLU}(\langle w_m, z\rangle)` on
:math:`z=[x_0;x_1;\dots;x_N;1]`, :math:`w_m\sim\mathcal N(0, I/(N+2))` so that pre-activations
have unit variance with sphere tokens; parameter-matched by default: :math:`M' = M(d+1)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.checks import ConfigError, choice, positive, positive_int
from ..core.plugins import call_plugin, is_plugin, load_plugin
from ..core.runtime import generator
from ..linalg.blocks import block_rows
from .sampling import augment, check_tokens, sample_query_key

ACTIVATIONS = ("relu", "softmax")
ACTIVATION_SIGNATURE = "g(scores) -> scores.shape, elementwise"


def check_activation(setting: str, spec: str):
    """Load a user's activation ``module:function`` and check on a sample of scores that it
    returns finite values of the input's shape and acts elementwise (the same value for an
    entry whatever the shape it comes in).

    Parameters
    ----------
    setting : str
        The config key (``model.activation``), for the error message.
    spec : str
        ``module:function``; the function maps a tensor of scores to a tensor of that shape.

    Returns
    -------
    callable
        The activation.

    Raises
    ------
    ConfigError
        One line naming the setting: not importable, wrong shape, not finite, not elementwise.
    """
    fn = load_plugin(setting, spec)
    scores = 2.0 * torch.randn(6, 5, 4, generator=generator(0, "activation-check"),
                               dtype=torch.float64)
    whole = call_plugin(setting, spec, fn, scores, shape=scores.shape,
                        signature=ACTIVATION_SIGNATURE)
    flat = call_plugin(setting, spec, fn, scores.reshape(-1), shape=(scores.numel(),),
                       signature=ACTIVATION_SIGNATURE)
    if not torch.allclose(whole.reshape(-1), flat, rtol=1e-10, atol=1e-12):
        raise ConfigError(f"{setting}={spec}: the activation must act elementwise (its value "
                          "on a score changed with the shape of the input)")
    return fn


@dataclass
class RandomFeatureAttention:
    r"""A single attention layer with ``M`` frozen random query-key matrices (Fu et al. 2023).

    Features of a sample :math:`(x_0, x_1..x_N)`, with :math:`\tilde x = [x; 1]`: head m gives
    :math:`\frac{1}{\sqrt M}\frac1N\sum_i \sigma(\langle W_m, \tilde x_0\tilde x_i^\top
    \rangle)\,\tilde x_i` (ReLU), or the softmax over i of the scores (softmax), so the model
    :math:`\langle v, \Phi(x)\rangle` has :math:`M(d+1)` trainable values. ``features(x0, X)``
    returns :math:`\Phi`, (n, M(d+1)), in blocks; ``sample(M, d, generator, ...)`` draws the
    matrices (:func:`~rfattn.rfa.sample_query_key`).

    Parameters
    ----------
    W : Tensor
        Query-key matrices, (M, d+1, d+1).
    activation : str
        ``relu`` (with the 1/N normalization), ``softmax``, or a user's elementwise function
        ``module:function`` (with the 1/N normalization, as ReLU).
    """

    W: Tensor
    activation: str = "relu"

    def __post_init__(self):
        if is_plugin(self.activation):
            self._sigma = load_plugin("activation", self.activation)
        else:
            choice("activation", self.activation, ACTIVATIONS + ("module:function",))
            self._sigma = torch.relu

    @classmethod
    def sample(cls, M: int, d: int, generator: torch.Generator, activation: str = "relu",
               mean: str = "zero", variance: float = 0.25, c: float = 0.0,
               dtype: torch.dtype = torch.float64, device="cpu") -> RandomFeatureAttention:
        return cls(sample_query_key(M, d, generator, mean, variance, c, dtype, device), activation)

    @property
    def num_heads(self) -> int:
        return self.W.shape[0]

    @property
    def num_features(self) -> int:
        return self.W.shape[0] * self.W.shape[1]

    def head_weights(self, x0: Tensor, X: Tensor) -> Tensor:
        """Attention weights a_{mi}, shape (n, M, N)."""
        scores = torch.einsum("bmq,biq->bmi",
                              torch.einsum("bp,mpq->bmq", augment(x0), self.W), augment(X))
        if self.activation == "softmax":
            return torch.softmax(scores, dim=-1)
        return torch.as_tensor(self._sigma(scores)).to(scores) / X.shape[1]

    def block_features(self, x0: Tensor, X: Tensor) -> Tensor:
        """Features of one block, out of place (usable under ``torch.func`` transforms)."""
        a = self.head_weights(x0, X)
        phi = torch.einsum("bmi,biq->bmq", a, augment(X))
        return phi.reshape(x0.shape[0], -1) * self.W.shape[0] ** -0.5

    def features(self, x0: Tensor, X: Tensor, budget_bytes: int | None = None) -> Tensor:
        """Features of shape (n, M (d+1)), computed in blocks of samples."""
        check_tokens(x0, X, self.W.shape[1] - 1)
        x0, X = x0.to(self.W), X.to(self.W)
        M, q = self.W.shape[0], self.W.shape[1]
        n, N = X.shape[:2]
        step = block_rows(x0.element_size() * M * max(q, N), budget_bytes, self.W.device)
        out = torch.empty(n, M * q, dtype=self.W.dtype, device=self.W.device)
        for s in range(0, n, step):
            out[s:s + step] = self.block_features(x0[s:s + step], X[s:s + step])
        return out


@dataclass
class RandomFeatureMLP:
    r"""Two-layer ReLU random features on the concatenated input, the baseline of Fu et al. (2023).

    :math:`\phi_k(z) = \mathrm{ReLU}(\langle w_k, z\rangle)/\sqrt{\text{width}}` with
    :math:`z = [x_0; x_1; \dots; x_N; 1]`; ``sample(width, N, d, generator)`` draws
    :math:`w_k \sim N(0, I/(N+2))`.

    Parameters
    ----------
    w : Tensor
        First-layer weights, (width, (N+1) d + 1).
    """

    w: Tensor  # (width, (N+1) d + 1)

    @classmethod
    def sample(cls, width: int, N: int, d: int, generator: torch.Generator,
               variance: float | None = None, dtype: torch.dtype = torch.float64,
               device="cpu") -> RandomFeatureMLP:
        width, N, d = positive_int("width", width), positive_int("N", N), positive_int("d", d)
        variance = 1.0 / (N + 2) if variance is None else positive("mlp_variance", variance)
        w = torch.randn(width, (N + 1) * d + 1, generator=generator, dtype=torch.float64)
        return cls((w * variance**0.5).to(device=device, dtype=dtype))

    @property
    def num_features(self) -> int:
        return self.w.shape[0]

    def features(self, x0: Tensor, X: Tensor, budget_bytes: int | None = None) -> Tensor:
        check_tokens(x0, X)
        x0, X = x0.to(self.w), X.to(self.w)
        n = x0.shape[0]
        if self.w.shape[1] != X.shape[1] * X.shape[2] + X.shape[2] + 1:
            raise ConfigError(f"the MLP was drawn for input width {self.w.shape[1]}, tokens give "
                             f"{(X.shape[1] + 1) * X.shape[2] + 1}")
        step = block_rows(x0.element_size() * self.w.shape[0], budget_bytes, self.w.device)
        out = torch.empty(n, self.w.shape[0], dtype=self.w.dtype, device=self.w.device)
        for s in range(0, n, step):
            z = augment(torch.cat([x0[s:s + step, None], X[s:s + step]], 1).flatten(1))
            out[s:s + step] = torch.relu(z @ self.w.T)
        return out.mul_(self.w.shape[0] ** -0.5)
