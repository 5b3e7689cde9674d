"""The RFA study job: one (model, target, seed) setting over a grid of sample sizes n.

:func:`run_rfa_job` is a pure function of its config (a plain dict, as composed from
``conf/rfa.yaml``) and returns tidy rows: one row per n x metric with the setting columns. It
shares work across n: tokens and features are drawn once at the largest n, every smaller n uses
a prefix, and each (n, model, seed) costs one eigendecomposition for the whole lambda path.
Lambda is chosen on a held-out validation sample (``selection: val``) or by exact leave-one-out
(``selection: loo``); the test error is normalized by the variance of the noiseless target.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..core.checks import (ConfigError, boolean, choice, fits_in_memory, positive_int,
                           positive_ints, real, text)
from ..core.runtime import available_memory, generator, get_logger
from ..core.settings import RunSettings, settings_from
from ..linalg.ridge import prefix_kernel_ridge_paths, prefix_ridge_paths
from .features import ACTIVATIONS, RandomFeatureAttention, RandomFeatureMLP
from .kernels import rfa_relu_kernel
from .sampling import QK_MEANS, TOKEN_DISTRIBUTIONS, sample_tokens
from .targets import MAX_DEGREE, SIMILARITY_FUNCTIONS, TARGETS, Target, make_target

MODEL_FAMILIES = ("attention", "mlp", "kernel")
SELECTIONS = ("val", "loo")
METRICS = ("test_error", "val_error", "train_error", "lambda")
log = get_logger(__name__)


@dataclass(frozen=True)
class RidgeSettings:
    """The ridge path: lambda on a log grid, chosen on held-out data or by leave-one-out."""

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


#: keys each model family needs (besides name, family and M); the others must be absent
FAMILY_KEYS = {"attention": ("activation", "qk_mean", "qk_variance", "bias_c_over_sqrt_d"),
               "mlp": ("width",), "kernel": ("qk_variance",)}


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
    activation, qk_mean, qk_variance, bias_c_over_sqrt_d
        Attention: relu | softmax; zero | biased; the entry variance s^2 of W_m;
        c / sqrt(d) for biased heads. The kernel uses ``qk_variance`` only.
    width : int or None
        MLP features (None: M (d+1), parameter-matched).
    """

    name: str
    family: str
    M: int | None
    activation: str | None = None
    qk_mean: str | None = None
    qk_variance: float | None = None
    bias_c_over_sqrt_d: float | None = None
    width: int | None = None

    def __post_init__(self):
        text("model.name", self.name)
        choice("model.family", self.family, MODEL_FAMILIES)
        needed = FAMILY_KEYS[self.family]
        for key in ("activation", "qk_mean", "qk_variance", "bias_c_over_sqrt_d", "width"):
            given = getattr(self, key) is not None
            if key not in needed and given:
                raise ConfigError(f"model.{key} is not used by model family {self.family} "
                                  f"(it uses {', '.join(('M',) + needed)})")
            if key in needed and key != "width" and not given:
                raise ConfigError(f"model.{key} is missing from the config (model family "
                                  f"{self.family} needs it)")
        if self.family != "kernel" or self.M is not None:
            positive_int("model.M", self.M)
        if self.family == "attention":
            choice("model.activation", self.activation, ACTIVATIONS)
            choice("model.qk_mean", self.qk_mean, QK_MEANS)
            real("model.bias_c_over_sqrt_d", self.bias_c_over_sqrt_d, low=-1e3, high=1e3)
        if self.qk_variance is not None:
            real("model.qk_variance", self.qk_variance, low=0.0, high=1e6, low_open=True)
        if self.width is not None:
            positive_int("model.width", self.width)

    def num_features(self, d: int) -> int:
        """Trainable parameters: M (d+1) for RFA, the width for RFMLP, 0 for the kernel."""
        if self.family == "mlp":
            return int(self.width or self.M * (d + 1))
        if self.family == "attention":
            return int(self.M * (d + 1))
        return 0


