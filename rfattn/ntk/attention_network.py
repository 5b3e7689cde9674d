r"""A finite multi-head self-attention network whose infinite-width kernels
:func:`rfattn.ntk.attention_kernels.attention_kernels` computes.

The network and its NTK parameterization are those of :mod:`rfattn.ntk.attention_kernels`
(Hron et al. 2020, arXiv 2006.10540; neural-tangents' ``GlobalSelfAttention`` then ``Relu``,
``GlobalAvgPool``, ``Dense``): every parameter is N(0, 1) and each layer carries its own
scale, so the empirical NTK (:class:`rfattn.ntk.EmpiricalNTK`) of this module tends to the
analytic one as ``heads``, ``d_key``, ``d_value`` and ``channels`` grow.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..core.checks import positive_int
from .attention_kernels import AttentionArchitecture, mechanism_fn


class AttentionNetwork(nn.Module):
    r"""Multi-head self-attention, ``hidden_layers`` activation -> dense blocks of ``channels``
    units, an activation, the mean over tokens and a dense readout to one output.

    Parameters
    ----------
    d : int
        Token dimension.
    heads, d_key, d_value : int
        H, the query-key width :math:`d_k` and the value width :math:`d_v` of each head.
    channels : int
        Outputs of the attention layer and units of each hidden dense layer.
    arch : AttentionArchitecture
        Mechanism, scaling, scales, positional encodings.
    generator : torch.Generator, optional
        The random stream of the initialization.
    dtype : torch.dtype
    """

    def __init__(self, d: int, heads: int, d_key: int, d_value: int, channels: int,
                 arch: AttentionArchitecture, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        d = positive_int("d", d)
        heads, d_key = positive_int("heads", heads), positive_int("d_key", d_key)
        d_value, channels = positive_int("d_value", d_value), positive_int("channels", channels)
        self.arch, self.d, self.heads, self.d_key, self.d_value = arch, d, heads, d_key, d_value

        def normal(*shape):
            return nn.Parameter(torch.randn(*shape, generator=generator, dtype=torch.float64)
                                .to(dtype))

        self.key = normal(heads, d, d_key)
        self.query = normal(heads, d, d_key) if arch.scaling == "sqrt" else None
        self.value = normal(heads, d, d_value)
        self.out = normal(heads * d_value, channels)
        self.hidden = nn.ParameterList()
        for _ in range(arch.hidden_layers):
            self.hidden.extend([normal(channels, channels), normal(channels)])
        self.readout, self.readout_bias = normal(channels, 1), normal(1)
        if arch.positions is not None:
            self.register_buffer("positions", arch.positions.to(dtype))
        else:
            self.positions = None
        self._zeta = mechanism_fn(arch.mechanism)
        self._phi = torch.relu if arch.activation == "relu" else (lambda z: z)

    def attention_weights(self, x: Tensor) -> Tensor:
        """The heads' attention weights :math:`G_h`, (B, H, N, N), through the (d, d) products
        :math:`W^Q_h W^{K\top}_h` (cheaper than the (N, d_k) queries and keys when d < d_k)."""
        a = self.arch
        z = x if self.positions is None else x + self.positions
        query = self.key if self.query is None else self.query
        norm = self.d * (self.d_key if a.scaling == "linear" else math.sqrt(self.d_key))
        product = query @ self.key.transpose(1, 2) * (a.qk_std / norm)  # (H, d, d)
        logits = torch.einsum("bnd,hde,bme->bhnm", z, product, z)
        return self._zeta(logits)

    def attend(self, x: Tensor) -> Tensor:
        """Outputs of the attention layer, (B, N, channels)."""
        a = self.arch
        v_in = x if (self.positions is None or not a.positional_values) else x + self.positions
        values = torch.einsum("bnd,hdv->bhnv", v_in, self.value)
        heads = (self.attention_weights(x) @ values).permute(0, 2, 1, 3).flatten(2)
        return a.ov_std / math.sqrt(self.d_value * self.heads * self.d) * heads @ self.out

    def forward(self, x: Tensor) -> Tensor:
        """Sequences (B, N, d) -> outputs (B, 1)."""
        a = self.arch
        h = self.attend(x)
        width = h.shape[-1]
        for k in range(0, len(self.hidden), 2):
            h = a.w_std / math.sqrt(width) * self._phi(h) @ self.hidden[k] \
                + a.b_std * self.hidden[k + 1]
        pooled = self._phi(h).mean(1)
        return a.w_std / math.sqrt(width) * pooled @ self.readout + a.b_std * self.readout_bias

    @property
    def query_key_parameters(self) -> list[str]:
        """Names of the query-key parameters (``key``, and ``query`` when not tied)."""
        return [k for k, _ in self.named_parameters() if k in ("key", "query")]
