"""Settings of the NTK study jobs (one class per ``kind``), with their cost models.

Vocabulary (Jacot, Gabriel, Hongler 2018): n inputs (Jacot's N), d input dimension (Jacot's
n_0), ``depth`` linear layers (Jacot's L), ``beta`` the bias scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..core.checks import ConfigError, choice, positive_int, positive_ints, real, sequence
from ..core.runtime import generator
from ..core.study import KindSettings
from . import random_features
from .analytic import ACTIVATIONS, Kernels, fc_kernels
from .networks import FullyConnected

DIGITS = 1797  # scikit-learn's bundled 8x8 digits
SCALE_MAX = 1e3  # scales and step sizes beyond this overflow float64
FLOPS_PER_SECOND = 3e9  # calibrated on the quick sweeps (2-core CPU, float64)
STEP_SECONDS = 1e-3  # per gradient step: the calls themselves


@dataclass(frozen=True)
class NTKSettings(KindSettings):
    """Settings every NTK job shares.

    Vocabulary (Jacot et al. 2018): n inputs (Jacot's N), d input dimension (Jacot's n_0),
    ``depth`` linear layers (Jacot's L), ``beta`` the bias scale.
    """

    memory_hint: ClassVar[str] = "lower width, depth, d, n, angles or m_grid"


@dataclass(frozen=True)
class NetworkSettings(NTKSettings):
    """A fully connected network (:class:`~rfattn.ntk.networks.FullyConnected`).

    Its cost model: ``input_dim`` inputs, ``examples`` inputs held at once (kernels and
    outputs), ``train_examples`` trained on for ``training_steps`` steps, and
    :meth:`kernel_work` for its empirical kernels.
    """

    depth: int
    width: int
    activation: str
    w_std: float
    beta: float

    input_dim: ClassVar[int] = 2  # the circle of Jacot's Fig 1 and 2

    @property
    def examples(self) -> int:
        return 0

    @property
    def train_examples(self) -> int:
        return 0

    @property
    def training_steps(self) -> int:
        return 0

    def kernel_work(self) -> float:
        return 0.0

    @property
    def params(self) -> int:
        """Parameters of the network."""
        width, d = self.width, self.input_dim
        return (d + 1) * width + (self.depth - 2) * (width + 1) * width + width + 1

    def empirical_kernel_work(self, n1: int, n2: int) -> float:
        """Flops of an empirical NTK block by the cheaper of the two methods' cost models
        (:meth:`~rfattn.ntk.empirical.EmpiricalNTK.choose_method`)."""
        p = self.params
        return min((n1 + n2) * 156 * p + n1 * n2 * p / 8, 6 * p * (n1 + n1 * n2))

    def estimate_memory(self) -> int:
        """Peak bytes: the network's parameters, gradients and optimizer copy, the tiles of
        per-example Jacobians the empirical NTK allows itself (a quarter of the memory, bounded
        by the examples), and the kernel matrices."""
        item = torch.finfo(self.torch_dtype).bits // 8
        n, params = self.examples, self.params
        return (4 * params + 2 * n * params + 4 * n * n) * item

    def estimate_seconds(self) -> float:
        """Rough run time on a 2-core CPU: gradient steps (6 flops per parameter and example)
        and the empirical kernels."""
        steps = self.training_steps
        work = 6 * steps * self.train_examples * self.params + self.kernel_work() / 4
        return 0.3 + steps * STEP_SECONDS + work / FLOPS_PER_SECOND

    @property
    def columns(self) -> dict:
        """The setting columns of the job's rows."""
        return {"width": self.width, "depth": self.depth, "activation": self.activation,
                "w_std": self.w_std, "beta": self.beta}

    def __post_init__(self):
        super().__post_init__()
        positive_int("depth", self.depth)
        positive_int("width", self.width)
        choice("activation", self.activation, ACTIVATIONS)
        real("w_std", self.w_std, low=0.0, high=SCALE_MAX, low_open=True)
        real("beta", self.beta, low=0.0, high=SCALE_MAX)

    def network(self, d: int, *stream) -> FullyConnected:
        """The network drawn from the stream (seed, *stream), on the job's device and dtype."""
        net = FullyConnected(d, self.width, self.depth, activation=self.activation,
                             w_std=self.w_std, b_std=self.beta,
                             generator=generator(self.seed, *stream), dtype=torch.float64)
        return net.to(device=self.torch_device, dtype=self.torch_dtype)

    def limit(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> Kernels:
        """The analytic NNGP and NTK of this network."""
        return fc_kernels(x1, x2, depth=self.depth, activation=self.activation,
                          w_std=self.w_std, b_std=self.beta)



@dataclass(frozen=True)
class TrainingSettings(NetworkSettings):
    """Full-batch gradient descent on the squared loss."""

    lr: float
    steps: int

    def __post_init__(self):
        super().__post_init__()
        real("lr", self.lr, low=0.0, high=SCALE_MAX, low_open=True)
        positive_int("steps", self.steps)

    @property
    def training_steps(self) -> int:
        return self.steps


@dataclass(frozen=True)
class KernelDriftSettings(TrainingSettings):
    """Kind ``kernel_drift`` (Jacot Fig 1): the NTK on the circle at init, trained, limit."""

    angles: int
    n: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("angles", self.angles)
        positive_int("n", self.n)

    examples = property(lambda self: self.n + self.angles)
    train_examples = property(lambda self: self.n)

    def kernel_work(self) -> float:
        return 2 * self.empirical_kernel_work(1, self.angles)

    @property
    def columns(self) -> dict:
        return {**super().columns, "n": self.n}


@dataclass(frozen=True)
class GaussianLimitSettings(TrainingSettings):
    """Kind ``gaussian_limit`` (Jacot Fig 2): outputs against the limiting Gaussian."""

    angles: int
    train_angles: tuple[float, ...]

    def __post_init__(self):
        super().__post_init__()
        positive_int("angles", self.angles)
        sequence("train_angles", self.train_angles, real)

    examples = property(lambda self: self.angles + len(self.train_angles))
    train_examples = property(lambda self: 4)


@dataclass(frozen=True)
class ModeDecaySettings(TrainingSettings):
    """Kind ``mode_decay`` (Jacot Fig 3): error along the 2nd kernel principal component."""

    n: int
    record_every: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("n", self.n)
        if self.n > DIGITS:
            raise ConfigError(f"n must lie in [1, {DIGITS}] for kind mode_decay (the bundled "
                              f"digits; got {self.n})")
        positive_int("record_every", self.record_every)

    input_dim: ClassVar[int] = 64  # the bundled 8x8 digits
    examples = property(lambda self: self.n)
    train_examples = property(lambda self: self.n)

    def kernel_work(self) -> float:
        return self.empirical_kernel_work(self.n, self.n)

    @property
    def columns(self) -> dict:
        return {**super().columns, "n": self.n}


@dataclass(frozen=True)
class WidthConvergenceSettings(NetworkSettings):
    """Kind ``width_convergence``: empirical against analytic NTK at one width."""

    n: int
    d: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("n", self.n)
        positive_int("d", self.d)

    input_dim = property(lambda self: self.d)
    examples = property(lambda self: self.n)

    def kernel_work(self) -> float:
        return self.empirical_kernel_work(self.n, self.n)

    @property
    def columns(self) -> dict:
        return {**super().columns, "n": self.n, "d": self.d}


@dataclass(frozen=True)
class RandomFeatureSettings(NTKSettings):
    """Kind ``random_features``: error of universal random features against m."""

    function: str
    n: int
    d: int
    input_scale: float
    m_grid: tuple[int, ...]

    def __post_init__(self):
        super().__post_init__()
        choice("function", self.function, random_features.FUNCTIONS)
        positive_int("n", self.n)
        positive_int("d", self.d)
        real("input_scale", self.input_scale, low=0.0, high=2.0, low_open=True)  # exp overflows
        object.__setattr__(self, "m_grid", tuple(positive_ints("m_grid", self.m_grid)))

    def estimate_memory(self) -> int:
        """Peak bytes: the complex features of every point and their products."""
        return (4 * self.n * max(self.m_grid) + 4 * self.n * self.n) * 16

    def estimate_seconds(self) -> float:
        return 0.3 + sum(self.n * self.n * m * self.d for m in self.m_grid) / (
            3 * FLOPS_PER_SECOND)

    @property
    def columns(self) -> dict:
        return {"function": self.function, "n": self.n, "d": self.d}


SETTINGS = {"kernel_drift": KernelDriftSettings, "gaussian_limit": GaussianLimitSettings,
            "mode_decay": ModeDecaySettings, "width_convergence": WidthConvergenceSettings,
            "random_features": RandomFeatureSettings}
