"""Settings of the RFA study: tokens, the ridge path, a model, a target; public so that the
theory (:mod:`rfattn.theory`) predicts the same models and targets from the same configs.

Vocabulary (Fu, Guo, Bai, Mei 2023, arXiv 2307.11353): n samples (``n_grid``), d token
dimension, N keys per sample (tokens x_1..x_N besides the query x_0), M heads (``model.M``).

Plug-ins: ``target.fn``, ``model.activation`` and ``model.kernel`` take a user's own
function as ``module:function`` (:mod:`rfattn.core.plugins`); each is called on a sample when
the settings are validated, so a bad one is named before any job runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..core.checks import (ConfigError, boolean, choice, positive_int, positive_ints, real,
                           text)
from ..core.plugins import is_plugin
from ..core.runtime import generator
from ..core.study import JobSettings
from .features import ACTIVATIONS, check_activation
from .kernels import check_kernel
from .sampling import QK_MEANS, TOKEN_DISTRIBUTIONS, sample_tokens
from .targets import MAX_DEGREE, SIMILARITY_FUNCTIONS, TARGETS, Target, make_target

MODEL_FAMILIES = ("attention", "mlp", "kernel")
SELECTIONS = ("val", "loo")
LOO_MIN_N = 2  # with one sample the leave-one-out error is y^2 for every lambda


@dataclass(frozen=True)
class RidgeSettings:
    """The ridge path: lambda on a log grid, chosen on held-out data or by leave-one-out.

    Attributes
    ----------
    log10_min, log10_max : float
        Ends of the grid, in [-16, 6].
    num : int
        Points of the grid, in [1, 10000].
    selection : str
        ``val`` (held-out) or ``loo`` (exact leave-one-out; every n >= 2).
    """

    log10_min: float
    log10_max: float
    num: int
    selection: str

    def __post_init__(self):
        lo = real("ridge.log10_min", self.log10_min, low=-16, high=6)
        real("ridge.log10_max", self.log10_max, low=lo, high=6)
        if positive_int("ridge.num", self.num) > 10_000:
            raise ConfigError(f"ridge.num must lie in [1, 10000] (got {self.num})")
        choice("ridge.selection", self.selection, SELECTIONS)

    @property
    def lambdas(self) -> np.ndarray:
        """The log-spaced grid of regularizations."""
        return np.logspace(self.log10_min, self.log10_max, self.num)

    def check_sizes(self, n_grid: tuple[int, ...]) -> None:
        """Leave-one-out selection needs every n of the grid to be at least ``LOO_MIN_N``."""
        if self.selection == "loo" and n_grid[0] < LOO_MIN_N:
            raise ConfigError(f"ridge.selection=loo needs every n of n_grid >= {LOO_MIN_N}: with "
                              f"one sample the leave-one-out error is y^2 for every lambda "
                              f"(got n={n_grid[0]}); use ridge.selection=val")


#: keys each model family needs (besides name, family and M); the others must be absent
FAMILY_KEYS = {"attention": ("activation", "qk_mean", "qk_variance", "bias_c_over_sqrt_d"),
               "mlp": ("width",), "kernel": ("qk_variance",)}
OPTIONAL_KEYS = {"kernel": ("kernel",)}


@dataclass(frozen=True)
class ModelSettings:
    """A model: random-feature attention, the random-feature MLP or the infinite-head kernel.

    Attributes
    ----------
    name : str
        The label of the model in rows and figures.
    family : str
        ``attention`` | ``mlp`` | ``kernel``.
    M : int or None
        Heads (attention; trainable parameters M (d+1)); the RFA head count an MLP is matched
        to; ignored by the kernel (M = infinity).
    activation : str or None
        Attention: ``relu`` (1/N normalized), ``softmax``, or a user's elementwise function
        ``module:function`` (1/N normalized like ReLU).
    qk_mean, qk_variance, bias_c_over_sqrt_d
        Attention: zero | biased; the entry variance s^2 of W_m; c / sqrt(d) for biased heads.
        The kernel uses ``qk_variance`` only.
    width : int or None
        MLP features (None: M (d+1), parameter-matched).
    kernel : str or None
        The kernel family only: a user's kernel on samples ``module:function``,
        ``k(x0 (n, d), X (n, N, d), y0 (m, d), Y (m, N, d)) -> (n, m)``; None: the closed-form
        infinite-head kernel of zero-mean ReLU RFA.
    """

    name: str
    family: str
    M: int | None
    activation: str | None = None
    qk_mean: str | None = None
    qk_variance: float | None = None
    bias_c_over_sqrt_d: float | None = None
    width: int | None = None
    kernel: str | None = None

    def __post_init__(self):
        text("model.name", self.name)
        choice("model.family", self.family, MODEL_FAMILIES)
        needed = FAMILY_KEYS[self.family]
        allowed = needed + OPTIONAL_KEYS.get(self.family, ())
        values = {"activation": self.activation, "qk_mean": self.qk_mean,
                  "qk_variance": self.qk_variance, "bias_c_over_sqrt_d": self.bias_c_over_sqrt_d,
                  "width": self.width, "kernel": self.kernel}
        for key, value in values.items():
            if key not in allowed and value is not None:
                raise ConfigError(f"model.{key} is not used by model family {self.family} "
                                  f"(it uses {', '.join(('M',) + allowed)})")
            if key in needed and key != "width" and value is None:
                raise ConfigError(f"model.{key} is missing from the config (model family "
                                  f"{self.family} needs it)")
        if self.family != "kernel" or self.M is not None:
            positive_int("model.M", self.M)
        if self.family == "attention":
            if not is_plugin(self.activation):
                choice("model.activation", self.activation, ACTIVATIONS + ("module:function",))
            choice("model.qk_mean", self.qk_mean, QK_MEANS)
            real("model.bias_c_over_sqrt_d", self.bias_c_over_sqrt_d, low=-1e3, high=1e3)
        if self.qk_variance is not None:
            real("model.qk_variance", self.qk_variance, low=0.0, high=1e6, low_open=True)
        if self.width is not None:
            positive_int("model.width", self.width)

    def check_plugins(self, d: int, N: int) -> None:
        """Call the model's plug-ins (activation, kernel) on a sample of tokens."""
        if self.family == "attention" and is_plugin(self.activation):
            check_activation("model.activation", self.activation)
        if self.kernel is not None:
            check_kernel("model.kernel", self.kernel, d, N)

    @property
    def closed_form(self) -> bool:
        """Whether the model's infinite-width kernel is computed exactly here: ReLU attention
        (zero-mean, or biased with qk_variance > 0: :func:`~rfattn.rfa.rfa_relu_kernel`), the
        RFMLP and the kernel model; else it is a Monte Carlo average over heads, whose error
        is recorded."""
        return self.family in ("mlp", "kernel") or (
            self.activation == "relu" and (self.qk_mean == "zero" or self.qk_variance > 0))

    def num_features(self, d: int) -> int:
        """Trainable parameters: M (d+1) for RFA, the width for RFMLP, 0 for the kernel."""
        if self.family == "mlp":
            return int(self.width or self.M * (d + 1))
        if self.family == "attention":
            return int(self.M * (d + 1))
        return 0


