r"""Kinds ``attention_ntk`` and ``attention_training``: a finite multi-head attention network
against its infinite-width kernels (:mod:`rfattn.ntk.attention_kernels`).

Kind ``attention_ntk``.
For ``n`` sequences of N tokens on the sphere of radius :math:`\sqrt d` (the lab's RFA
samples, :func:`rfattn.rfa.sampling.sample_tokens`, one query and N - 1 keys, scaled so that
:math:`S_Z = ZZ^\top/d` has a unit diagonal as for neural-tangents' unit-variance inputs; one
fixed set for every seed and width) and one network
(:class:`~rfattn.ntk.attention_network.AttentionNetwork`, ``heads`` heads; ``d_key`` and
``channels`` equal to ``heads`` when left null) drawn from the seed, a job measures [ours]:

- ``relative_error``: :math:`\|\hat\Theta - \Theta\|_F/\|\Theta\|_F`, the empirical NTK
  against the analytic one. Its fluctuations are averages over heads, key and value widths and
  channels, so it falls like :math:`H^{-1/2}` when all grow with H;
- ``query_key_share``: :math:`\|\hat\Theta_{QK}\|_F/\|\hat\Theta\|_F`, the part of the NTK
  from the query-key weights. Under the linear scaling the analytic NTK has none: the share
  falls like :math:`1/d_k`.

Kind ``attention_training`` (training in the kernel regime): for each n of ``n_grid``, the
network (``heads`` = d_key = channels unless set) is trained by full-batch gradient descent
(``steps`` of ``lr`` on :math:`\frac1{2n}\sum_i (f - f_0 - y)^2`, the network centred at its
initialization) on n samples of an RFA target (:func:`rfattn.rfa.targets.make_target`, the
query and keys of each sample as one sequence), and kernel regression with the analytic NTK
at the same time :math:`t = \text{lr}\cdot\text{steps}`
(:func:`~rfattn.ntk.regression.gradient_flow`) predicts the same test points. Rows: the test
mean squared error of each (``model`` network or kernel) and their relative difference
:math:`|\text{MSE}_{net} - \text{MSE}_{kernel}|/\text{MSE}_{kernel}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..core.checks import (boolean, choice, nonnegative, nonnegative_int, positive, positive_int,
                           positive_ints)
from ..core.runtime import generator
from ..rfa.sampling import sample_tokens
from ..rfa.targets import TARGETS, make_target
from .attention_kernels import (ACTIVATIONS, AttentionArchitecture, attention_kernels,
                                check_mechanism, sinusoidal_positions)
from .attention_network import AttentionNetwork
from .empirical import EmpiricalNTK
from .networks import train_full_batch
from .regression import gradient_flow
from .settings import FLOPS_PER_SECOND, NTKSettings

POSITIONAL = ("none", "sinusoidal")


@dataclass(frozen=True)
class AttentionNetworkSettings(NTKSettings):
    """The attention network of the attention kinds; the architecture's keys are those of
    :class:`~rfattn.ntk.attention_kernels.AttentionArchitecture`."""

    memory_hint: ClassVar[str] = ("lower heads, d_key, d_value, channels, hidden_layers, n, "
                                  "n_grid, n_test or N")

    N: int
    d: int
    heads: int
    d_key: int | None
    d_value: int
    channels: int | None
    mechanism: str
    scaling: str
    hidden_layers: int
    activation: str
    qk_std: float
    ov_std: float
    w_std: float
    b_std: float
    positional: str
    positional_values: bool

    def __post_init__(self):
        super().__post_init__()
        for key in ("N", "d", "heads", "d_value"):
            positive_int(key, getattr(self, key))
        nonnegative_int("hidden_layers", self.hidden_layers)
        for key in ("d_key", "channels"):
            if getattr(self, key) is not None:
                positive_int(key, getattr(self, key))
        check_mechanism(self.mechanism, self.scaling)
        choice("activation", self.activation, ACTIVATIONS)
        choice("positional", self.positional, POSITIONAL)
        boolean("positional_values", self.positional_values)
        for key in ("qk_std", "ov_std", "w_std", "b_std"):
            nonnegative(key, getattr(self, key))

    @property
    def arch(self) -> AttentionArchitecture:
        positions = (sinusoidal_positions(self.N, self.d, dtype=self.torch_dtype)
                     if self.positional == "sinusoidal" else None)
        return AttentionArchitecture(self.mechanism, self.scaling, self.hidden_layers,
                                     self.activation, self.qk_std, self.ov_std, self.w_std,
                                     self.b_std, positions, self.positional_values)

    @property
    def key_width(self) -> int:
        return self.d_key or self.heads

    @property
    def channel_width(self) -> int:
        return self.channels or self.heads

    @property
    def params(self) -> int:
        h, d, c = self.heads, self.d, self.channel_width
        qk = h * d * self.key_width * (2 if self.scaling == "sqrt" else 1)
        return qk + h * d * self.d_value + h * self.d_value * c + self.hidden_layers * (
            c * c + c) + c + 1

    @property
    def forward_flops(self) -> float:
        """Work of one sequence through the network."""
        h, d, n = self.heads, self.d, self.N
        return 2 * self.params * n + 2 * h * (d * d * self.key_width + n * n * d)

    def network(self, *stream) -> AttentionNetwork:
        """The network drawn from ``(seed, *stream)``, on the job's device."""
        return AttentionNetwork(self.d, self.heads, self.key_width, self.d_value,
                                self.channel_width, self.arch, generator(self.seed, *stream),
                                self.torch_dtype).to(self.torch_device)

    def tokens(self, n: int, *stream) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n RFA samples (x0, X) from ``stream`` and their sequences (n, N, d) [x0; X], on the
        sphere of radius sqrt(d)."""
        x0, keys = sample_tokens(n, self.N - 1, self.d, generator(*stream), "sphere",
                                 self.torch_dtype, self.torch_device)
        return x0, keys, self.d**0.5 * torch.cat([x0[:, None], keys], 1)

    @property
    def columns(self) -> dict:
        return {"N": self.N, "d": self.d, "heads": self.heads,
                "d_key": self.key_width, "d_value": self.d_value,
                "channels": self.channel_width, "mechanism": self.mechanism,
                "scaling": self.scaling, "hidden_layers": self.hidden_layers,
                "activation": self.activation, "positional": self.positional}



@dataclass(frozen=True)
class AttentionNTKSettings(AttentionNetworkSettings):
    """Kind ``attention_ntk`` (module docstring)."""

    n: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("n", self.n)

    def estimate_memory(self) -> int:
        """Per-example Jacobians (twice, for the query-key share) and the token-pair kernel."""
        return 8 * (3 * self.n * self.params + 6 * (self.n * self.N) ** 2) + 64 * 2**20

    def estimate_seconds(self) -> float:
        work = 60 * self.forward_flops + 150 * self.params
        return 0.3 + 2 * self.n * work / FLOPS_PER_SECOND

    @property
    def columns(self) -> dict:
        return {"n": self.n, **super().columns}


@dataclass(frozen=True)
class AttentionTrainingSettings(AttentionNetworkSettings):
    """Kind ``attention_training`` (module docstring)."""

    target_family: str
    degree: int
    n_grid: tuple[int, ...]
    n_test: int
    steps: int
    lr: float

    def __post_init__(self):
        super().__post_init__()
        choice("target_family", self.target_family, TARGETS[:-1])
        positive_int("degree", self.degree)
        object.__setattr__(self, "n_grid", tuple(positive_ints("n_grid", self.n_grid)))
        positive_int("n_test", self.n_test)
        positive_int("steps", self.steps)
        positive("lr", self.lr)

    def estimate_memory(self) -> int:
        n = max(self.n_grid) + self.n_test
        activations = n * self.N * (self.heads * (self.N + self.d_value) + 4 * self.channel_width)
        return 8 * (4 * self.params + 4 * activations + 8 * (n * self.N) ** 2) + 64 * 2**20

    def estimate_seconds(self) -> float:
        return 0.5 + sum(3 * n * self.steps * self.forward_flops for n in self.n_grid) / 1e9

    @property
    def columns(self) -> dict:
        return {"target_family": self.target_family, "degree": self.degree, **super().columns}


def attention_training_rows(s: AttentionTrainingSettings) -> list[dict]:
    target = make_target(s.target_family, s.d, s.N - 1, s.degree)
    x0_test, keys_test, x_test = s.tokens(s.n_test, s.seed, "attention-training", "test")
    y_test = target(x0_test, keys_test)
    rows = []
    for n in s.n_grid:
        x0, keys, x = s.tokens(n, s.seed, "attention-training", n)
        y = target(x0, keys)
        theta = attention_kernels(torch.cat([x, x_test]), arch=s.arch).ntk
        kernel = gradient_flow(theta[:n, :n], theta[n:, :n], y, [s.lr * s.steps]).mean[:, 0]
        net = s.network("attention-training-network", n)
        with torch.no_grad():
            f0, f0_test = net(x)[:, 0].clone(), net(x_test)[:, 0].clone()
        train_full_batch(net, x, y, s.steps, s.lr, centre=f0)
        with torch.no_grad():
            network = net(x_test)[:, 0] - f0_test
        mse = {model: float(((pred - y_test) ** 2).mean())
               for model, pred in (("network", network), ("kernel", kernel))}
        rows += [{"n_train": n, "model": m, "metric": "test_mse", "value": v}
                 for m, v in mse.items()]
        rows.append({"n_train": n, "metric": "relative_difference",
                     "value": abs(mse["network"] - mse["kernel"]) / mse["kernel"]})
    return rows


def attention_ntk_rows(s: AttentionNTKSettings) -> list[dict]:
    x = s.tokens(s.n, 0, "attention-ntk")[2]
    arch = s.arch
    exact = attention_kernels(x, arch=arch).ntk
    net = s.network("attention-ntk", s.heads)
    empirical = EmpiricalNTK(net)(x, method="jacobian")
    query_key = EmpiricalNTK(net, parameters=net.query_key_parameters)(x, method="jacobian")
    norm = float(exact.norm())
    return [{"metric": "relative_error", "value": float((empirical - exact).norm()) / norm},
            {"metric": "query_key_share",
             "value": float(query_key.norm() / empirical.norm())}]


SETTINGS = {"attention_ntk": AttentionNTKSettings,
            "attention_training": AttentionTrainingSettings}
JOBS = {"attention_ntk": attention_ntk_rows, "attention_training": attention_training_rows}
