"""Settings of the theory jobs (one class per ``kind``), with their cost models.

The RFA kinds take the RFA study's own public settings (:class:`rfattn.rfa.TokenSettings`,
:class:`~rfattn.rfa.ModelSettings`, :class:`~rfattn.rfa.TargetSettings`,
:class:`~rfattn.rfa.RidgeSettings`), so a model or target is the same config in both studies,
a user's plug-ins included. The sphere kind takes a fully connected network's NTK or a user's
dot-product kernel ``kernel: module:function``, t -> k(t) on [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..core.checks import ConfigError, choice, nonnegative_int, positive_int, real
from ..core.plugins import call_plugin, load_plugin
from ..core.study import KindSettings
from ..ntk.analytic import ACTIVATIONS, fc_kernels
from ..rfa import ModelSettings, RidgeSettings, TargetSettings, TokenSettings
from ..rfa.hermite_kernel import NODES, grid_fits
from ..rfa.settings import bias_c
from .kernels import ERROR_ROWS, default_heads_per_draw
from .spectra import TAIL_SHAPES

LIBRARY_BYTES = 2**28  # first use of LAPACK and torch's allocators in a job (measured ~200 MiB)

DOT_PRODUCT_SIGNATURE = "k(t) -> t.shape, t = <x, x'> in [-1, 1]"


def check_ridges(ridges) -> None:
    """At least one ridge, each in [0, 10] (0: ridgeless)."""
    if not ridges:
        raise ConfigError("ridges must list at least one ridge (0: ridgeless)")
    for i, r in enumerate(ridges):
        real(f"ridges[{i}]", r, low=0.0, high=10.0)


@dataclass(frozen=True)
class TailSettings:
    """The tail of a sampled spectrum (:func:`rfattn.theory.with_tail`), in units of the
    sample's size n_s.

    Attributes
    ----------
    keep : float
        The top ``keep * n_s`` sampled modes are kept as they are, in (0, 0.9].
    fit : (float, float)
        Modes ``[fit[0] n_s, fit[1] n_s)`` fix the power law's exponent (shape ``power``).
    shape : str
        ``power`` or ``sample``; the rows also give the prediction with the other shape.
    until : float
        Last mode of a ``power`` tail, in units of n_s (>= 2).
    """

    keep: float
    fit: tuple[float, float]
    shape: str
    until: float

    def __post_init__(self):
        real("tail.keep", self.keep, low=0.0, high=0.9, low_open=True)
        if len(self.fit) != 2:
            raise ConfigError(f"tail.fit must be [start, stop], fractions of n_sample (got "
                              f"{list(self.fit)})")
        object.__setattr__(self, "fit", tuple(
            real(f"tail.fit[{i}]", f, low=0.0, high=1.0, low_open=True)
            for i, f in enumerate(self.fit)))
        if self.fit[0] >= self.fit[1]:
            raise ConfigError(f"tail.fit must have start < stop (got {list(self.fit)})")
        choice("tail.shape", self.shape, TAIL_SHAPES)
        real("tail.until", self.until, low=2.0, high=1e6)

    def check_sample(self, n_sample: int) -> None:
        """Refuse a tail that a sample of ``n_sample`` (and its half) cannot give."""
        half = n_sample // 2
        if round(self.keep * half) < 1:
            raise ConfigError(f"tail.keep x n_sample/2 must keep >= 1 mode (got "
                              f"{self.keep} x {half})")
        start, stop = (max(1, round(f * half)) for f in self.fit)
        if stop - start < 4:
            raise ConfigError(f"tail.fit must span >= 4 modes of n_sample/2 = {half} (got "
                              f"[{start}, {stop}))")

    def modes(self, n_sample: int) -> dict:
        """``keep``, ``fit`` and ``until`` of :func:`with_tail` for a sample of n_sample."""
        return {"keep": max(1, round(self.keep * n_sample)),
                "fit": tuple(max(1, round(f * n_sample)) for f in self.fit),
                "until": self.until * n_sample}


@dataclass(frozen=True)
class TheoryTokenSettings(TokenSettings):
    """The RFA data and the model whose kernel is studied (vocabulary of :mod:`rfattn.rfa`)."""

    kind: str
    model: ModelSettings
    tail: TailSettings

    memory_hint: ClassVar[str] = "lower n_sample, n_grid, n_test or model.M"

    @property
    def job_label(self) -> str:
        return f"kind {self.kind}"

    def sample(self, n: int, *stream):
        """n samples from the theory's stream ``(seed, "theory", *stream)``."""
        return super().sample(n, "theory", *stream)

    def check_values(self) -> None:
        self.model.check_plugins(self.d, self.N)

    def _eigh_seconds(self, n: int) -> float:
        return 1.5 * n**3 / 2.5e10 + 8e-8 * n * n  # tridiagonal reduction, MRRR vectors


