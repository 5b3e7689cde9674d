r"""Theory jobs on the RFA data: ``rfa_curves`` and ``double_descent``.

- ``rfa_curves``: for one RFA model (``conf/model/``) and every target of ``targets``, the
  spectrum of the model's infinite-width kernel on ``n_sample`` fresh samples (with a tail
  that carries the trace the sample's top modes miss, ``tail``), the predicted test error of
  kernel ridge regression (``features`` = inf) and of the model's finite number of random
  features, at the best ridge of the lab's grid for every n of ``n_grid``, and that ridge
  over the crossover ridge :math:`\lambda_n`; the change of the predictions from half the
  sample and with the other tail shape (their sensitivity to the tail); the top of the
  spectrum and each target's power on it (learnability);
- ``double_descent``: zero-mean ReLU RFA with M heads fitted at a small fixed ridge across
  n = M (d+1), simulated over seeds, and the random-feature prediction (P = M (d+1) and the
  number of heads P = M) beside the kernel's.

Rows record the model's activation and each target's label (a custom target's label holds its
``module:function``), so predictions for different activations or targets never share a label.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.runtime import generator
from ..linalg import kernel_ridge_gcv, kernel_ridge_solve
from ..linalg.ridge import prefix_ridge_paths
from ..rfa import RandomFeatureAttention, rfa_relu_kernel
from .curves import learning_curve
from .kernels import closed_form_kernel, model_gram
from .settings import CurveSettings, DoubleDescentSettings, ValiditySettings
from .spectra import TAIL_SHAPES, compress, sampled_spectrum, tail_exponent, with_tail

TOP_MODES = 200  # modes of the spectrum kept in the rows (learnability figure)


def _tails(s, sampled, size: int, total_power: dict, trace: float) -> dict:
    """The sampled spectrum with the configured tail (``main``) and with the other shape
    (``other``), both carrying the trace the top modes miss."""
    other = TAIL_SHAPES[1 - TAIL_SHAPES.index(s.tail.shape)]
    return {key: compress(with_tail(sampled, **s.tail.modes(size), total_power=total_power,
                                    trace=trace, shape=shape))
            for key, shape in (("main", s.tail.shape), ("other", other))}


def _tail_rows(s, sampled, size: int) -> list[dict]:
    """The fitted exponent of the tail, or the shape it falls back to."""
    fit = s.tail.modes(size)["fit"]
    alpha = tail_exponent(sampled, *fit)
    if s.tail.shape == "power" and alpha is None:
        return [{"analysis": "tail", "metric": "fallback_to_sample_shape", "value": 1.0}]
    return [{"analysis": "tail", "metric": "alpha", "value": alpha}] if alpha else []


def theory_grid(n_grid: tuple[int, ...], points: int) -> list[int]:
    """The simulations' n and ``points`` log-spaced sizes between their ends (smooth curves)."""
    fine = np.geomspace(n_grid[0], n_grid[-1], points).round().astype(int).tolist()
    return sorted(set(n_grid) | set(fine))


def modes_for_variance(spectrum, total: dict, share: float) -> dict:
    r"""Per target: the fewest leading modes whose power leaves at most ``1 - share`` of the
    target's variance (:math:`\mathbb E f^{*2} - \sum_{i \le k} v_i^2 \le (1 - share)`, the
    targets having unit variance)."""
    out = {}
    for name, p in spectrum.power.items():
        residual = total[name] - np.cumsum(p)
        out[name] = int(np.argmax(residual <= 1 - share) + 1) if (residual <= 1 - share).any() \
            else len(p) + 1
    return out