@dataclass(frozen=True)
class TargetSettings:
    """A target family (module :mod:`rfattn.rfa.targets`) and its complexity knob, or a
    user's own target ``name: custom`` with ``fn: module:function``.

    Attributes
    ----------
    name : str
        ``single_key``, ``query_key``, ``similarity``, ``two_key`` or ``custom``.
    degree : int or None
        Hermite degree of the polynomial families.
    function : str or None
        F of the similarity family.
    fn : str or None
        ``custom`` only: ``module:function``, f(x0 (n, d), X (n, N, d)) -> (n,).
    """

    name: str
    degree: int | None = None
    function: str | None = None
    fn: str | None = None

    USES: ClassVar[dict] = {"single_key": "degree", "query_key": "degree",
                            "similarity": "function", "custom": "fn"}

    def __post_init__(self):
        choice("target.name", self.name, TARGETS)
        used = self.USES.get(self.name)
        for key in ("degree", "function", "fn"):
            if key != used and getattr(self, key) is not None:
                raise ConfigError(f"target.{key} is not used by target {self.name}")
        if used is not None and getattr(self, used) is None:
            raise ConfigError(f"target.{used} is missing from the config (target {self.name} "
                              "needs it)")
        if self.degree is not None and positive_int("target.degree", self.degree) > MAX_DEGREE:
            raise ConfigError(f"target.degree must lie in [1, {MAX_DEGREE}] (got {self.degree})")
        if self.function is not None:
            choice("target.function", self.function, list(SIMILARITY_FUNCTIONS))
        if self.fn is not None and not is_plugin(self.fn):
            raise ConfigError(f"target.fn must have the form module:function (got {self.fn!r})")

    @classmethod
    def from_config(cls, where: str, value) -> TargetSettings:
        """A target from a plain mapping of a list (``targets[i]``), its keys named there."""
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a target (name, and degree, function or fn)")
        unknown = set(value) - {"name", "degree", "function", "fn"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]} is not a setting of a target")
        if "name" not in value:
            raise ConfigError(f"{where}.name is missing from the config")
        return cls(**value)