@dataclass(frozen=True)
class CurveSettings(TheoryTokenSettings):
    """Kind ``rfa_curves``: predictions for one model and every target."""

    targets: tuple[TargetSettings, ...]
    ridge: RidgeSettings
    n_sample: int
    mc_heads: int
    heads_grid: tuple[int, ...] = ()
    theory_points: int = 48

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "heads_grid", tuple(
            positive_int(f"heads_grid[{i}]", m) for i, m in enumerate(self.heads_grid)))
        positive_int("theory_points", self.theory_points)
        if not self.targets:
            raise ConfigError("targets must be a non-empty list of targets")
        targets = tuple(t if isinstance(t, TargetSettings) else
                        TargetSettings.from_config(f"targets[{i}]", t)
                        for i, t in enumerate(self.targets))
        object.__setattr__(self, "targets", targets)
        if positive_int("n_sample", self.n_sample) < 2 * self.n_grid[-1]:
            raise ConfigError(f"n_sample must be >= 2 max(n_grid) = {2 * self.n_grid[-1]}: "
                              f"below it the tail carries the curve (got {self.n_sample})")
        self.tail.check_sample(self.n_sample)
        if positive_int("mc_heads", self.mc_heads) < 8:
            raise ConfigError(f"mc_heads must be >= 8: its error needs several draws (got "
                              f"{self.mc_heads})")

    def check_values(self) -> None:
        super().check_values()
        for t in self.targets:
            self.build_target(t)

    def estimate_memory(self) -> int:
        """Peak bytes. On the CPU the Gram matrix is the only (n, n) matrix: built by row
        blocks or accumulated in place, reduced in place and freed before the eigenvectors;
        the half sample's copy or eigenvectors add a quarter of it (1.25); a Monte Carlo kernel
        adds one draw's features and the rows of its error; LAPACK and the libraries' first
        use about 256 MiB (measured above the job's start at 8192 samples, in Gram matrices:
        1.52 for the closed form, estimated 1.75; 1.75 for Monte Carlo with 1024 heads,
        estimated 2.23). On a GPU, :func:`torch.linalg.eigh` adds the
        eigenvectors and its workspace (3.5 Gram matrices).
        """
        n = self.n_sample
        gram_matrices = 3.5 if self.torch_device.type == "cuda" else 1.25
        features = 0 if self.model.closed_form else (
            3 * n * default_heads_per_draw(self.mc_heads) * (self.d + 1) + 4 * n * ERROR_ROWS)
        return 8 * (int(gram_matrices * n * n) + features) + LIBRARY_BYTES

    def estimate_seconds(self) -> float:
        """Run time on a 2-core CPU (calibrated there: 4096 samples, 8.5 s for the closed-form
        kernel, 9.7 s for a Monte Carlo one of 1024 heads, 36 s for the softmax control
        variate with 4096 heads: two feature maps per head; 3.3 s for the Hermite expansion
        of softmax heads at d = 4)."""
        n = self.n_sample
        per_pair = 3.2e-8 if bias_c(self.model, self.d) else 8e-9  # quadrature: 8.7 s, 4096
        controlled = self.model.activation == "softmax" and self.model.qk_mean == "zero"
        if self.model.activation == "softmax" and grid_fits(self.d):
            return 1.0 + self._eigh_seconds(n) + n * NODES**self.d / 1.6e7 + 2e-7 * n * n
        kernel = (per_pair * n * n * self.N**2 if self.model.closed_form
                  else (2 if controlled else 1) * 2 * n * n * self.mc_heads * (self.d + 1) / 8e10)
        return 1.0 + self._eigh_seconds(n) + kernel


