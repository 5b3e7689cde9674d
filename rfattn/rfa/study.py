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

import numpy as np
import pandas as pd
import torch

from ..core.checks import (ConfigError, choice, fits_in_memory, nonnegative,
                                 positive_int, positive_ints, real)
from ..core.runtime import (available_memory, generator, get_logger, resolve_device,
                                  resolve_dtype)
from ..linalg.ridge import prefix_kernel_ridge_paths, prefix_ridge_paths
from .features import RandomFeatureAttention, RandomFeatureMLP
from .kernels import rfa_relu_kernel
from .sampling import QK_MEANS, TOKEN_DISTRIBUTIONS, sample_tokens
from .targets import make_target

MODEL_FAMILIES = ("attention", "mlp", "kernel")
SELECTIONS = ("val", "loo")
METRICS = ("test_error", "val_error", "train_error", "lambda")
log = get_logger(__name__)


def lambda_grid(spec: dict) -> np.ndarray:
    """``{log10_min, log10_max, num}`` -> a log-spaced grid of regularizations."""
    lo = real("ridge.log10_min", spec["log10_min"], low=-16, high=6)
    hi = real("ridge.log10_max", spec["log10_max"], low=lo, high=6)
    return np.logspace(lo, hi, positive_int("ridge.num", spec["num"]))


def validate(cfg: dict) -> dict:
    """Check every value of a job config before any work; return derived sizes."""
    for key in ("seed", "d", "N", "n_grid", "n_val", "n_test", "model", "target", "ridge"):
        if key not in cfg:
            raise ConfigError(f"{key} is missing from the config")
    positive_int("d", cfg["d"])
    positive_int("N", cfg["N"])
    positive_ints("n_grid", cfg["n_grid"])
    positive_int("n_val", cfg["n_val"])
    positive_int("n_test", cfg["n_test"])
    if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int) or cfg["seed"] < 0:
        raise ConfigError(f"seed must be an integer >= 0 (got {cfg['seed']!r})")
    choice("tokens", cfg.get("tokens", "sphere"), TOKEN_DISTRIBUTIONS)
    nonnegative("noise_std", cfg.get("noise_std", 0.0))
    choice("ridge.selection", cfg["ridge"].get("selection", "val"), SELECTIONS)
    lambda_grid(cfg["ridge"])
    model = cfg["model"]
    choice("model.family", model.get("family"), MODEL_FAMILIES)
    if model["family"] == "attention":
        positive_int("model.M", model.get("M"))
        choice("model.activation", model.get("activation", "relu"), ("relu", "softmax"))
        choice("model.qk_mean", model.get("qk_mean", "zero"), QK_MEANS)
        nonnegative("model.qk_variance", model.get("qk_variance", 0.25))
        real("model.bias_c_over_sqrt_d", model.get("bias_c_over_sqrt_d", 0.0))
    elif model["family"] == "mlp":
        positive_int("model.M", model.get("M"))
        if model.get("width") is not None:
            positive_int("model.width", model["width"])
    else:
        nonnegative("model.qk_variance", model.get("qk_variance", 0.25))
    t = cfg["target"]
    make_target(t.get("name"), cfg["d"], cfg["N"], t.get("degree", 1), t.get("function", "relu"),
                cfg.get("tokens", "sphere"))
    return estimate_memory(cfg)


def num_features(cfg: dict) -> int:
    """Trainable parameters of the model: M (d+1) for RFA, the width for RFMLP."""
    model, d = cfg["model"], cfg["d"]
    if model["family"] == "mlp":
        return int(model.get("width") or model["M"] * (d + 1))
    if model["family"] == "attention":
        return int(model["M"] * (d + 1))
    return 0


def estimate_memory(cfg: dict) -> dict:
    """Peak bytes of the largest tensors (float64 unless dtype says otherwise)."""
    n_max = max(cfg["n_grid"])
    n_eval = cfg["n_val"] + cfg["n_test"]
    item = 4 if cfg.get("dtype") == "float32" else 8
    p = num_features(cfg)
    tokens = (n_max + n_eval) * (cfg["N"] + 1) * cfg["d"] * item
    if cfg["model"]["family"] == "kernel":
        mats = (n_max * n_max * 3 + n_eval * n_max * 2) * item
    else:
        n_dual = max([n for n in cfg["n_grid"] if n < p], default=0)
        mats = ((n_max + n_eval) * p + 4 * p * p + 3 * n_dual * n_dual
                + n_eval * (n_dual + p)) * item
    return {"bytes": tokens + mats, "n_max": n_max, "num_features": p}


