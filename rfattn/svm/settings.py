"""Settings of the Att-SVM study jobs (one class per ``kind``), with their cost models.

Vocabulary (Tarzanagh, Li, Thrampoulidis, Oymak 2023, arXiv 2308.16898): n samples per
instance, N tokens per sample (the paper's T), d token dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..core.checks import ConfigError, boolean, choice, positive_int, real
from ..core.runtime import generator
from ..core.study import KindSettings
from .dynamics import INITS, LOSSES, PARAMETERIZATIONS, AttentionData, train_attention
from .nuclear import Tolerances

STEP_SECONDS = 5e-4  # per gradient step: the cost of small tensors is the calls themselves


@dataclass(frozen=True)
class SVMSettings(KindSettings):
    """Settings every Att-SVM job shares.

    Vocabulary (Tarzanagh et al. 2023): n samples per instance, N tokens per sample (the
    paper's T), d token dimension; ``dtype`` is that of gradient descent (the SVMs are solved
    in float64).
    """

    n: int
    N: int
    d: int

    memory_hint: ClassVar[str] = "lower runs, n, N, d or steps"
    parallel_runs = property(lambda self: 1)  # instances trained (or solved) at once
    training_steps = property(lambda self: 0)
    solves_nuclear = property(lambda self: True)
    solves_official_sdp = property(lambda self: False)
    passes = property(lambda self: 1)  # parameterizations trained and solved

    @property
    def job_label(self) -> str:
        return f"kind {self.kind} with runs={self.parallel_runs}"

    def estimate_memory(self) -> int:
        """Peak bytes: the runs' data and one instance's constraint matrix (float64); with
        training, the recorded iterates and the autograd buffers of gradient descent."""
        item = torch.finfo(self.torch_dtype).bits // 8
        runs, n, N, d = self.parallel_runs, self.n, self.N, self.d
        data = runs * (n * N * d + n * d + d + d * d) * item
        rows = n * max(N - 1, 1) * N  # seq2seq-sized upper bound on the constraints
        return data + 4 * rows * d * d * 8

    def estimate_seconds(self) -> float:
        """Rough run time on a 2-core CPU (calibrated on the quick sweeps): gradient steps of
        all runs at once, then per run the SVM solves (a few ms at 50 constraints, growing like
        constraints^1.5) and the official SCS solve when asked."""
        per_step = STEP_SECONDS + self.parallel_runs * self.n * self.N * self.d * 40 / 5e9
        train = self.training_steps * per_step * self.passes
        constraints = self.n * (self.N - 1)
        solve = 1e-3 + (4e-3 * (constraints / 50) ** 1.5 if self.solves_nuclear else 0)
        solve += 0.015 if self.solves_official_sdp else 0.0
        return 0.3 + train + self.parallel_runs * solve * self.passes

    def __post_init__(self):
        super().__post_init__()
        positive_int("n", self.n)
        positive_int("N", self.N)
        if self.N < 2:
            raise ConfigError(f"N (tokens) must be >= 2: with one token there is nothing to "
                              f"select (got {self.N})")
        positive_int("d", self.d)


@dataclass(frozen=True)
class TrainingSettings(SVMSettings):
    """Gradient descent of the official code (module :mod:`rfattn.svm.dynamics`)."""

    steps: int
    lr: float
    loss: str
    normalized: bool
    init: str
    record_every: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("steps", self.steps)
        real("lr", self.lr, low=0.0, high=1e3, low_open=True)
        choice("loss", self.loss, LOSSES)
        boolean("normalized", self.normalized)
        choice("init", self.init, INITS)
        positive_int("record_every", self.record_every)

    training_steps = property(lambda self: self.steps)

    def estimate_memory(self) -> int:
        item = torch.finfo(self.torch_dtype).bits // 8
        runs, d = self.parallel_runs, self.d
        records = runs * (self.steps // self.record_every + 2) * d * d * item * 2
        autograd = 12 * runs * self.n * self.N * d * item
        return super().estimate_memory() + records + autograd

    def train(self, data: AttentionData, parameterization: str, head: str = "linear"):
        """GD of every run at once on the job's device and dtype; iterates come to the CPU."""
        return train_attention(data.to(self.torch_device, self.torch_dtype), self.steps,
                               self.lr, parameterization, head, self.loss, self.normalized,
                               self.init, record_every=self.record_every,
                               generator=generator(self.seed, "svm", "init", parameterization))


@dataclass(frozen=True)
class DynamicsSettings(TrainingSettings):
    """Gradient descent, then both SVMs of the tokens it selects."""

    rank_rtol: float
    gap_tol: float

    def __post_init__(self):
        super().__post_init__()
        real("rank_rtol", self.rank_rtol, low=0.0, high=1.0, low_open=True)
        Tolerances.from_gap_tol(self.gap_tol)


@dataclass(frozen=True)
class TrajectorySettings(DynamicsSettings):
    """Kind ``trajectory`` (E1, E2): one 2-D instance, both parameterizations, both SVMs."""

    def __post_init__(self):
        super().__post_init__()
        if self.d != 2:
            raise ConfigError(f"d must be 2 for kind trajectory (2-D pictures; got {self.d})")

    passes = property(lambda self: 2)


@dataclass(frozen=True)
class ConvergenceSettings(DynamicsSettings):
    """Kind ``convergence`` (E3, E6): ``runs`` instances trained at once, against the SVMs."""

    runs: int
    parameterization: str
    nuclear: bool
    iterate_rank_rtol: float

    def __post_init__(self):
        super().__post_init__()
        positive_int("runs", self.runs)
        choice("parameterization", self.parameterization, PARAMETERIZATIONS)
        boolean("nuclear", self.nuclear)
        real("iterate_rank_rtol", self.iterate_rank_rtol, low=0.0, high=1.0, low_open=True)

    parallel_runs = property(lambda self: self.runs)
    solves_nuclear = property(lambda self: self.nuclear)


@dataclass(frozen=True)
class NonlinearSettings(TrainingSettings):
    """Kind ``nonlinear`` (E4): ReLU head; the multi-token SVM-equivalence."""

    runs: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("runs", self.runs)

    parallel_runs = property(lambda self: self.runs)


@dataclass(frozen=True)
class RankSettings(SVMSettings):
    """Kind ``rank`` (E5, feasibility): alpha = opt; feasibility and ranks of both SVMs."""

    runs: int
    rank_rtol: float
    gap_tol: float
    loose_rank_rtol: float
    official_sdp: bool

    def __post_init__(self):
        super().__post_init__()
        positive_int("runs", self.runs)
        real("rank_rtol", self.rank_rtol, low=0.0, high=1.0, low_open=True)
        Tolerances.from_gap_tol(self.gap_tol)
        real("loose_rank_rtol", self.loose_rank_rtol, low=0.0, high=1.0, low_open=True)
        boolean("official_sdp", self.official_sdp)

    parallel_runs = property(lambda self: self.runs)
    solves_official_sdp = property(lambda self: self.official_sdp)


SETTINGS = {"trajectory": TrajectorySettings, "convergence": ConvergenceSettings,
            "nonlinear": NonlinearSettings, "rank": RankSettings}