@dataclass(frozen=True)
class SimulatedTokenSettings(TheoryTokenSettings):
    """A theory kind that also simulates: its target, spectrum sample, test set and seeds."""

    target_spec: TargetSettings
    n_sample: int
    n_test: int
    seeds: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("n_sample", self.n_sample)
        self.tail.check_sample(self.n_sample)
        positive_int("n_test", self.n_test)
        positive_int("seeds", self.seeds)

    def check_values(self) -> None:
        super().check_values()
        self.build_target(self.target_spec)


@dataclass(frozen=True)
class DoubleDescentSettings(SimulatedTokenSettings):
    """Kind ``double_descent``: RFA at a small fixed ridge across n = M (d+1)."""

    ridge_value: float

    def __post_init__(self):
        super().__post_init__()
        real("ridge_value", self.ridge_value, low=0.0, high=10.0, low_open=True)

    def estimate_memory(self) -> int:
        p = self.model.M * (self.d + 1)
        n = max(self.n_sample, self.n_grid[-1] + self.n_test)
        return 8 * (5 * n * n + 4 * n * p + 4 * p * p)

    def estimate_seconds(self) -> float:
        simulations = (self.seeds * 10 * (self.n_grid[-1] + self.n_test)
                       * (self.model.M * (self.d + 1)) ** 2 / 1e10)
        return 1.0 + self._eigh_seconds(self.n_sample) + simulations


@dataclass(frozen=True)
class ValiditySettings(SimulatedTokenSettings):
    """Kind ``rfa_validity``: a closed-form RFA kernel's prediction against simulated kernel
    regression at fixed ridges (the validity map on tokens)."""

    ridges: tuple[float, ...]

    def __post_init__(self):
        super().__post_init__()
        if not self.model.closed_form:
            raise ConfigError(f"model must have a closed-form kernel for kind rfa_validity "
                              f"(rfa, kernel or rfmlp; got {self.model.name})")
        check_ridges(self.ridges)
        if self.n_sample < 2 * self.n_grid[-1]:
            raise ConfigError(f"n_sample must be >= 2 max(n_grid) = {2 * self.n_grid[-1]} "
                              f"(got {self.n_sample})")

    def estimate_memory(self) -> int:
        n = max(self.n_sample, self.n_grid[-1] + self.n_test)
        return 8 * 5 * n * n

    def estimate_seconds(self) -> float:
        n, m = self.n_sample, self.n_grid[-1]
        kernel = 8e-9 * (n * n + self.seeds * m * (m + self.n_test)) * self.N**2
        solves = self.seeds * len(self.ridges) * sum(k**3 for k in self.n_grid) / 1e10
        return 1.0 + self._eigh_seconds(n) + kernel + solves