@dataclass(frozen=True)
class TokenSettings(JobSettings):
    """The RFA data every RFA job and theory prediction shares: n samples (``n_grid``) of one
    query and N keys in R^d, and whether targets are centred.

    Attributes
    ----------
    d, N : int
        Token dimension and keys per sample.
    tokens : str
        ``sphere`` (the paper's) or ``gaussian``.
    n_grid : tuple of int
        Training sizes, sorted.
    centred_target : bool
        Subtract each target's mean (False: the paper's uncentred targets).
    """

    d: int
    N: int
    tokens: str
    n_grid: tuple[int, ...]
    centred_target: bool

    def __post_init__(self):
        super().__post_init__()
        positive_int("d", self.d)
        positive_int("N", self.N)
        choice("tokens", self.tokens, TOKEN_DISTRIBUTIONS)
        object.__setattr__(self, "n_grid", tuple(positive_ints("n_grid", self.n_grid)))
        boolean("centred_target", self.centred_target)

    def build_target(self, t: TargetSettings) -> Target:
        """The target ``t`` on this data, normalized to unit variance."""
        return make_target(t.name, self.d, self.N, t.degree or 1, t.function or "relu",
                           self.tokens, self.centred_target, fn=t.fn)

    def sample(self, n: int, *stream):
        """n samples (x0, X) from the stream ``(seed, *stream)``, on the job's device."""
        return sample_tokens(n, self.N, self.d, generator(self.seed, *stream), self.tokens,
                             self.torch_dtype, self.torch_device)


FLOPS_PER_SECOND = 1.2e10  # calibrated on the quick sweeps (2-core CPU, float64)


@dataclass(frozen=True)
class RFASettings(TokenSettings):
    """Settings of one RFA job: a (model, target, seed) over a grid of sample sizes."""

    n_val: int
    n_test: int
    noise_std: float
    ridge: RidgeSettings
    model: ModelSettings
    target: TargetSettings

    memory_hint: ClassVar[str] = "lower max(n_grid), n_val, n_test, model.M, model.width, d or N"

    def __post_init__(self):
        super().__post_init__()
        positive_int("n_val", self.n_val)
        positive_int("n_test", self.n_test)
        if self.n_test < 2:
            raise ConfigError(f"n_test must be an integer >= 2 (the test error is normalized by "
                              f"the test targets' variance; got {self.n_test})")
        real("noise_std", self.noise_std, low=0.0, high=1e3)
        self.ridge.check_sizes(self.n_grid)

    def check_values(self) -> None:
        self.model.check_plugins(self.d, self.N)
        self.make_target()  # a constant target or a bad target.fn is refused here

    def make_target(self) -> Target:
        return self.build_target(self.target)

    @property
    def num_features(self) -> int:
        return self.model.num_features(self.d)

    @property
    def job_label(self) -> str:
        return f"model {self.model.name} at n={self.n_grid[-1]}"

    def estimate_memory(self) -> int:
        """Peak bytes of the largest tensors of the job (in its dtype)."""
        n_max, n_eval = self.n_grid[-1], self.n_val + self.n_test
        item = torch.finfo(self.torch_dtype).bits // 8
        p = self.num_features
        tokens = (n_max + n_eval) * (self.N + 1) * self.d * item
        if self.model.family == "kernel":
            mats = (n_max * n_max * 3 + n_eval * n_max * 2) * item
        else:
            n_dual = max([n for n in self.n_grid if n < p], default=0)
            mats = ((n_max + n_eval) * p + 4 * p * p + 3 * n_dual * n_dual
                    + n_eval * (n_dual + p)) * item
        return tokens + mats

    def estimate_seconds(self) -> float:
        """Rough run time of the job on a 2-core CPU: features (or kernel blocks) of every
        sample and one eigendecomposition per n."""
        n_max, n_all = self.n_grid[-1], self.n_grid[-1] + self.n_val + self.n_test
        q, p, N = self.d + 1, self.num_features, self.N
        if self.model.family == "kernel":
            work = 30 * n_all * n_max * N * N * q + sum(4 * n**3 for n in self.n_grid)
        else:
            per_sample = (self.model.M * N * q * (q + 2) * 2 if self.model.family == "attention"
                          else p * ((N + 1) * self.d + 1) * 2)
            work = n_all * per_sample + sum(4 * min(n, p) ** 3 + 2 * n * p * min(n, p)
                                            for n in self.n_grid)
        return 0.2 + work / FLOPS_PER_SECOND


def bias_c(model: ModelSettings, d: int) -> float:
    """The bias scale c of biased heads, from ``bias_c_over_sqrt_d`` (0 for zero-mean heads)."""
    return (model.bias_c_over_sqrt_d or 0.0) * math.sqrt(d)