@dataclass(frozen=True)
class TargetSettings:
    """A target family (module :mod:`rfattn.rfa.targets`) and its complexity knob."""

    name: str
    degree: int | None = None
    function: str | None = None

    def __post_init__(self):
        choice("target.name", self.name, TARGETS)
        uses = {"single_key": "degree", "query_key": "degree", "similarity": "function"}
        used = uses.get(self.name)
        for key in ("degree", "function"):
            if key != used and getattr(self, key) is not None:
                raise ConfigError(f"target.{key} is not used by target {self.name}")
        if used is not None and getattr(self, used) is None:
            raise ConfigError(f"target.{used} is missing from the config (target {self.name} "
                              "needs it)")
        if self.degree is not None and positive_int("target.degree", self.degree) > MAX_DEGREE:
            raise ConfigError(f"target.degree must lie in [1, {MAX_DEGREE}] (got {self.degree})")
        if self.function is not None:
            choice("target.function", self.function, list(SIMILARITY_FUNCTIONS))


@dataclass(frozen=True)
class RFASettings(RunSettings):
    """Settings of one RFA job: a (model, target, seed) over a grid of sample sizes.

    Vocabulary (Fu, Guo, Bai, Mei 2023): n samples (``n_grid``), d token dimension, N keys
    per sample (tokens x_1..x_N besides the query x_0), M heads (``model.M``).
    """

    d: int
    N: int
    tokens: str
    n_grid: tuple[int, ...]
    n_val: int
    n_test: int
    noise_std: float
    centred_target: bool
    ridge: RidgeSettings
    model: ModelSettings
    target: TargetSettings

    def __post_init__(self):
        super().__post_init__()
        positive_int("d", self.d)
        positive_int("N", self.N)
        choice("tokens", self.tokens, TOKEN_DISTRIBUTIONS)
        object.__setattr__(self, "n_grid", tuple(positive_ints("n_grid", self.n_grid)))
        positive_int("n_val", self.n_val)
        positive_int("n_test", self.n_test)
        if self.n_test < 2:
            raise ConfigError(f"n_test must be an integer >= 2 (the test error is normalized by "
                              f"the test targets' variance; got {self.n_test})")
        real("noise_std", self.noise_std, low=0.0, high=1e3)
        boolean("centred_target", self.centred_target)

    def make_target(self) -> Target:
        t = self.target
        return make_target(t.name, self.d, self.N, t.degree or 1, t.function or "relu",
                           self.tokens, self.centred_target)

    @property
    def num_features(self) -> int:
        return self.model.num_features(self.d)


def validate(cfg: dict) -> RFASettings:
    """Check every value of a job config before any work.

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/rfa.yaml``.

    Returns
    -------
    RFASettings

    Raises
    ------
    ConfigError
        Naming the first bad key and its allowed values.
    """
    settings = settings_from(RFASettings, cfg)
    settings.make_target()  # a constant target is refused here
    return settings


def estimate_memory(s: RFASettings) -> int:
    """Peak bytes of the largest tensors of the job (in its dtype)."""
    n_max, n_eval = s.n_grid[-1], s.n_val + s.n_test
    item = torch.finfo(s.torch_dtype).bits // 8
    p = s.num_features
    tokens = (n_max + n_eval) * (s.N + 1) * s.d * item
    if s.model.family == "kernel":
        mats = (n_max * n_max * 3 + n_eval * n_max * 2) * item
    else:
        n_dual = max([n for n in s.n_grid if n < p], default=0)
        mats = ((n_max + n_eval) * p + 4 * p * p + 3 * n_dual * n_dual
                + n_eval * (n_dual + p)) * item
    return tokens + mats


FLOPS_PER_SECOND = 1.2e10  # calibrated on the quick sweeps (2-core CPU, float64)


def estimate_seconds(s: RFASettings) -> float:
    """Rough run time of the job on a 2-core CPU: features (or kernel blocks) of every sample
    and one eigendecomposition per n."""
    n_max, n_all = s.n_grid[-1], s.n_grid[-1] + s.n_val + s.n_test
    q, p = s.d + 1, s.num_features
    if s.model.family == "kernel":
        work = 30 * n_all * n_max * s.N * s.N * q + sum(4 * n**3 for n in s.n_grid)
    else:
        per_sample = (s.model.M * s.N * q * (q + 2) * 2 if s.model.family == "attention"
                      else p * ((s.N + 1) * s.d + 1) * 2)
        work = n_all * per_sample + sum(4 * min(n, p) ** 3 + 2 * n * p * min(n, p)
                                        for n in s.n_grid)
    return 0.2 + work / FLOPS_PER_SECOND


def check_fits(s: RFASettings) -> None:
    fits_in_memory(f"model {s.model.name} at n={s.n_grid[-1]}", estimate_memory(s),
                   0.8 * available_memory(s.torch_device),
                   "lower max(n_grid), n_val, n_test, model.M, model.width, d or N")


