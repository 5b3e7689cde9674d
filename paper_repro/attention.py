"""Attention at infinite width: the infinite-head kernels of random-feature attention.

Sweep: ``conf/experiment/theory_attention_kernels_{quick,full}.yaml`` (kind ``attention_kernel``
of the theory lens, :mod:`rfattn.theory.attention_jobs`): for zero-mean ReLU, biased ReLU and
zero-mean softmax heads, the infinite-head kernel against independent plain Monte Carlo checks,
the error of finite heads against it, and for softmax the control-variate estimate against
plain Monte Carlo at equal heads. Every claim here extends the papers: origin ``lab``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from rfattn.experiment import Claim
from rfattn.experiment.plotting import figure_name_for, save_figure, set_style

from .ntk import _slope
from .sweeps import reproduce_steps

STUDY = "attention"
PAPER = ("Fu, Guo, Bai, Mei (2023), arXiv 2307.11353 (random-feature attention); "
         "infinite-head kernels of this lab")
SWEEPS = (("theory", "theory_attention_kernels"),)
MODELS = ("rfa", "rfa_biased", "rfa_softmax")
Z_MAX = 4.0  # largest |z| over the independent checks that still reads as agreement
SLOPE_TOLERANCE = 0.1  # |slope + 1| of the finite heads' squared error against M
CONTROL_GAIN = 2.0  # error ratio plain / control variate at equal heads [ours]


def _kind(rows):
    return rows[rows.kind == "attention_kernel"].dropna(axis=1, how="all")


def finite_heads(rows, figures_dir) -> list[Claim]:
    df = _kind(rows)
    finite = df[df.analysis == "finite_heads"]
    mean = finite.groupby(["model", "seed", "M"]).value.mean()
    set_style()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for model, marker in zip(MODELS, "osD"):
        if model in mean.index.get_level_values("model"):
            curve = mean.loc[model].groupby("M").mean()
            ax.plot(curve.index, curve.values, marker=marker, label=model)
    heads = np.array(sorted(finite.M.unique()), dtype=float)
    top = float(mean.groupby("M").mean().max())
    ax.plot(heads, top * heads[0] / heads, "k:", lw=1, label="1/M")
    ax.set(xscale="log", yscale="log", xlabel="heads M",
           ylabel="|K_M - K_inf|_F^2 / |K_inf|_F^2",
           title=f"Finite heads against the infinite-head kernel, n = {int(df.n_sample.iloc[0])}")
    ax.legend(fontsize=8)
    name = figure_name_for(df, STUDY, "finite_heads_error_vs_heads", "n_sample", "d", "N")
    save_figure(fig, figures_dir / name)
    slopes = {(m, int(seed)): _slope(g.index.get_level_values("M"), g.values)
              for (m, seed), g in mean.groupby(level=["model", "seed"])}
    worst = max(slopes, key=lambda key: abs(slopes[key] + 1))
    z = df[(df.analysis == "check") & (df.metric == "z")]
    by_model = z.groupby("model").value
    return [
        Claim("attention-kernel-matches-monte-carlo", STUDY, PAPER,
              "the infinite-head kernels (closed form for zero-mean and biased ReLU heads, the "
              "control-variate estimate for softmax heads) agree with independent plain Monte "
              "Carlo checks", float(z.value.abs().max()), Z_MAX, "<=", name,
              f"largest |z| over {len(z)} independent checks (groups of 16 samples with their "
              f"own {int(z.M.iloc[0])} heads each, t-statistic of the block-mean error over "
              "draws of 64 heads; the largest of that many standard normals is about "
              f"{np.sqrt(2 * np.log(len(z))):.1f}); mean z^2 per model: "
              + ", ".join(f"{m} {((g ** 2).mean()):.2f} (mean z {g.mean():+.2f})"
                          for m, g in by_model), origin="lab",
              lesson="A reference kernel that misses Monte Carlo is wrong, or its error bars "
                     "are."),
        Claim("finite-heads-error-1-over-M", STUDY, PAPER,
              "the squared error of M finite heads against the infinite-head kernel falls "
              "like 1/M for every attention variant",
              abs(slopes[worst] + 1), SLOPE_TOLERANCE, "<=", name,
              "largest |slope + 1| of log mean relative squared Frobenius error against log M "
              f"(M = {', '.join(str(int(m)) for m in heads)}): {slopes[worst]:.3f} for "
              f"{worst[0]} seed {worst[1]}; slopes: "
              + ", ".join(f"{m} s{s}: {v:.3f}" for (m, s), v in sorted(slopes.items())),
              origin="lab",
              lesson="A slope away from -1 means the reference kernel is not the heads' limit."),
    ]


def control_variate(rows, figures_dir) -> list[Claim]:
    df = _kind(rows)
    est = df[df.analysis == "estimator"]
    statement = ("for softmax heads, the Taylor control variate with antithetic heads has a "
                 f"standard error at least {CONTROL_GAIN:g}x lower than plain Monte Carlo with "
                 "the same heads")
    if est.empty:
        return [Claim("softmax-control-variate-error", STUDY, PAPER, statement, None,
                      CONTROL_GAIN, ">=", details="no softmax model in the sweep",
                      origin="lab")]
    table = est.pivot_table(index="seed", columns=["metric", "estimator"], values="value")
    gain = table["relative_stderr"]["plain"] / table["relative_stderr"]["control_variate"]
    cost = table["seconds"]["control_variate"] / table["seconds"]["plain"]
    reference = df[(df.analysis == "reference") & (df.model == "rfa_softmax")]
    return [Claim(
        "softmax-control-variate-error", STUDY, PAPER, statement, float(gain.min()),
        CONTROL_GAIN, ">=",
        details=f"smallest ratio over {len(gain)} seeds of the relative standard errors (plain "
                f"/ control variate) with {int(est.M.iloc[0])} heads each: "
                + ", ".join(f"{v:.2f}" for v in gain) + f"; the control variate takes "
                f"{cost.mean():.1f}x the time (its second feature map and closed-form kernel), "
                f"so at equal time its error is {float((gain / np.sqrt(cost)).min()):.1f}x "
                "lower; the softmax reference kernel's relative error "
                f"({int(reference.M.iloc[0])} heads): {reference.value.max():.1e}",
        origin="lab",
        lesson="The second-order Taylor polynomial of the softmax stops tracking it when the "
               "scores' spread is large.")]


def reproduce(scale: str = "quick", out_root: str | Path = "outputs/repro",
              figures_dir: str | Path = "figures", launcher: str = "joblib",
              overrides: list[str] | None = None) -> list[Claim]:
    return reproduce_steps(STUDY, SWEEPS, (finite_heads, control_variate), scale, out_root,
                           figures_dir, launcher, overrides)
