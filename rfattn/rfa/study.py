"""The RFA study job: one (model, target, seed) setting over a grid of sample sizes n.

:func:`run_rfa_job` is a pure function of its config (a plain dict, as composed from
``conf/rfa.yaml``; settings in :mod:`rfattn.rfa.settings`) and returns tidy rows: one row per
n x metric with the setting columns. It shares work across n: tokens and features are drawn
once at the largest n, every smaller n uses a prefix, and each (n, model, seed) costs one
eigendecomposition for the whole lambda path. Lambda is chosen on a held-out validation sample
(``selection: val``) or by exact leave-one-out (``selection: loo``); the test error is
normalized by the variance of the noiseless target.
"""

from __future__ import annotations

import time

import pandas as pd
import torch

from ..core.runtime import generator, get_logger
from ..core.study import Study
from ..linalg.ridge import prefix_kernel_ridge_paths, prefix_ridge_paths
from .features import RandomFeatureAttention, RandomFeatureMLP
from .kernels import rfa_relu_kernel, user_kernel
from .settings import RFASettings, bias_c

log = get_logger(__name__)


def build_feature_map(s: RFASettings):
    """The model's frozen random features, drawn from the stream (seed, 'weights', family)."""
    model, d, N = s.model, s.d, s.N
    gen = generator(s.seed, "weights", model.family)
    dtype, device = s.torch_dtype, s.torch_device
    if model.family == "mlp":
        return RandomFeatureMLP.sample(s.num_features, N, d, gen, dtype=dtype, device=device)
    return RandomFeatureAttention.sample(model.M, d, gen, model.activation, model.qk_mean,
                                         model.qk_variance, bias_c(model, d), dtype, device)


def kernel_gram(s: RFASettings, x0a, Xa, x0b=None, Xb=None):
    """The kernel model's Gram matrix: the user's ``model.kernel``, else the closed-form
    infinite-head kernel of zero-mean ReLU RFA."""
    if s.model.kernel is not None:
        return user_kernel(s.model.kernel, x0a, Xa, x0b, Xb)
    return rfa_relu_kernel(x0a, Xa, x0b, Xb, variance=s.model.qk_variance)


def rfa_rows(s: RFASettings) -> pd.DataFrame:
    """The rows of one validated RFA job (:func:`run_rfa_job`)."""
    log.info("%s on target %s (d=%d, N=%d, M=%s), n up to %d, seed %d, %s %s", s.model.name,
             s.target.name, s.d, s.N, s.model.M, s.n_grid[-1], s.seed, s.torch_device, s.dtype)
    start = time.perf_counter()
    target = s.make_target()
    sizes = {"train": s.n_grid[-1], "val": s.n_val, "test": s.n_test}
    data = {}
    for split, size in sizes.items():
        x0, X = s.sample(size, "tokens", split)
        clean = target(x0, X)
        noise = torch.randn(size, generator=generator(s.seed, "noise", split),
                            dtype=torch.float64)
        y = clean if split == "test" else clean + s.noise_std * noise.to(clean)
        data[split] = (x0, X, y)
    lambdas, loo = s.ridge.lambdas, s.ridge.selection == "loo"
    model = s.model
    if model.family == "kernel":
        train = data["train"]
        gram = kernel_gram(s, train[0], train[1])
        evals = {split: (kernel_gram(s, data[split][0], data[split][1], train[0], train[1]),
                         data[split][2]) for split in ("val", "test")}
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
    if model.kernel is not None:
        setting["kernel"] = model.kernel
    rows = []
    for path in paths:
        best = path.best("loo" if loo else "val")
        metrics = {"test_error": float(path.mse["test"][best]) / scale,
                   "val_error": float(path.mse["val"][best]) / scale,
                   "train_error": float(path.mse["train"][best]) / scale,
                   "gcv_error": (float(path.mse["gcv"][best]) - s.noise_std**2) / scale,
                   "lambda": float(path.lambdas[best])}
        rows += [{**setting, "n": path.n, "seed": s.seed, "metric": k, "value": v}
                 for k, v in metrics.items()]
    log.info("%s on %s, seed %d: %d sizes in %.2fs; test error %.4g at n=%d", model.name,
             target.label, s.seed, len(paths), time.perf_counter() - start,
             rows[-4]["value"], paths[-1].n)
    table = pd.DataFrame(rows)
    table.attrs["provenance"] = {"target": target.constants}
    return table


STUDY = Study("rfa", RFASettings, rfa_rows)


def run_rfa_job(cfg: dict) -> pd.DataFrame:
    """One RFA job: errors and the chosen lambda for every n of the grid.

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/rfa.yaml`` (see
        :class:`~rfattn.rfa.settings.RFASettings`).

    Returns
    -------
    DataFrame
        Tidy rows: the setting columns (model, family, target, degree, function (the
        ``module:function`` of a custom target), target_label, tokens, d, N, M (0 for the
        kernel), num_features, noise_std, centred_target, activation and
        bias_c_over_sqrt_d for attention, kernel for a user's kernel), ``n``, ``seed``,
        ``metric`` (test_error, val_error, train_error: MSE / Var f*; gcv_error: the GCV
        estimate of the test error from the training data alone, label noise removed, / Var f*;
        lambda) and ``value``.
        ``attrs["provenance"]`` holds the target's normalization (kept in ``run.json``).
    """
    return STUDY.run(cfg)
