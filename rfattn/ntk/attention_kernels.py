r"""NNGP and NTK of a multi-head self-attention network as heads, key and value widths grow.

The network (:class:`rfattn.ntk.attention_network.AttentionNetwork`) maps a sequence
:math:`X\in\mathbb R^{N\times d}` through one multi-head attention layer, ``hidden_layers``
blocks ReLU -> dense, a last activation, a mean over tokens and a dense readout. This is
neural-tangents' ``stax.serial(GlobalSelfAttention, Relu, GlobalAvgPool, Dense)`` at
``hidden_layers=0`` (Hron, Bahri, Sohl-Dickstein, Novak 2020, "Infinite attention: NNGP and
NTK for deep attention networks", arXiv 2006.10540). All parameters are i.i.d. N(0, 1) (NTK
parameterization). Head h of H, with :math:`Z = X + P` (``positions`` P, or P = 0):

.. math::
    G_h = \zeta\Big(\frac{\sigma_{QK}}{d\,s}\,(Z W^Q_h)(Z W^K_h)^\top\Big),\quad
    f(X) = \frac{\sigma_{OV}}{\sqrt{H d_v d}}\,[G_1 V W^V_1, \dots, G_H V W^V_H]\,W^O,

with :math:`V = Z` when ``positional_values`` and X otherwise, :math:`\zeta` the
``mechanism`` (softmax over keys, ReLU, identity or abs), and ``scaling``:

- ``linear`` (the paper's :math:`d^{-1}` scaling): :math:`s = d_k` and :math:`W^Q = W^K`
  (tied). :math:`W W^\top/d_k \to I`, so the attention weights become deterministic,
  :math:`G = \zeta(\sigma_{QK} S_Z)` with :math:`S_Z = ZZ^\top/d`, and

  .. math:: \Sigma' = \sigma_{OV}^2\, G\,S_V(X, X')\,G'^\top, \qquad \Theta' = 2\Sigma'

  (value and output weights; the query-key gradients vanish like :math:`1/d_k`);
- ``sqrt`` (the usual :math:`d_k^{-1/2}`), independent :math:`W^Q, W^K`, identity mechanism
  only: the logits are Gaussian with covariance :math:`\sigma_{QK}^2 S_Z\otimes S_Z`, and

  .. math:: \Sigma'_{ij} = \sigma_{QK}^2\sigma_{OV}^2\, S_Z(X,X')_{ij}
            \sum_{a,b} S_Z(X,X')_{ab}\,S_V(X,X')_{ab}, \qquad \Theta' = 4\Sigma'

  (query, key, value and output weights contribute one :math:`\Sigma'` each). Softmax, ReLU
  and abs have no closed form under this scaling and are refused.

Here :math:`S_V(X,X') = XX'^\top/d` (the input kernel, NTK 0: the tokens are data). After the
attention layer, tokens pair up like the inputs of a fully connected net: ReLU maps
:math:`(\Sigma, \Theta)` to :math:`(\mathbb E[\phi\phi], \Theta\,\mathbb E[\phi'\phi'])`
(arc-cosine, Cho & Saul 2009), a dense layer to :math:`(\sigma_w^2\Sigma + \sigma_b^2,
\sigma_w^2\Theta + \Sigma_{new})`; the mean over tokens averages both over token pairs.

Conventions against neural-tangents 0.6.5: ``GlobalSelfAttention(n_chan_out, n_chan_key,
n_chan_val, n_heads, linear_scaling=(scaling == "linear"), W_query_std * W_key_std = qk_std,
W_out_std * W_value_std = ov_std, b_std=None, attention_mechanism=mechanism.upper(),
pos_emb_type="NONE")``, then ``Relu()``, ``GlobalAvgPool()``, ``Dense(1, W_std=w_std,
b_std=b_std)``. Positional encodings here are fixed tensors added to the tokens (the literal
form); neural-tangents' ``SUM`` embeddings are random parameters whose covariance enters the
kernel instead, so the two agree only without positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.checks import ConfigError, boolean, choice, nonnegative, nonnegative_int
from ..linalg.blocks import block_rows
from .analytic import Kernels, pair_expectations

TEMPORARIES = 8  # token-pair matrices alive at once in a block (sigma, theta, the ReLU's)

MECHANISMS = ("softmax", "relu", "identity", "abs")
SCALINGS = ("linear", "sqrt")
ACTIVATIONS = ("relu", "identity")


def mechanism_fn(mechanism: str):
    """The attention mechanism :math:`\\zeta` as a torch function of the logits (..., N, N)."""
    return {"softmax": lambda g: torch.softmax(g, dim=-1), "relu": torch.relu,
            "identity": lambda g: g, "abs": torch.abs}[mechanism]


def check_mechanism(mechanism: str, scaling: str) -> None:
    """Refuse, in one line, a mechanism or scaling outside the closed forms (module docstring)."""
    choice("mechanism", mechanism, MECHANISMS)
    choice("scaling", scaling, SCALINGS)
    if scaling == "sqrt" and mechanism != "identity":
        raise ConfigError(f"mechanism {mechanism!r} has no closed-form kernel under "
                          "scaling=sqrt: use mechanism=identity, or scaling=linear")


def sinusoidal_positions(tokens: int, d: int, scale: float = 1.0,
                         dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Sinusoidal positional encodings (Vaswani et al. 2017), (tokens, d):
    :math:`P_{t,2k} = \sin(t/10^{4\cdot 2k/d})`, :math:`P_{t,2k+1} = \cos(t/10^{4\cdot 2k/d})`,
    times ``scale``."""
    t = torch.arange(tokens, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    p = torch.zeros(tokens, d, dtype=torch.float64)
    p[:, 0::2] = torch.sin(t * freq)
    p[:, 1::2] = torch.cos(t * freq[: d // 2])
    return (scale * p).to(dtype)


@dataclass(frozen=True)
class AttentionArchitecture:
    """The attention network of the module docstring (shared by the kernel and the module).

    Attributes
    ----------
    mechanism : str
        ``softmax``, ``relu``, ``identity`` or ``abs``.
    scaling : str
        ``linear`` (1/d_key, tied query-key) or ``sqrt`` (1/sqrt(d_key), identity only).
    hidden_layers : int
        ReLU -> dense blocks between the attention layer and the pooled readout.
    activation : str
        ``relu`` (neural-tangents' stack) or ``identity`` after the attention layer and each
        hidden dense layer.
    qk_std, ov_std : float
        :math:`\\sigma_{QK}` (W_query_std * W_key_std) and :math:`\\sigma_{OV}`.
    w_std, b_std : float
        Weight and bias scales of the hidden and readout dense layers.
    positions : Tensor, optional
        Fixed encodings (N, d) added to the tokens; None for none.
    positional_values : bool
        Whether the values see the positions too.
    """

    mechanism: str = "softmax"
    scaling: str = "linear"
    hidden_layers: int = 0
    activation: str = "relu"
    qk_std: float = 1.0
    ov_std: float = 1.0
    w_std: float = 1.0
    b_std: float = 0.0
    positions: Tensor | None = None
    positional_values: bool = False

    def __post_init__(self):
        check_mechanism(self.mechanism, self.scaling)
        choice("activation", self.activation, ACTIVATIONS)
        nonnegative_int("hidden_layers", self.hidden_layers)
        for key in ("qk_std", "ov_std", "w_std", "b_std"):
            nonnegative(key, getattr(self, key))
        boolean("positional_values", self.positional_values)
        if self.positions is not None and (self.positions.ndim != 2
                                           or not torch.isfinite(self.positions).all()):
            raise ConfigError("positions must be a finite (N, d) tensor or None (got shape "
                              f"{tuple(self.positions.shape)})")

    def check_tokens(self, name: str, x: Tensor, d: int | None = None) -> Tensor:
        """``x`` as (n, N, d), finite, matching ``positions`` and the token dimension d."""
        if not isinstance(x, Tensor) or x.ndim != 3 or 0 in x.shape:
            raise ConfigError(f"{name} must be a tensor of sequences (n, N, d) with n, N, d >= 1"
                              f" (got {tuple(x.shape) if isinstance(x, Tensor) else type(x)})")
        if d is not None and x.shape[2] != d:
            raise ConfigError(f"{name}: tokens of dimension {x.shape[2]}, expected {d} (all "
                              "tokens must have one dimension)")
        if self.positions is not None and tuple(self.positions.shape) != tuple(x.shape[1:]):
            raise ConfigError(f"{name}: sequences of shape {tuple(x.shape[1:])} do not match "
                              f"positions {tuple(self.positions.shape)}")
        if not torch.isfinite(x).all():
            raise ConfigError(f"{name} must be finite")
        return x

    def streams(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The query-key input Z = X + P and the value input (Z or X)."""
        z = x if self.positions is None else x + self.positions.to(x)
        return z, (z if self.positional_values else x)


def _attention(arch: AttentionArchitecture, x1: Tensor, x2: Tensor, symmetric: bool):
    """Sigma and Theta of the attention outputs over token pairs, (n1 N1, n2 N2), and the
    token variances of each side (n1 N1,), (n2 N2,)."""
    d = x1.shape[2]
    (z1, v1), (z2, v2) = arch.streams(x1), arch.streams(x2)
    if arch.scaling == "linear":
        zeta = mechanism_fn(arch.mechanism)
        u1, u2 = ((zeta(arch.qk_std * (z @ z.transpose(1, 2)) / d) @ v).reshape(-1, d)
                  for z, v in ((z1, v1), (z2, v2)))
        scale = arch.ov_std**2 / d
        sigma = scale * (u1 @ u1.T if symmetric else u1 @ u2.T)
        diag1, diag2 = scale * (u1 * u1).sum(1), scale * (u2 * u2).sum(1)
        return sigma, 2 * sigma, diag1, diag2
    # sqrt scaling, identity mechanism: logits Gaussian, independent of the values
    scale = (arch.qk_std * arch.ov_std) ** 2
    m1, m2 = (z.transpose(1, 2) @ v / d for z, v in ((z1, v1), (z2, v2)))  # (n, d, d)
    dots = m1.flatten(1) @ m2.flatten(1).T  # sum_ab S_Z(X,X')_ab S_V(X,X')_ab, (n1, n2)
    n1, t1 = x1.shape[:2]
    n2, t2 = x2.shape[:2]
    s_z = (z1.reshape(-1, d) @ z2.reshape(-1, d).T / d).view(n1, t1, n2, t2)
    sigma = (scale * s_z * dots[:, None, :, None]).reshape(n1 * t1, n2 * t2)
    self_dots = [(m * m).sum((1, 2)) for m in (m1, m2)]
    diag1, diag2 = (scale * (z * z).sum(-1) / d * sd[:, None] for z, sd in
                    ((z1, self_dots[0]), (z2, self_dots[1])))
    return sigma, 4 * sigma, diag1.reshape(-1), diag2.reshape(-1)


def attention_kernels(x1: Tensor, x2: Tensor | None = None,
                      arch: AttentionArchitecture | None = None,
                      block_bytes: int = 256 * 2**20) -> Kernels:
    r"""NNGP and NTK of the attention network of the module docstring, as heads, d_key,
    d_value and the dense widths go to infinity (Hron et al. 2020, Thm. 3 and its NTK).

    Cost: :math:`O(n_1 n_2 N_1 N_2 d)` work for the token pairs and :math:`O((n_1 + n_2) N^2 d)`
    for the attention weights, in the inputs' dtype and on their device; rows of x1 go in
    blocks whose token-pair temporaries fit ``block_bytes``.

    Parameters
    ----------
    x1 : Tensor
        Sequences (n1, N1, d).
    x2 : Tensor, optional
        Sequences (n2, N2, d); None for ``x1`` against itself.
    arch : AttentionArchitecture, optional
        The network (default: softmax, linear scaling, ReLU, pooled readout).
    block_bytes : int
        Memory for the token-pair temporaries of one block of rows.

    Returns
    -------
    Kernels
        ``nngp`` and ``ntk`` of the scalar output, each (n1, n2).
    """
    arch = arch or AttentionArchitecture()
    symmetric = x2 is None
    x1 = arch.check_tokens("x1", x1)
    x2 = x1 if symmetric else arch.check_tokens("x2", x2, x1.shape[2])
    t1, t2 = x1.shape[1], x2.shape[1]
    step = block_rows(TEMPORARIES * t1 * x2.shape[0] * t2 * x1.element_size(), block_bytes)
    blocks = [_pooled_kernels(arch, x1[s:s + step], x2, symmetric and step >= len(x1))
              for s in range(0, len(x1), step)]
    return Kernels(*(torch.cat(parts) for parts in zip(*blocks)))


def _pooled_kernels(arch: AttentionArchitecture, x1: Tensor, x2: Tensor,
                    symmetric: bool) -> tuple[Tensor, Tensor]:
    """NNGP and NTK of the network's output for a block of x1 against x2."""
    sigma, theta, k1, k2 = _attention(arch, x1, x2, symmetric)
    w2, b2 = arch.w_std**2, arch.b_std**2
    for layer in range(arch.hidden_layers + 1):
        if arch.activation == "relu":
            ee, dd, k1, k2 = pair_expectations("relu", sigma, k1, k2, 0, symmetric)
            sigma, theta = ee, theta.mul_(dd)
        if layer < arch.hidden_layers:
            sigma = sigma.mul_(w2).add_(b2)
            theta = theta.mul_(w2).add_(sigma)
            k1, k2 = w2 * k1 + b2, w2 * k2 + b2
    n1, t1 = x1.shape[:2]
    n2, t2 = x2.shape[:2]
    pooled = [m.view(n1, t1, n2, t2).mean((1, 3)) for m in (sigma, theta)]
    nngp = w2 * pooled[0] + b2
    return nngp, w2 * pooled[1] + nngp


__all__ = ["ACTIVATIONS", "MECHANISMS", "SCALINGS", "AttentionArchitecture",
           "attention_kernels", "check_mechanism", "mechanism_fn",
           "sinusoidal_positions"]