def build_feature_map(s: RFASettings):
    """The model's frozen random features, drawn from the stream (seed, 'weights', family)."""
    model, d, N = s.model, s.d, s.N
    gen = generator(s.seed, "weights", model.family)
    dtype, device = s.torch_dtype, s.torch_device
    if model.family == "mlp":
        return RandomFeatureMLP.sample(s.num_features, N, d, gen, dtype=dtype, device=device)
    c = model.bias_c_over_sqrt_d * math.sqrt(d)
    return RandomFeatureAttention.sample(model.M, d, gen, model.activation, model.qk_mean,
                                         model.qk_variance, c, dtype, device)


def run_rfa_job(cfg: dict) -> pd.DataFrame:
    """One RFA job: errors and the chosen lambda for every n of the grid.

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/rfa.yaml`` (see :class:`RFASettings`).

    Returns
    -------
    DataFrame
        Tidy rows: the setting columns (model, family, target, degree, function,
        target_label, tokens, d, N, M (0 for the kernel), num_features, noise_std,
        centred_target, and for attention activation and bias_c_over_sqrt_d), ``n``,
        ``seed``, ``metric`` (test_error, val_error, train_error: MSE / Var f*; lambda) and
        ``value``.
    """
    s = validate(cfg)
    check_fits(s)
    log.info("%s on target %s (d=%d, N=%d, M=%s), n up to %d, seed %d, %s %s", s.model.name,
             s.target.name, s.d, s.N, s.model.M, s.n_grid[-1], s.seed, s.torch_device, s.dtype)
    start = time.perf_counter()
    target = s.make_target()
    dtype, device = s.torch_dtype, s.torch_device
    sizes = {"train": s.n_grid[-1], "val": s.n_val, "test": s.n_test}
    data = {}
    for split, size in sizes.items():
        x0, X = sample_tokens(size, s.N, s.d, generator(s.seed, "tokens", split), s.tokens,
                              dtype, device)
        clean = target(x0, X)
        noise = torch.randn(size, generator=generator(s.seed, "noise", split),
                            dtype=torch.float64)
        y = clean if split == "test" else clean + s.noise_std * noise.to(clean)
        data[split] = (x0, X, y)
    lambdas, loo = s.ridge.lambdas, s.ridge.selection == "loo"
    model = s.model
    if model.family == "kernel":
        train = data["train"]
        gram = rfa_relu_kernel(train[0], train[1], variance=model.qk_variance)
        evals = {split: (rfa_relu_kernel(data[split][0], data[split][1], train[0], train[1],
                                         model.qk_variance), data[split][2])
                 for split in ("val", "test")}
        paths = prefix_kernel_ridge_paths(gram, train[2], s.n_grid, lambdas, evals, loo=loo)
    else:
        fmap = build_feature_map(s)
        feats = {split: fmap.features(data[split][0], data[split][1]) for split in data}
        evals = {split: (feats[split], data[split][2]) for split in ("val", "test")}
        paths = prefix_ridge_paths(feats["train"], data["train"][2], s.n_grid, lambdas, evals,
                                   loo=loo)
    scale = float(data["test"][2].var())
    setting = {
        "model": model.name, "family": model.family,
        "target": target.name, "degree": target.degree, "function": target.function,
        "target_label": target.label, "tokens": s.tokens, "d": s.d, "N": s.N,
        "M": model.M if model.family != "kernel" else 0,
        "num_features": s.num_features, "noise_std": s.noise_std,
        "centred_target": s.centred_target, "activation": model.activation,
        "bias_c_over_sqrt_d": model.bias_c_over_sqrt_d,
    }
    rows = []
    for path in paths:
        best = path.best("loo" if loo else "val")
        metrics = {"test_error": float(path.mse["test"][best]) / scale,
                   "val_error": float(path.mse["val"][best]) / scale,
                   "train_error": float(path.mse["train"][best]) / scale,
                   "lambda": float(path.lambdas[best])}
        rows += [{**setting, "n": path.n, "seed": s.seed, "metric": k, "value": v}
                 for k, v in metrics.items()]
    log.info("%s on %s, seed %d: %d sizes in %.2fs; test error %.4g at n=%d", model.name,
             target.label, s.seed, len(paths), time.perf_counter() - start,
             rows[-4]["value"], paths[-1].n)
    return pd.DataFrame(rows)