def rfa_spectra(s: CurveSettings) -> tuple[dict, list[dict]]:
    """The spectra of the model's kernel on ``n_sample`` and ``n_sample / 2`` samples (with
    tails), and rows: Monte Carlo error, top of the spectrum, each target's power on it and
    the modes each target needs (learnability)."""
    x0, X = s.sample(s.n_sample, "sample")
    targets = [s.build_target(t) for t in s.targets]
    values = {target.label: target(x0, X) for target in targets}
    total = {target.label: 1.0 + (0.0 if s.centred_target else (target.mean / target.std) ** 2)
             for target in targets}
    gram, mc_error = model_gram(s.model, s.d, x0, X, s.seed, s.mc_heads)
    diagonal = gram.diagonal().to(torch.float64, copy=True)
    grams = [gram]  # the full sample's spectrum takes the last reference: one Gram matrix at peak
    del gram
    rows = [{"analysis": "kernel", "metric": "kernel_error", "value": mc_error}]
    spectra = {}
    for label, size in (("half", s.n_sample // 2), ("full", s.n_sample)):
        keep = s.tail.modes(size)["keep"]
        sampled = sampled_spectrum(grams.pop() if label == "full" else grams[0][:size, :size],
                                   {k: v[:size] for k, v in values.items()},
                                   modes=keep, overwrite=label == "full")
        tails = _tails(s, sampled, size, total, float(diagonal[:size].mean()))
        spectra[label] = tails["main"]
        if label == "full":
            spectra["other_tail"] = tails["other"]
            rows += _tail_rows(s, sampled, size)
    top = min(TOP_MODES, len(sampled.eigenvalues))
    rows += [{"analysis": "spectrum", "index": i + 1, "metric": "eigenvalue",
              "value": float(sampled.eigenvalues[i])} for i in range(top)]
    rows += [{"analysis": "spectrum", "index": i + 1, "target_label": name, "metric": "power",
              "value": float(p[i])} for name, p in sampled.power.items() for i in range(top)]
    rows += [{"analysis": "learnability", "target_label": name, "metric": "total_power",
              "value": total[name]} for name in values]
    for share in (0.9, 0.99):
        rows += [{"analysis": "learnability", "target_label": name,
                  "metric": f"modes_for_{round(share * 100)}pct_variance", "value": float(k)}
                 for name, k in modes_for_variance(sampled, total, share).items()]
    return spectra, rows


def crossover_ridge(spectrum, n_grid) -> np.ndarray:
    r"""The kernel's n-th eigenvalue :math:`\lambda_n` for each n: the crossover ridge [ours].

    Above it (this lab's ridge, :math:`\lambda \ge \lambda_n`) the ridge sets the effective
    regularization; below it the spectrum's discreteness on the sample does, and the
    eigenlearning equations can fail on low-dimensional data (Tomasini, Sclocchi, Wyart,
    ICML 2022, derive such a crossover, :math:`\lambda^* \sim n^{-1/(d+\chi)}`, for their
    model; :math:`\lambda_n` is this lab's proxy).
    """
    index = np.searchsorted(np.cumsum(spectrum.multiplicity), np.asarray(n_grid), side="left")
    return spectrum.eigenvalues[np.minimum(index, len(spectrum.eigenvalues) - 1)]


def rfa_curve_rows(s: CurveSettings, spectra: dict) -> list[dict]:
    """Predicted test error at the best ridge of the grid, that ridge and its ratio to the
    crossover ridge and the change of the prediction from half the sample, for every
    prediction, target and n; the change with the other tail shape at the n of ``n_grid``."""
    rows = []
    n_theory = theory_grid(s.n_grid, s.theory_points)
    crossover = crossover_ridge(spectra["full"], n_theory)
    for prediction, M, P in _predictions(s):
        main = M in (None, s.model.M)  # the convergence check: for the model's own M
        curves = {k: learning_curve(spec, n_theory, s.ridge.lambdas, features=P)
                  for k, spec in spectra.items() if k != "other_tail" and (main or k == "full")}
        if main:  # the tail's shape matters where the simulations are: their n only
            other_tail = learning_curve(spectra["other_tail"], list(s.n_grid), s.ridge.lambdas,
                                        features=P)
        for name in curves["full"].test:
            best, ridge = curves["full"].best(name)
            half = curves["half"].best(name)[0] if main else None
            other = dict(zip(s.n_grid, other_tail.best(name)[0])) if main else {}
            for i, n in enumerate(n_theory):
                common = {"analysis": "curve", "target_label": name, "n": n,
                          "prediction": prediction, "M": M, "P": float(P or math.inf)}
                rows += [{**common, "metric": "test_error", "value": float(best[i])},
                         {**common, "metric": "lambda", "value": float(ridge[i])}]
                if main:
                    rows += [{**common, "metric": "ridge_over_crossover",
                              "value": float(ridge[i] / crossover[i])},
                             {**common, "metric": "half_sample_change",
                              "value": float(abs(half[i] / best[i] - 1))}]
                    if n in other:
                        rows.append({**common, "metric": "tail_change",
                                     "value": float(abs(other[n] / best[i] - 1))})
    return rows


def rfa_curves(s: CurveSettings) -> list[dict]:
    spectra, rows = rfa_spectra(s)
    rows += rfa_curve_rows(s, spectra)
    return [{"model": s.model.name, "family": s.model.family, "activation": s.model.activation,
             "d": s.d, "N": s.N, "n_sample": s.n_sample, **row} for row in rows]


def _predictions(s: CurveSettings):
    """(prediction, M, P): the kernel; the model's P features (attention: M (d+1), the
    default, and P = M, the alternative) for its M and, for attention, every M of
    ``heads_grid`` (other families ignore it, so that one sweep covers every model)."""
    out = [("kernel", None, None)]
    if s.model.family == "kernel":
        return out
    out.append(("features", s.model.M, s.model.num_features(s.d)))
    if s.model.family == "attention":
        out.append(("heads", s.model.M, s.model.M))
        out += [("features", M, M * (s.d + 1)) for M in s.heads_grid if M != s.model.M]
    return out


def double_descent(s: DoubleDescentSettings) -> list[dict]:
    target = s.build_target(s.target_spec)
    p = s.model.num_features(s.d)
    x0, X = s.sample(s.n_sample, "sample")
    gram = rfa_relu_kernel(x0, X, variance=s.model.qk_variance)
    trace = float(gram.diagonal().mean())
    sampled = sampled_spectrum(gram, {"target": target(x0, X)},
                               modes=s.tail.modes(s.n_sample)["keep"], overwrite=True)
    total = {"target": 1.0 + (0.0 if s.centred_target else (target.mean / target.std) ** 2)}
    spectrum = _tails(s, sampled, s.n_sample, total, trace)["main"]
    rows = []
    n_theory = theory_grid(s.n_grid, 96)
    for prediction, P in (("kernel", None), ("features", p), ("heads", s.model.M)):
        curve = learning_curve(spectrum, n_theory, [s.ridge_value], features=P)
        rows += [{"analysis": "theory", "prediction": prediction, "P": float(P or math.inf),
                  "n": n, "metric": "test_error", "value": float(curve.test["target"][i, 0])}
                 for i, n in enumerate(n_theory)]
    xt0, Xt = s.sample(s.n_test, "test")
    yt = target(xt0, Xt)
    evals = {}
    for seed in range(s.seeds):
        rfa = RandomFeatureAttention.sample(s.model.M, s.d, generator(s.seed, "theory", "dd",
                                                                      seed),
                                            "relu", "zero", s.model.qk_variance, 0.0,
                                            s.torch_dtype, s.torch_device)
        xs0, Xs = s.sample(s.n_grid[-1], "train", seed)
        evals["test"] = (rfa.features(xt0, Xt), yt)
        paths = prefix_ridge_paths(rfa.features(xs0, Xs), target(xs0, Xs), s.n_grid,
                                   [s.ridge_value], evals)
        rows += [{"analysis": "simulation", "run": seed, "n": path.n, "metric": "test_error",
                  "value": float(path.mse["test"][0]) / float(yt.var())} for path in paths]
    return [{"model": s.model.name, "activation": s.model.activation, "d": s.d, "N": s.N,
             "M": s.model.M, "num_features": p,
             "ridge_value": s.ridge_value, **row} for row in rows]


def rfa_validity(s: ValiditySettings) -> list[dict]:
    """The validity map on tokens: the predicted test error of kernel regression with the
    model's closed-form kernel at each fixed ridge (sampled spectrum with the trace-fixed
    tail) against simulations over seeds (each with its own training and test tokens), with
    the GCV estimate from the training data beside them."""
    target = s.build_target(s.target_spec)
    x0, X = s.sample(s.n_sample, "sample")
    gram = closed_form_kernel(s.model, x0, X)
    trace = float(gram.diagonal().mean())
    sampled = sampled_spectrum(gram, {"target": target(x0, X)},
                               modes=s.tail.modes(s.n_sample)["keep"], overwrite=True)
    del gram
    total = {"target": 1.0 + (0.0 if s.centred_target else (target.mean / target.std) ** 2)}
    spectrum = _tails(s, sampled, s.n_sample, total, trace)["main"]
    curve = learning_curve(spectrum, list(s.n_grid), list(s.ridges))
    rows = [{"analysis": "theory", "n": n, "ridge": r, "metric": "test_error",
             "value": float(curve.test["target"][i, j])}
            for i, n in enumerate(s.n_grid) for j, r in enumerate(s.ridges)]
    for run in range(s.seeds):
        xs0, Xs = s.sample(s.n_grid[-1], "validity-train", run)
        xt0, Xt = s.sample(s.n_test, "validity-test", run)
        ys, yt = target(xs0, Xs), target(xt0, Xt)
        K, Kt = closed_form_kernel(s.model, xs0, Xs), closed_form_kernel(s.model, xt0, Xt,
                                                                         xs0, Xs)
        for n in s.n_grid:
            gcv = kernel_ridge_gcv(K[:n, :n], ys[:n], s.ridges)
            for r, estimate in zip(s.ridges, gcv):
                pred = Kt[:, :n] @ kernel_ridge_solve(K[:n, :n], ys[:n], r)
                cell = {"analysis": "simulation", "run": run, "n": n, "ridge": r}
                rows += [{**cell, "metric": "test_error",
                          "value": float(((pred - yt) ** 2).mean())},
                         {**cell, "metric": "gcv", "value": float(estimate)}
                         if np.isfinite(estimate) else {**cell, "metric": "gcv_undefined",
                                                        "value": 1.0}]
    return [{"model": s.model.name, "activation": s.model.activation, "d": s.d, "N": s.N,
             "target_label": target.label, "n_sample": s.n_sample, **row} for row in rows]

