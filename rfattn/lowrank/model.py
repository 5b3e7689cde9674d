r"""One-layer transformer of Li et al. (2024), batched over seeds, with low-rank adapters.

.. math::
    F(X) = \frac{1}{N} \sum_{l=1}^{N} a^\top \mathrm{ReLU}\big(W_O W_V X\,
           \mathrm{softmax}(X^\top W_K^\top W_Q x_l)\big),

with :math:`W_Q, W_K \in \mathbb{R}^{m_b \times d}`, :math:`W_V \in \mathbb{R}^{m_a \times d}`,
:math:`W_O \in \mathbb{R}^{m \times m_a}` trained and :math:`a \in \{\pm 1/\sqrt{m}\}^m` fixed
(half of each sign); N tokens per sample (the paper's L); softmax over the keys of each
query token; hinge loss
:math:`\max(0, 1 - yF(X))`; mini-batch SGD (Li, Wang, Zhang, Liu, Chen, arXiv 2406.17167, and
the shallow-ViT template of Li et al., ICLR 2023).

Every tensor carries a leading seed axis ``S``: several independent runs (own data, own
initialization, own mini-batch order) train in one set of batched kernels, and each seed's
numbers do not depend on which other seeds share the batch.

Parameterizations of the trainable matrices (:data:`METHODS`), all started at the same
:math:`W(0)`:

- ``full``: :math:`W` itself;
- ``lora``: :math:`W(0) + (\alpha/r) BA`, :math:`A_{ij} \sim N(0, 1/d_{in})`, :math:`B = 0`
  (Hu et al. 2022);
- ``pissa``: :math:`W_{res} + BA` with :math:`B = U_r S_r^{1/2}`, :math:`A = S_r^{1/2} V_r^\top`
  from the top-r SVD of :math:`W(0)` and the residual frozen (Meng et al. 2024);
- ``svfit``: :math:`W_{res} + U_r\,\mathrm{diag}(s)\,V_r^\top`, only :math:`s` trained;
- ``sorsa``: :math:`U_r, s, V_r` trained with the regularizer
  :math:`\gamma(\|U_r^\top U_r - I\|_F^2 + \|V_r^\top V_r - I\|_F^2)` (Cao 2024);
- ``snnk`` (:class:`~rfattn.lowrank.snnk_adapters.SNNKAdapters`): W(0) frozen and two
  ReLU-SNNK adapters with p random features in the activations (Sehanobish et al. 2024).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..core.checks import ConfigError, DivergenceError, choice, nonnegative, positive, positive_int
from ..core.runtime import progress, sgd_step
from .snnk_adapters import adapt

MATRICES = ("q", "k", "v", "o")
DIVERGED = 1e4  # training has diverged once the loss exceeds this many times its start
METHODS = ("full", "lora", "pissa", "svfit", "sorsa")  # parameterizations of the matrices
ADAPTER_METHODS = (*METHODS, "snnk")


def init_weights(d: int, m_a: int, m_b: int, m: int, generators: Sequence[torch.Generator],
                 qkv_std: float = 1.0, o_std: float = 0.1, dtype=torch.float64,
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    r""":math:`W(0)` per seed and the fixed head ``a``.

    :math:`W_Q, W_K, W_V \sim N(0, \texttt{qkv\_std}^2/d)`,
    :math:`W_O \sim N(0, \texttt{o\_std}^2/m_a)`; ``a`` has :math:`m/2` entries
    :math:`+1/\sqrt m` then :math:`m/2` entries :math:`-1/\sqrt m`.

    Parameters
    ----------
    d : int
        Token dimension.
    m_a, m_b : int
        Output sides of :math:`W_V` (and inner side of :math:`W_O`) and of :math:`W_Q, W_K`.
    m : int
        Hidden width of the head, even.
    generators : sequence of torch.Generator
        One per seed.
    qkv_std, o_std : float
        Initialization scales.
    dtype : torch.dtype

    Returns
    -------
    (dict of str to Tensor, Tensor)
        ``{"q", "k", "v", "o"}`` each (S, ., .), and ``a`` (m,).
    """
    for name, v in (("d", d), ("m_a", m_a), ("m_b", m_b), ("m", m)):
        positive_int(name, v)
    if m % 2:
        raise ConfigError(f"m must be even so that a has two equal sign groups (got {m})")
    positive("qkv_std", qkv_std)
    positive("o_std", o_std)
    shapes = {"q": (m_b, d), "k": (m_b, d), "v": (m_a, d), "o": (m, m_a)}
    scale = {"q": qkv_std / math.sqrt(d), "k": qkv_std / math.sqrt(d),
             "v": qkv_std / math.sqrt(d), "o": o_std / math.sqrt(m_a)}
    W = {name: torch.stack([torch.randn(*shape, generator=g, dtype=torch.float64)
                            for g in generators]).mul_(scale[name]).to(dtype)
         for name, shape in shapes.items()}
    a = torch.cat([torch.ones(m // 2), -torch.ones(m // 2)]).to(dtype) / math.sqrt(m)
    return W, a


def attention(W: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    r"""Softmax attention weights of the one-layer transformer (Li et al. 2024).

    Parameters
    ----------
    W : dict of str to Tensor
        The matrices (S, ., .).
    X : Tensor
        Tokens, (S, n, N, d).

    Returns
    -------
    Tensor
        (S, n, query l, key t): the softmax over t of :math:`x_t^\top W_K^\top W_Q x_l`.
    """
    q = torch.einsum("snld,sed->snle", X, W["q"])
    k = torch.einsum("snld,sed->snle", X, W["k"])
    return torch.softmax(q @ k.transpose(-1, -2), dim=-1)


def forward(W: dict[str, torch.Tensor], a: torch.Tensor, X: torch.Tensor,
            attn: torch.Tensor | None = None) -> torch.Tensor:
    r"""Network outputs :math:`F(X) = \frac1N\sum_l a^\top \mathrm{ReLU}(W_O W_V X\,
    \mathrm{softmax}(X^\top W_K^\top W_Q x_l))` (Li et al. 2024).

    Parameters
    ----------
    W : dict of str to Tensor
        The matrices (S, ., .).
    a : Tensor
        The fixed head, (m,).
    X : Tensor
        Tokens, (S, n, N, d).
    attn : Tensor, optional
        Attention weights already computed by :func:`attention`.

    Returns
    -------
    Tensor
        (S, n).
    """
    attn = attention(W, X) if attn is None else attn
    v = torch.einsum("snld,sed->snle", X, W["v"])
    mixed = adapt(attn @ v, W.get("adapter_attention"))
    hidden = adapt(torch.relu(torch.einsum("snle,sje->snlj", mixed, W["o"])),
                    W.get("adapter_hidden"))
    return (hidden @ a).mean(-1)


def hinge(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:math:`\\max(0, 1 - yF)` elementwise."""
    return torch.clamp_min(1 - y * out, 0)


