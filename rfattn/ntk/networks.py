r"""Finite networks whose infinite-width kernels :mod:`rfattn.ntk.analytic` computes.

:class:`FullyConnected`: Jacot et al. (2018)'s network,
:math:`\tilde\alpha^{(l+1)} = \frac{\sigma_w}{\sqrt{n_l}}W^{(l)}\alpha^{(l)} + \sigma_b b^{(l)}`
with N(0, 1) parameters (``parameterization="ntk"``), or weights N(0, sigma_w^2/n_l) and
biases N(0, sigma_b^2) (``"standard"``).

:class:`ValueOnlyAttention`: random-feature attention with frozen query-key matrices (a buffer)
and trainable values; its NTK is exactly :math:`\Phi\Phi^\top` with the features of
:mod:`rfattn.rfa.features`, whose :math:`M\to\infty` limit is
:func:`rfattn.rfa.kernels.rfa_relu_kernel`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..core.checks import DivergenceError, choice, nonnegative, positive_int
from ..core.runtime import progress, sgd_step
from ..rfa.features import RandomFeatureAttention
from .analytic import PARAMETERIZATIONS

TORCH_ACTIVATIONS = {"relu": torch.relu, "erf": torch.erf, "tanh": torch.tanh,
                     "identity": lambda x: x, "sigmoid": torch.sigmoid,
                     "softplus": nn.functional.softplus, "gelu": nn.functional.gelu,
                     "sin": torch.sin}


class FullyConnected(nn.Module):
    r"""Jacot et al. (2018)'s fully connected network: ``depth`` linear layers of ``width``.

    NTK parameterization: :math:`\tilde\alpha^{(l+1)} = \frac{\sigma_w}{\sqrt{n_l}}W^{(l)}
    \alpha^{(l)} + \beta b^{(l)}` with N(0, 1) parameters; standard: weights
    :math:`N(0, \sigma_w^2/n_l)` and biases :math:`N(0, \beta^2)`.

    Parameters
    ----------
    n0 : int
        Input dimension.
    width : int
        Units of every hidden layer.
    depth : int
        Linear layers (depth 2: one hidden layer).
    outputs : int
        Output dimension.
    activation : str
        ``relu``, ``erf``, ``tanh``, ``identity``, ``sigmoid``, ``softplus``, ``gelu`` or ``sin``.
    w_std, b_std : float
        :math:`\sigma_w` and :math:`\beta`.
    parameterization : str
        ``ntk`` or ``standard``.
    generator : torch.Generator, optional
        The random stream of the initialization.
    dtype : torch.dtype
    """

    def __init__(self, n0: int, width: int, depth: int, outputs: int = 1,
                 activation: str = "relu", w_std: float = 1.0, b_std: float = 0.1,
                 parameterization: str = "ntk", generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        n0, width, depth = positive_int("n0", n0), positive_int("width", width), positive_int(
            "depth", depth)
        choice("activation", activation, list(TORCH_ACTIVATIONS))
        choice("parameterization", parameterization, PARAMETERIZATIONS)
        self.w_std, self.b_std = nonnegative("w_std", w_std), nonnegative("b_std", b_std)
        self.ntk_param = parameterization == "ntk"
        self.act = TORCH_ACTIVATIONS[activation]
        sizes = [n0] + [width] * (depth - 1) + [positive_int("outputs", outputs)]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            w = torch.randn(fan_out, fan_in, generator=generator, dtype=dtype)
            b = torch.randn(fan_out, generator=generator, dtype=dtype)
            if not self.ntk_param:
                w, b = w * (w_std / math.sqrt(fan_in)), b * b_std
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            if k:
                h = self.act(h)
            if self.ntk_param:
                h = h @ w.T * (self.w_std / math.sqrt(w.shape[1])) + self.b_std * b
            else:
                h = h @ w.T + b
        return h


class ValueOnlyAttention(nn.Module):
    r"""Random-feature attention as a torch module: :math:`f(x) = \langle v, \Phi(x)\rangle`
    with the query-key matrices frozen (a buffer) and the values v trainable, starting at
    zero.

    Its NTK is exactly :math:`\Phi\Phi^\top` at every step of training, and as M grows the
    infinite-head kernel :func:`rfattn.rfa.rfa_relu_kernel` (the bridge between the two lenses).
    With ``train_query_key`` the matrices are parameters too, and the NTK gains the query-key
    terms :math:`\sum_m \partial_{W_m} f\,\partial_{W_m} f'`; they vanish at zero values, so
    ``value_std`` > 0 draws the values N(0, value_std^2) from ``generator``.

    Parameters
    ----------
    feature_map : RandomFeatureAttention
        The heads. The module takes tokens :math:`[x_0; x_1..x_N]` of shape (B, N+1, d)
        and returns (B, 1).
    train_query_key : bool
        Train the query-key matrices too.
    value_std : float
        Scale of the initial values (0: zeros).
    generator : torch.Generator, optional
        The random stream of the values.
    """

    def __init__(self, feature_map: RandomFeatureAttention, train_query_key: bool = False,
                 value_std: float = 0.0, generator: torch.Generator | None = None):
        super().__init__()
        if train_query_key:
            self.W = nn.Parameter(feature_map.W.clone())
        else:
            self.register_buffer("W", feature_map.W)
        self.activation = feature_map.activation
        values = torch.randn(feature_map.num_features, generator=generator,
                             dtype=torch.float64) * nonnegative("value_std", value_std)
        self.values = nn.Parameter(values.to(feature_map.W))

    def forward(self, x: Tensor) -> Tensor:
        phi = RandomFeatureAttention(self.W, self.activation).block_features(x[:, 0], x[:, 1:])
        return (phi @ self.values)[:, None]


def train_full_batch(net: nn.Module, x: Tensor, y: Tensor, steps: int, lr: float,
                     centre: Tensor | None = None, record=None, lr_name: str = "lr") -> None:
    r"""Full-batch gradient descent on :math:`\frac{1}{2n}\sum_i (f(x_i) - y_i)^2`, in place.

    Parameters
    ----------
    net : torch.nn.Module
        A network with one output, (n, 1) for inputs (n, ...).
    x, y : Tensor
        Inputs (n, ...) and targets (n,).
    steps : int
        Gradient steps (time t = steps x lr).
    lr : float
        Learning rate.
    centre : Tensor, optional
        Subtracted from the outputs, (n,): the network's outputs at initialization train the
        centred network :math:`f(x;\theta) - f(x;\theta_0)`.
    record : callable, optional
        ``record(step)`` after each step.
    lr_name : str
        The setting named when the loss stops being finite.

    Returns
    -------
    None
        Raises :class:`~rfattn.core.checks.DivergenceError` naming ``lr_name`` on divergence.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    for step in progress(range(1, steps + 1), "gradient descent"):
        out = net(x)[:, 0] if centre is None else net(x)[:, 0] - centre
        loss = 0.5 * ((out - y) ** 2).mean()
        if not torch.isfinite(loss):
            raise DivergenceError(f"{lr_name}={lr} makes gradient descent diverge (the loss is "
                                  f"not finite at step {step}); lower {lr_name}")
        loss.backward()
        sgd_step(params, lr)
        if record is not None:
            record(step)