@dataclass(frozen=True)
class SphereSettings(KindSettings):
    """Kind ``sphere``: the NTK of a fully connected net on the sphere S^(D-1), or a user's
    dot-product kernel (``kernel``)."""

    D: int
    depth: int
    activation: str
    w_std: float
    beta: float
    degrees: int
    quadrature_points: int
    n_sample: int
    n_grid: tuple[int, ...]
    ridges: tuple[float, ...]
    target_power: tuple[float, ...]
    n_test: int
    seeds: int
    network_width: int
    network_steps: int
    network_lr: float
    network_n_max: int
    network_seeds: int
    kernel: str | None = None

    memory_hint: ClassVar[str] = "lower n_sample, n_grid or n_test"

    def __post_init__(self):
        super().__post_init__()
        if positive_int("D", self.D) < 2:
            raise ConfigError(f"D must be >= 2 (got {self.D})")
        positive_int("depth", self.depth)
        choice("activation", self.activation, ACTIVATIONS)
        real("w_std", self.w_std, low=0.0, high=1e3, low_open=True)
        real("beta", self.beta, low=0.0, high=1e3)
        positive_int("degrees", self.degrees)
        if positive_int("quadrature_points", self.quadrature_points) < 2 * self.degrees:
            raise ConfigError(f"quadrature_points must be >= 2 degrees = {2 * self.degrees} "
                              f"(got {self.quadrature_points})")
        positive_int("n_sample", self.n_sample)
        check_ridges(self.ridges)
        object.__setattr__(self, "n_grid", tuple(sorted({positive_int(f"n_grid[{i}]", n)
                                                         for i, n in enumerate(self.n_grid)})))
        if not self.target_power or len(self.target_power) > self.degrees:
            raise ConfigError(f"target_power must give the power of 1 to degrees="
                              f"{self.degrees} degrees (got {list(self.target_power)})")
        for i, p in enumerate(self.target_power):
            real(f"target_power[{i}]", p, low=0.0, high=1e6)
        positive_int("n_test", self.n_test)
        positive_int("seeds", self.seeds)
        nonnegative_int("network_width", self.network_width)
        positive_int("network_steps", self.network_steps)
        real("network_lr", self.network_lr, low=0.0, high=100.0, low_open=True)
        positive_int("network_n_max", self.network_n_max)
        nonnegative_int("network_seeds", self.network_seeds)
        if self.network_width and self.network_seeds > self.seeds:
            raise ConfigError(f"network_seeds must be <= seeds = {self.seeds} (got "
                              f"{self.network_seeds})")
        if self.kernel is not None and self.network_width:
            raise ConfigError(f"network_width must be 0 with a user's kernel (kernel="
                              f"{self.kernel}): the networks' NTK is not that kernel")

    def check_values(self) -> None:
        if self.kernel is not None:
            t = torch.linspace(-1.0, 1.0, 41, dtype=torch.float64)
            call_plugin("kernel", self.kernel, load_plugin("kernel", self.kernel), t,
                        shape=(41,), signature=DOT_PRODUCT_SIGNATURE)

    @property
    def network_sizes(self) -> tuple[int, ...]:
        """The n of ``n_grid`` at which networks are trained (none without a width)."""
        if not self.network_width or not self.network_seeds:
            return ()
        return tuple(n for n in self.n_grid if n <= self.network_n_max)

    def kernel_matrix(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        """The kernel between points of the sphere: the user's k(<x, x'>), else the network's
        analytic NTK."""
        if self.kernel is None:
            return fc_kernels(x1, x2, depth=self.depth, activation=self.activation,
                              w_std=self.w_std, b_std=self.beta).ntk
        t = (x1 @ (x1 if x2 is None else x2).T).clamp(-1.0, 1.0)
        return torch.as_tensor(load_plugin("kernel", self.kernel)(t)).to(t)

    def estimate_memory(self) -> int:
        n = max(self.n_sample, self.n_grid[-1] + self.n_test)
        return 8 * 5 * n * n

    def estimate_seconds(self) -> float:
        n = self.n_sample
        seconds = 1.5 * n**3 / 2.5e10 + 8e-8 * n * n
        seconds += self.seeds * self.n_grid[-1] ** 3 * len(self.ridges) * len(self.n_grid) / 1e10
        width2 = self.network_width * (self.network_width if self.depth > 2 else 1)
        seconds += self.network_seeds * sum(self.network_steps * (2e-4 + 1e-8 * n * width2)
                                            for n in self.network_sizes)
        return 1.0 + seconds


SETTINGS = {"rfa_curves": CurveSettings, "double_descent": DoubleDescentSettings,
            "rfa_validity": ValiditySettings, "sphere": SphereSettings}


def dot_product_values(s: SphereSettings, t) -> np.ndarray:
    """k(t) on the sphere S^(D-1) for t in [-1, 1]: the kernel between e_1 and the point at
    inner product t."""
    t = torch.as_tensor(t, dtype=torch.float64)
    x2 = torch.zeros(len(t), s.D, dtype=torch.float64)
    x2[:, 0], x2[:, 1] = t, (1 - t * t).clamp(min=0).sqrt()
    x1 = torch.zeros(1, s.D, dtype=torch.float64)
    x1[0, 0] = 1.0
    return s.kernel_matrix(x1, x2)[0].numpy()