def _check_fits(cfg: dict, device: torch.device) -> None:
    need = estimate_memory(cfg)["bytes"]
    fits_in_memory(f"model {cfg['model'].get('name', cfg['model']['family'])} at "
                   f"n={max(cfg['n_grid'])}", need, 0.8 * available_memory(device),
                   "lower max(n_grid), n_val, n_test or model.M")


def build_feature_map(cfg: dict, dtype: torch.dtype, device: torch.device):
    """The model's frozen random features, drawn from the stream (seed, 'weights', family)."""
    model, d, N = cfg["model"], cfg["d"], cfg["N"]
    gen = generator(cfg["seed"], "weights", model["family"])
    if model["family"] == "mlp":
        return RandomFeatureMLP.sample(num_features(cfg), N, d, gen, dtype=dtype, device=device)
    c = model.get("bias_c_over_sqrt_d", 0.0) * math.sqrt(d)
    return RandomFeatureAttention.sample(model["M"], d, gen, model.get("activation", "relu"),
                                         model.get("qk_mean", "zero"),
                                         model.get("qk_variance", 0.25), c, dtype, device)


def run_rfa_job(cfg: dict) -> pd.DataFrame:
    """Test, validation and train errors and the chosen lambda for every n of ``cfg['n_grid']``."""
    validate(cfg)
    device, dtype = resolve_device(cfg.get("device", "auto")), resolve_dtype(cfg.get("dtype",
                                                                                    "float64"))
    _check_fits(cfg, device)
    start = time.perf_counter()
    seed, d, N, tokens = cfg["seed"], cfg["d"], cfg["N"], cfg.get("tokens", "sphere")
    t = cfg["target"]
    target = make_target(t["name"], d, N, t.get("degree", 1), t.get("function", "relu"), tokens)
    n_grid = positive_ints("n_grid", cfg["n_grid"])
    sizes = {"train": n_grid[-1], "val": cfg["n_val"], "test": cfg["n_test"]}
    data = {}
    for split, size in sizes.items():
        x0, X = sample_tokens(size, N, d, generator(seed, "tokens", split), tokens, dtype, device)
        clean = target(x0, X)
        noise = torch.randn(size, generator=generator(seed, "noise", split), dtype=torch.float64)
        y = clean if split == "test" else clean + cfg.get("noise_std", 0.0) * noise.to(clean)
        data[split] = (x0, X, y)
    lambdas = lambda_grid(cfg["ridge"])
    selection = cfg["ridge"].get("selection", "val")
    model = cfg["model"]
    if model["family"] == "kernel":
        train = data["train"]
        variance = model.get("qk_variance", 0.25)
        gram = rfa_relu_kernel(train[0], train[1], variance=variance)
        evals = {s: (rfa_relu_kernel(data[s][0], data[s][1], train[0], train[1], variance),
                     data[s][2]) for s in ("val", "test")}
        paths = prefix_kernel_ridge_paths(gram, train[2], n_grid, lambdas, evals,
                                          loo=selection == "loo")
    else:
        fmap = build_feature_map(cfg, dtype, device)
        feats = {s: fmap.features(data[s][0], data[s][1]) for s in data}
        evals = {s: (feats[s], data[s][2]) for s in ("val", "test")}
        paths = prefix_ridge_paths(feats["train"], data["train"][2], n_grid, lambdas, evals,
                                   loo=selection == "loo")
    scale = float(data["test"][2].var())
    setting = {
        "model": model.get("name", model["family"]), "family": model["family"],
        "target": target.name, "degree": target.degree, "function": target.function,
        "target_label": target.label, "tokens": tokens, "d": d, "N": N,
        "M": model["M"] if model["family"] != "kernel" else 0,
        "num_features": num_features(cfg), "noise_std": cfg.get("noise_std", 0.0),
    }
    rows = []
    for path in paths:
        best = path.best("val" if selection == "val" else "loo")
        metrics = {"test_error": float(path.mse["test"][best]) / scale,
                   "val_error": float(path.mse["val"][best]) / scale,
                   "train_error": float(path.mse["train"][best]) / scale,
                   "lambda": float(path.lambdas[best])}
        rows += [{**setting, "n": path.n, "seed": seed, "metric": k, "value": v}
                 for k, v in metrics.items()]
    log.info("%s on %s, seed %d: %d sizes in %.2fs", setting["model"], target.label, seed,
             len(paths), time.perf_counter() - start)
    return pd.DataFrame(rows)
