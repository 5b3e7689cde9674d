r"""Gradient descent on one-layer attention, vectorized over independent runs.

Tarzanagh, Li, Thrampoulidis, Oymak (2023), arXiv 2308.16898: for
:math:`f(X, z) = h(X^\top \mathrm{softmax}(X W z))` and the empirical risk
:math:`\frac1n\sum_i \ell(Y_i f(X_i, z_i))`, gradient descent on W converges in direction to the
Frobenius W-SVM and on (K, Q), :math:`W = KQ^\top`, to the nuclear-norm KQ-SVM.

- heads: ``linear`` :math:`h(a) = v^\top a`; ``relu`` :math:`h(a) = 1^\top \mathrm{ReLU}(V^\top a)`
  (the official nonlinear experiment, :math:`\|V\|_F = 1`);
- losses :data:`LOSSES`: ``logistic`` :math:`\log(1 + e^{-u})`, ``exponential`` :math:`e^{-u}`,
  ``correlation`` :math:`-u`;
- ``normalized`` GD divides each parameter's gradient by its Frobenius norm + eps (K and Q
  separately), as the official code does; the (K, Q) objective adds
  :math:`\epsilon(\|K\|^2 + \|Q\|^2)` with eps the machine epsilon of the data's dtype
  (float64 in the official code).

All tensors carry a leading run axis R; one optimizer step updates every run. Vocabulary:
n samples, N tokens per sample (the paper's T), d token dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.checks import ConfigError, DivergenceError, choice, positive, positive_int

LOSSES = ("logistic", "exponential", "correlation")
HEADS = ("linear", "relu")
PARAMETERIZATIONS = ("W", "KQ")
INITS = ("default", "zero")


@dataclass
class AttentionData:
    """R datasets: tokens X (R, n, N, d), queries z (R, n, d), labels Y (R, n), head v (R, d),
    and for the ReLU head V (R, d, d)."""

    X: torch.Tensor
    z: torch.Tensor
    Y: torch.Tensor
    v: torch.Tensor
    V: torch.Tensor | None = None

    def to(self, device=None, dtype=None) -> AttentionData:
        return AttentionData(*(None if t is None else t.to(device=device, dtype=dtype)
                               for t in (self.X, self.z, self.Y, self.v, self.V)))


def random_data(runs: int, n: int, N: int, d: int, generator: torch.Generator,
                head: str = "linear") -> AttentionData:
    """The official notebooks' data: unit-norm Gaussian tokens and queries, v ~ N(0, I)
    normalized, labels uniform in {+-1}; V Gaussian with ||V||_F = 1 for the ReLU head.

    Parameters
    ----------
    runs : int
        Independent datasets R.
    n, N, d : int
        Samples, tokens per sample (the paper's T) and token dimension.
    generator : torch.Generator
        The random stream.
    head : str
        ``linear`` or ``relu`` (which also draws V).

    Returns
    -------
    AttentionData
        float64 tensors on the CPU.
    """
    for name, value in (("runs", runs), ("n", n), ("N", N), ("d", d)):
        positive_int(name, value)
    choice("head", head, HEADS)

    def unit(*shape):
        x = torch.randn(*shape, generator=generator, dtype=torch.float64)
        return x / x.norm(dim=-1, keepdim=True)

    X, z, v = unit(runs, n, N, d), unit(runs, n, d), unit(runs, d)
    Y = torch.randint(0, 2, (runs, n), generator=generator).to(torch.float64) * 2 - 1
    V = None
    if head == "relu":
        V = torch.randn(runs, d, d, generator=generator, dtype=torch.float64)
        V = V / V.norm(dim=(-1, -2), keepdim=True)
    return AttentionData(X, z, Y, v, V)


def softmax_scores(W: torch.Tensor, data: AttentionData) -> torch.Tensor:
    """:math:`s_i = \\mathrm{softmax}(X_i W z_i)`, shape (R, n, N)."""
    return torch.softmax(torch.einsum("rntd,rde,rne->rnt", data.X, W, data.z), dim=-1)


def outputs(W: torch.Tensor, data: AttentionData, head: str = "linear") -> torch.Tensor:
    """:math:`f(X_i, z_i)`, shape (R, n)."""
    a = torch.einsum("rnt,rntd->rnd", softmax_scores(W, data), data.X)
    if head == "linear":
        return torch.einsum("rnd,rd->rn", a, data.v)
    return torch.relu(torch.einsum("rnd,rde->rne", a, data.V)).sum(-1)


def loss_fn(u: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "logistic":
        return torch.nn.functional.softplus(-u)
    if loss == "exponential":
        return torch.exp(-u)
    return -u


@dataclass
class Trajectory:
    """Recorded iterates: ``steps`` (k,), ``W`` (R, k, d, d) and the final ``scores``."""

    steps: torch.Tensor
    W: torch.Tensor
    scores: torch.Tensor


def train_attention(data: AttentionData, steps: int, lr: float = 0.1,
                    parameterization: str = "W", head: str = "linear", loss: str = "logistic",
                    normalized: bool = True, init: str = "default", init_scale: float = 0.1,
                    record_every: int = 10, generator: torch.Generator | None = None
                    ) -> Trajectory:
    """Full-batch GD of every run at once; records W (or KQ^T) every ``record_every`` steps.

    Parameters
    ----------
    data : AttentionData
        R datasets; the iterates take their device and dtype.
    steps : int
        Gradient steps.
    lr : float
        Learning rate.
    parameterization : str
        ``W`` or ``KQ`` (W = K Q^T).
    head, loss : str
        See the module docstring.
    normalized : bool
        Divide each parameter's gradient by its Frobenius norm + eps.
    init : str
        ``default`` (PyTorch Linear init, U(-1/sqrt(d), 1/sqrt(d)) entries) or ``zero``
        (W = 0; for (K, Q): Q = 0 and K = init_scale N(0, 1), the official 2-D pictures).
    init_scale : float
        Scale of K for the zero start of (K, Q).
    record_every : int
        Steps between recorded iterates (the last step is always recorded).
    generator : torch.Generator
        The random stream of the initialization (drawn in float64 on the CPU).

    Returns
    -------
    Trajectory
        On the CPU.
    """
    steps = positive_int("steps", steps)
    positive("lr", lr)
    choice("parameterization", parameterization, PARAMETERIZATIONS)
    choice("head", head, HEADS)
    choice("loss", loss, LOSSES)
    choice("init", init, INITS)
    record_every = positive_int("record_every", record_every)
    if head == "relu" and data.V is None:
        raise ConfigError("the relu head needs data.V")
    R, _, _, d = data.X.shape
    if generator is None:
        raise ConfigError("train_attention needs a generator for the initialization")
    eps = torch.finfo(data.X.dtype).eps

    def uniform():
        bound = 1 / math.sqrt(d)
        return (torch.rand(R, d, d, generator=generator, dtype=torch.float64) * 2 - 1) * bound

    if parameterization == "W":
        params = [torch.zeros(R, d, d, dtype=torch.float64) if init == "zero" else uniform()]
    elif init == "zero":
        params = [init_scale * torch.randn(R, d, d, generator=generator, dtype=torch.float64),
                  torch.zeros(R, d, d, dtype=torch.float64)]
    else:
        params = [uniform(), uniform()]
    params = [p.to(data.X).requires_grad_() for p in params]

    def weight():
        return params[0] if parameterization == "W" else params[0] @ params[1].transpose(-1, -2)

    recorded, at = [], []
    for step in range(steps + 1):
        if step % record_every == 0 or step == steps:
            recorded.append(weight().detach().clone())
            at.append(step)
        if step == steps:
            break
        risk = loss_fn(data.Y * outputs(weight(), data, head), loss).mean(-1).sum()
        if parameterization == "KQ":
            risk = risk + eps * sum((p**2).sum() for p in params)
        grads = torch.autograd.grad(risk, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                if normalized:
                    g = g / (g.norm(dim=(-1, -2), keepdim=True) + eps)
                p -= lr * g
        if not all(torch.isfinite(p).all() for p in params):
            raise DivergenceError(f"gradient descent diverged at step {step}; lower lr "
                                     f"(got {lr})")
    W = torch.stack(recorded, 1)
    with torch.no_grad():
        scores = softmax_scores(W[:, -1], data)
    return Trajectory(torch.tensor(at), W.cpu(), scores.cpu())


def correlation(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    r"""Correlation :math:`\langle A, B\rangle / (\|A\|_F \|B\|_F)` over the last two axes.

    Parameters
    ----------
    A, B : Tensor
        (..., d, d), broadcastable.

    Returns
    -------
    Tensor
        (...,).
    """
    return (A * B).sum((-1, -2)) / (A.norm(dim=(-1, -2)) * B.norm(dim=(-1, -2)))


def saturation(scores: torch.Tensor) -> torch.Tensor:
    r"""Softmax saturation, the mean over samples of the largest softmax weight,
    :math:`\frac1n\sum_i \max_t s_{it}`.

    Parameters
    ----------
    scores : Tensor
        Softmax weights, (..., n, N).

    Returns
    -------
    Tensor
        (...,).
    """
    return scores.max(-1).values.mean(-1)
