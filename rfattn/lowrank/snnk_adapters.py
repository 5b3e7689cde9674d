r"""SNNK adapters for the one-layer transformer (Sehanobish, Choromanski, Zhao, Dubey,
Likhosherstov, "Scalable Neural Network Kernels", ICLR 2024): ReLU-SNNK layers in the
activations, the network's matrices frozen at W(0). The SNNK counterpart of the weight-space
adapters of :class:`~rfattn.lowrank.model.Parameterization` (LoRA, PiSSA, SVFit, SORSA).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..core.checks import positive_int

ADAPTER_INIT_STD = 0.02  # W_down of an SNNK adapter: the authors' "bert" initialization


def adapt(h: torch.Tensor, adapter) -> torch.Tensor:
    r"""An SNNK adapter on activations h (S, n, N, width):
    :math:`h + u \odot \Psi\,\mathrm{ReLU}(G h)/\sqrt p` for ``adapter = (G, Psi, u)``
    (:class:`SNNKAdapters`); ``h`` itself when there is none."""
    if adapter is None:
        return h
    G, psi, up = adapter
    phi = torch.relu(torch.einsum("snle,spe->snlp", h, G)) / math.sqrt(G.shape[1])
    return h + up[:, None, None, :] * torch.einsum("snlp,sep->snle", phi, psi)


class SNNKAdapters(nn.Module):
    r"""Two ReLU-SNNK adapters on the frozen network W(0) (Sehanobish et al. 2024), placed as
    the authors' BERT and ViT adapters are, one after the attention and one after the
    feedforward layer: on :math:`h = W_V X\,\mathrm{softmax}(\cdot)` (width :math:`m_a`)
    and on :math:`\mathrm{ReLU}(W_O h)` (width m),

    .. math::  h \mapsto h + u \odot \Psi\,\phi(h), \qquad
               \phi(h) = \mathrm{ReLU}(G h)/\sqrt p,

    with G (p x width) a buffer, :math:`\Psi = \mathrm{ReLU}(W_{down} G^\top)/\sqrt p`
    trainable, initialised from :math:`W_{down} \sim N(0, 0.02^2)` (width x width), and the
    elementwise up-projection u trainable from zero: width (p + 1) parameters per adapter.

    Parameters
    ----------
    W0 : dict of str to Tensor
        ``q``, ``k``, ``v``, ``o``, each (S, out, in), frozen.
    features : int
        p, random features per adapter.
    generators : sequence of torch.Generator
        One per seed, for G and :math:`W_{down}`.
    """

    method = "snnk"

    def __init__(self, W0: dict[str, torch.Tensor], features: int,
                 generators: Sequence[torch.Generator]):
        super().__init__()
        p = positive_int("features", features)
        self.names = tuple(W0)
        for name, w in W0.items():
            self.register_buffer(f"frozen_{name}", w.clone())
        self.psi, self.up = nn.ParameterDict(), nn.ParameterDict()
        w = W0["o"]
        for site, width in (("attention", w.shape[-1]), ("hidden", w.shape[-2])):
            G = torch.stack([torch.randn(p, width, generator=g, dtype=torch.float64)
                             for g in generators]).to(w)
            down = torch.stack([torch.randn(width, width, generator=g, dtype=torch.float64)
                                for g in generators]).to(w) * ADAPTER_INIT_STD
            self.register_buffer(f"G_{site}", G)
            self.psi[site] = nn.Parameter(torch.relu(down @ G.transpose(-1, -2)) / math.sqrt(p))
            self.up[site] = nn.Parameter(w.new_zeros(w.shape[0], width))

    def matrices(self) -> dict:
        """The frozen matrices and each adapter as (G, Psi, u), for :func:`forward`."""
        out = {name: getattr(self, f"frozen_{name}") for name in self.names}
        for site in ("attention", "hidden"):
            out[f"adapter_{site}"] = (getattr(self, f"G_{site}"), self.psi[site],
                                      self.up[site])
        return out

    def regularizer(self) -> torch.Tensor:
        """No penalty (as :meth:`Parameterization.regularizer` for the other adapters)."""
        return self.frozen_o.new_zeros(())