def top_svd(W: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-r factors (U (S, out, r), s (S, r), V (S, in, r)) of a batch of matrices."""
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    return U[..., :r], s[..., :r], Vh[..., :r, :].transpose(-1, -2)


class Parameterization(nn.Module):
    r"""Trainable view of the four matrices Q, K, V, O started at ``W0``; :meth:`matrices` gives W.

    ``full`` trains every entry. The adapters train a rank-r part of each matrix, the rest frozen:
    LoRA :math:`W_0 + \frac{\alpha}{r} BA` with :math:`B = 0` at the start (Hu et al. 2022);
    PiSSA, the top-r singular part of :math:`W_0` as :math:`BA`, its residual frozen (Meng et al.
    2024); SVFit, the top-r singular values only; SORSA, PiSSA with an orthonormality penalty
    :math:`\gamma` (Cao 2024).

    Parameters
    ----------
    W0 : dict of str to Tensor
        ``q``, ``k``, ``v``, ``o``, each (S, out, in) with a leading seed axis.
    method : str
        ``full``, ``lora``, ``pissa``, ``svfit`` or ``sorsa``.
    rank : int
        Adapter rank r (adapters only), at most the smallest matrix side.
    generators : sequence of torch.Generator, optional
        One per seed, for LoRA's random A.
    lora_alpha : float, optional
        LoRA's scale numerator (default r: scale 1).
    sorsa_gamma : float
        SORSA's orthonormality penalty.
    """

    def __init__(self, W0: dict[str, torch.Tensor], method: str = "full", rank: int = 0,
                 generators: Sequence[torch.Generator] | None = None,
                 lora_alpha: float | None = None, sorsa_gamma: float = 0.0):
        super().__init__()
        self.method = choice("method", method, METHODS)
        self.sorsa_gamma = nonnegative("sorsa_gamma", sorsa_gamma)
        if method == "full":
            self.weights = nn.ParameterDict({k: nn.Parameter(w.clone()) for k, w in W0.items()})
            return
        r = positive_int("rank", rank)
        max_rank = min(min(w.shape[-2:]) for w in W0.values())
        if r > max_rank:
            raise ConfigError(f"rank must be <= {max_rank} (the smallest matrix side); got {r}")
        self.rank = r
        self.scale = (r if lora_alpha is None else positive("lora_alpha", lora_alpha)) / r
        frozen, self.factors = {}, nn.ModuleDict()
        for name, w in W0.items():
            f = nn.ParameterDict()
            if method == "lora":
                if generators is None:
                    raise ConfigError("lora needs generators (one per seed) for A")
                fan_in = w.shape[-1]
                A = torch.stack([torch.randn(r, fan_in, generator=g, dtype=torch.float64)
                                 for g in generators]).to(w) / math.sqrt(fan_in)
                f["A"], f["B"] = nn.Parameter(A), nn.Parameter(w.new_zeros(*w.shape[:-1], r))
                frozen[name] = w.clone()
            else:
                U, s, V = top_svd(w, r)
                frozen[name] = w - U @ (s[..., None] * V.transpose(-1, -2))
                if method == "pissa":
                    root = s.sqrt()
                    f["B"] = nn.Parameter(U * root[..., None, :])
                    f["A"] = nn.Parameter((V * root[..., None, :]).transpose(-1, -2).contiguous())
                else:
                    f["s"] = nn.Parameter(s.clone())
                    self.register_buffer(f"U_{name}", U.clone())
                    self.register_buffer(f"V_{name}", V.clone())
                    if method == "sorsa":
                        f["U"], f["V"] = nn.Parameter(U.clone()), nn.Parameter(V.clone())
            self.factors[name] = f
        for name, w in frozen.items():
            self.register_buffer(f"frozen_{name}", w)

    def matrices(self) -> dict[str, torch.Tensor]:
        if self.method == "full":
            return dict(self.weights.items())
        out = {}
        for name, f in self.factors.items():
            base = getattr(self, f"frozen_{name}")
            if self.method == "lora":
                out[name] = base + self.scale * f["B"] @ f["A"]
            elif self.method == "pissa":
                out[name] = base + f["B"] @ f["A"]
            else:
                U = f["U"] if self.method == "sorsa" else getattr(self, f"U_{name}")
                V = f["V"] if self.method == "sorsa" else getattr(self, f"V_{name}")
                out[name] = base + (U * f["s"][..., None, :]) @ V.transpose(-1, -2)
        return out

    def regularizer(self) -> torch.Tensor:
        r""":math:`\gamma \sum (\|U^\top U - I\|_F^2 + \|V^\top V - I\|_F^2)` (SORSA), else 0."""
        if self.method != "sorsa" or self.sorsa_gamma == 0:
            return next(self.parameters()).new_zeros(())
        eye = torch.eye(self.rank, dtype=next(self.parameters()).dtype,
                        device=next(self.parameters()).device)
        total = 0
        for f in self.factors.values():
            for M in (f["U"], f["V"]):
                total = total + ((M.transpose(-1, -2) @ M - eye) ** 2).sum()
        return self.sorsa_gamma * total


def evaluate(W: dict[str, torch.Tensor], a: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
             chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-seed 0-1 error (an output F = 0 counts as an error) and mean hinge loss
    :math:`\max(0, 1 - yF)`, in chunks of samples.

    Parameters
    ----------
    W : dict of str to Tensor
        The matrices (S, ., .).
    a : Tensor
        The fixed head, (m,).
    X : Tensor
        Tokens, (S, n, N, d).
    y : Tensor
        Labels :math:`\pm 1`, (S, n).
    chunk : int
        Samples per chunk.

    Returns
    -------
    (Tensor, Tensor)
        Error and hinge loss, each (S,).
    """
    errors, losses = [], []
    with torch.no_grad():
        for start in range(0, X.shape[1], chunk):
            out = forward(W, a, X[:, start:start + chunk])
            yc = y[:, start:start + chunk].to(out.dtype)
            if not torch.isfinite(out).all():
                raise DivergenceError("the network output is not finite; lower lr")
            errors.append((yc * out <= 0).to(out.dtype).sum(1))
            losses.append(hinge(out, yc).sum(1))
    n = X.shape[1]
    return torch.stack(errors).sum(0) / n, torch.stack(losses).sum(0) / n


def train(params: Parameterization, a: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
          lr: float, batch_size: int, epochs: int, generators: Sequence[torch.Generator],
          record: Callable[[int], None] | None = None, record_every: int = 0) -> int:
    """Mini-batch SGD on the per-seed mean hinge loss.

    Each seed draws its own batch order from its generator in ``generators``; the summed loss
    gives every seed the gradient of its own loss. A loss that is not finite or grows
    ``DIVERGED``-fold raises :class:`~rfattn.core.checks.DivergenceError` naming ``lr``.

    Parameters
    ----------
    params : Parameterization
        The trainable matrices (changed in place).
    a : Tensor
        The fixed head, (m,).
    X : Tensor
        Tokens, (S, n, N, d).
    y : Tensor
        Labels, (S, n).
    lr : float
        Learning rate.
    batch_size, epochs : int
    generators : sequence of torch.Generator
        One per seed.
    record : callable, optional
        ``record(step)`` runs at step 0, every ``record_every`` steps and at the last step.
    record_every : int

    Returns
    -------
    int
        The number of steps taken.
    """
    positive("lr", lr)
    batch_size = positive_int("batch_size", batch_size)
    epochs = positive_int("epochs", epochs)
    S, n = X.shape[:2]
    trainable = [p for p in params.parameters() if p.requires_grad]
    for p in trainable:
        p.grad = None
    yf = y.to(X.dtype)
    step, first = 0, None
    if record is not None:
        record(0)
    for _ in progress(range(epochs), "epochs"):
        order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(X.device)
        for start in range(0, n, batch_size):
            idx = order[:, start:start + batch_size]
            xb = torch.take_along_dim(X, idx[:, :, None, None], dim=1)
            yb = torch.take_along_dim(yf, idx, dim=1)
            loss = hinge(forward(params.matrices(), a, xb), yb).mean(1).sum()
            loss = loss + params.regularizer()
            value = float(loss.detach())
            first = value if first is None else first
            if not math.isfinite(value) or value > DIVERGED * max(first, 1.0):
                raise DivergenceError(f"lr={lr} makes training diverge: the hinge loss grew from "
                                      f"{first:.3g} to {value:.3g} by step {step}; lower lr")
            loss.backward()
            sgd_step(trainable, lr)
            step += 1
            if record is not None and record_every and step % record_every == 0:
                record(step)
    if record is not None and (not record_every or step % record_every):
        record(step)
    return step
