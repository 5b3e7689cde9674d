"""Jacot, Gabriel, Hongler (2018) and Sehanobish et al. (2024): NTK figures and measured claims.

Sweeps: ``conf/experiment/ntk_{kernel_drift,gaussian_limit,mode_decay,width_convergence,
random_features}_{quick,full}.yaml`` (Jacot Fig 1, 2, 3, the width convergence and SNNK).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rfattn.experiment import Claim
from rfattn.experiment.plotting import figure_name_for, lines_over_seeds, save_figure, set_style

from .sweeps import reproduce_steps

STUDY = "ntk"
JACOT = ("Jacot, Gabriel, Hongler (2018), Neural Tangent Kernel: Convergence and "
         "Generalization in Neural Networks, NeurIPS")
SNNK = "Sehanobish et al. (2024), Scalable Neural Network Kernels, ICLR"
SWEEPS = ("ntk_kernel_drift", "ntk_gaussian_limit", "ntk_mode_decay", "ntk_width_convergence",
          "ntk_random_features")


def _part(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One kind's rows, without the columns of other kinds (joining made them float)."""
    part = rows[rows.kind == kind].dropna(axis=1, how="all").copy()
    for col in ("width", "depth", "m", "index", "n", "d"):
        if col in part and part[col].notna().all():
            part[col] = part[col].astype(int)
    return part


def _not_run(cid, paper, statement, threshold, comparison, figure, why):
    return Claim(cid, STUDY, paper, statement, None, threshold, comparison, figure, why,
                 origin="paper")


def _slope(x, y) -> float:
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def fig1(rows, figures_dir) -> list[Claim]:
    df = _part(rows, "kernel_drift")
    grid = lines_over_seeds(df, x="angle", hue="phase", col="width", logx=False, logy=False,
                            hue_order=["init", "trained", "limit"], height=3.4)
    grid.set_axis_labels("angle g of x = (cos g, sin g)", "Theta(x0, x)")
    grid.figure.suptitle("NTK on the circle, L=4, beta=0.1: 10 inits, before and after 200 "
                         "steps", y=1.03)
    name = figure_name_for(df, STUDY, "fig1_kernel_vs_angle", "depth")
    save_figure(grid, figures_dir / name)
    widths = sorted(df.width.unique())
    statement_v = "wider networks have a less variable NTK at initialization"
    statement_m = "the NTK moves during training, less for wider networks"
    if len(widths) < 2:
        why = "needs two widths"
        return [_not_run("fig1-variance-shrinks", JACOT, statement_v, 0.75, "<=", name, why),
                _not_run("fig1-kernel-moves-less", JACOT, statement_m, 1.0, "<", name, why)]
    narrow, wide = widths[0], widths[-1]
    init = df[df.phase == "init"].pivot_table(index=["width", "seed"], columns="angle",
                                              values="value")
    trained = df[df.phase == "trained"].pivot_table(index=["width", "seed"], columns="angle",
                                                    values="value")
    spread = init.groupby("width").std().mean(axis=1)
    move = ((trained - init).pow(2).sum(1).pow(0.5) / init.pow(2).sum(1).pow(0.5)).groupby(
        "width").mean()
    return [
        Claim("fig1-variance-shrinks", STUDY, JACOT, statement_v,
              spread[wide] / spread[narrow], 0.75, "<=", name,
              f"std over inits of Theta(x0, x) at init, averaged over angles: {spread[narrow]:.3g}"
              f" (width {narrow}) and {spread[wide]:.3g} (width {wide}); value is their ratio; "
              f"1/sqrt(width) scaling predicts {np.sqrt(narrow / wide):.2f}",
              origin="paper"),
        Claim("fig1-kernel-moves-less", STUDY, JACOT, statement_m, move[wide] / move[narrow],
              1.0, "<", name,
              f"relative change |Theta_trained - Theta_init| / |Theta_init| on the circle: "
              f"{move[narrow]:.3g} (width {narrow}), {move[wide]:.3g} (width {wide}); value is "
              "their ratio",
              origin="paper"),
    ]


def fig2(rows, figures_dir) -> list[Claim]:
    df = _part(rows, "gaussian_limit")
    widths = sorted(df.width.unique())
    fig, axes = plt.subplots(1, len(widths), figsize=(5 * len(widths), 3.6), squeeze=False)
    set_style()
    worst = []
    for ax, width in zip(axes[0], widths):
        d = df[df.width == width]
        nets = d[d.phase == "network"].pivot_table(index="angle", columns="seed", values="value")
        ax.plot(nets.index, nets.values, color="C0", lw=0.7, alpha=0.6)
        limits = {q: d[d.phase == f"limit q{q}"].groupby("angle").value.mean()
                  for q in (10, 50, 90)}
        for q, style in ((10, ":"), (50, "--"), (90, ":")):
            ax.plot(limits[q].index, limits[q].values, "k" + style, lw=1.4,
                    label=f"limit {q}th percentile")
        ax.set(title=f"width {width}: {nets.shape[1]} networks", xlabel="angle",
               ylabel="f(x) after 1000 steps")
        std = d[d.phase == "limit std"].groupby("angle").value.mean()
        ok = std > 1e-6  # the training points, where the limit is deterministic, are left out
        inside = nets[ok].ge(limits[10][ok], axis=0) & nets[ok].le(limits[90][ok], axis=0)
        worst.append(float(inside.values.mean()))
    axes[0][0].legend(fontsize=7)
    name = figure_name_for(df, STUDY, "fig2_outputs_vs_limit", "depth")
    save_figure(fig, figures_dir / name)
    gaps = [abs(c - 0.8) for c in worst]
    ratios = [b / a for a, b in zip(gaps, gaps[1:]) if a > 0]
    statement = ("as the width grows, trained networks approach the limiting Gaussian process: "
                 "the share of outputs inside its 10th-90th percentile band moves toward 0.8")
    coverage = ", ".join(f"width {w}: coverage {c:.3f} (gap {g:.3f})"
                         for w, c, g in zip(widths, worst, gaps))
    if not ratios:
        return [_not_run("fig2-approaches-limit", JACOT, statement, 1.0, "<", name,
                         f"needs two widths; {coverage}")]
    return [Claim("fig2-approaches-limit", STUDY, JACOT, statement, max(ratios), 1.0, "<", name,
                  "largest ratio of consecutive gaps |coverage - 0.8| as the width grows (below 1: "
                  "every wider network is closer to the limit); coverage = share of outputs on "
                  "the circle inside the limit's band, training points left out; " + coverage
                  + ". Networks linearized at init also cover less than 0.8, by a margin that "
                  "shrinks with width (test_linearized_networks_approach_the_limiting_gaussian)",
                  origin="paper")]


def fig3(rows, figures_dir) -> list[Claim]:
    df = _part(rows, "mode_decay")
    widths = sorted(df.width.unique())
    err = df[df.metric == "error"].copy()
    err["abs value"] = err.value.abs()
    grid = lines_over_seeds(err, x="t", y="abs value", hue="phase", col="width", logx=False,
                            logy=True, hue_order=["along f2", "theory", "orthogonal"])
    grid.set_axis_labels("t (learning rate x steps)", "|error component|")
    grid.figure.suptitle("8x8 digits (scikit-learn, standing in for MNIST): error along the "
                         "2nd kernel principal component", y=1.03)
    name = figure_name_for(df, STUDY, "fig3_digits_pc2", "depth", "n")
    save_figure(grid, figures_dir / name)
    ratios, ortho, eig = {}, {}, {}
    for (width, _), d in df.groupby(["width", "seed"]):
        lam = d[(d.phase == "eigenvalue")].sort_values("index").value.to_numpy()
        eig[width] = lam
        along = d[d.phase == "along f2"].sort_values("t")
        use = along[along.value.abs() >= 0.05]  # while the component is >= 10% of its start
        if len(use) < 2:
            use = along.iloc[:2]
        rate = -np.polyfit(use.t, np.log(use.value.abs()), 1)[0]
        ratios.setdefault(width, []).append(abs(rate / lam[1] - 1))
        ortho.setdefault(width, []).append(float(d[d.phase == "orthogonal"].value.max()) / 0.5)
    wide = widths[-1]
    eigs = "; ".join(f"width {w}: " + ", ".join(f"{v:.4g}" for v in lam[:3])
                     for w, lam in eig.items())
    return [
        Claim("fig3-decay-rate", STUDY, JACOT,
              "the error along the 2nd kernel principal component decays like "
              "0.5 exp(-lambda_2 t)", float(np.mean(ratios[wide])), 0.2, "<=", name,
              f"|fitted rate / lambda_2 - 1| at width {wide} (mean over seeds), the rate fitted "
              "while the component is at least 10% of its start; "
              + ", ".join(f"width {w}: {np.mean(v):.3f}" for w, v in ratios.items())
              + f"; top eigenvalues of Theta/N: {eigs} (paper, MNIST: 0.0457, 0.00108, 0.00078)",
              origin="paper"),
        Claim("fig3-orthogonal-small", STUDY, JACOT,
              "the error orthogonal to that component stays near zero", float(
                  np.mean(ortho[wide])), 0.1, "<=", name,
              f"largest orthogonal error over t relative to 0.5, width {wide} (mean over seeds); "
              + ", ".join(f"width {w}: {np.mean(v):.3f}" for w, v in ortho.items()),
              origin="paper"),
    ]


def convergence(rows, figures_dir) -> list[Claim]:
    df = _part(rows, "width_convergence")
    grid = lines_over_seeds(df, x="width", height=3.6)
    mean = df.groupby("width").value.mean()
    slope = _slope(mean.index, mean.values)
    grid.set_axis_labels("width", "|Theta_emp - Theta_inf|_F / |Theta_inf|_F")
    grid.figure.suptitle(f"empirical -> analytic NTK (depth 3, ReLU): slope {slope:.2f}", y=1.03)
    name = figure_name_for(df, STUDY, "convergence_vs_width", "depth", "n", "d")
    save_figure(grid, figures_dir / name)
    return [Claim("empirical-ntk-converges", STUDY, JACOT,
                  "the empirical NTK converges to the analytic one like width^(-1/2)",
                  abs(slope + 0.5), 0.15, "<=", name,
                  f"log-log slope of the seed-mean relative error against width: {slope:.3f}; "
                  f"error {mean.iloc[0]:.3g} at width {mean.index[0]}, {mean.iloc[-1]:.3g} at "
                  f"width {mean.index[-1]}; value is |slope + 1/2|",
                  origin="paper")]


def random_feature_error(rows, figures_dir) -> list[Claim]:
    df = _part(rows, "random_features")
    grid = lines_over_seeds(df, x="m", hue="function", height=3.6)
    grid.set_axis_labels("m (random features)", "pointwise MSE")
    name = figure_name_for(df, STUDY, "random_features_error", "n", "d")
    slopes = {fn: _slope(d.groupby("m").value.mean().index, d.groupby("m").value.mean().values)
              for fn, d in df.groupby("function")}
    grid.figure.suptitle("universal random features: " + ", ".join(
        f"{k} {v:.2f}" for k, v in slopes.items()), y=1.03)
    save_figure(grid, figures_dir / name)
    return [Claim("random-features-error", STUDY, SNNK,
                  "universal random features are unbiased with mean squared error ~ 1/m",
                  max(abs(s + 1) for s in slopes.values()), 0.25, "<=", name,
                  "largest |slope + 1| of log seed-mean MSE against log m; slopes: "
                  + ", ".join(f"{k}: {v:.3f}" for k, v in slopes.items()),
                  origin="paper")]


def reproduce(scale: str = "quick", out_root: str | Path = "outputs/repro",
              figures_dir: str | Path = "figures", launcher: str = "joblib",
              overrides: list[str] | None = None) -> list[Claim]:
    return reproduce_steps(STUDY, SWEEPS, (fig1, fig2, fig3, convergence, random_feature_error),
                           scale, out_root, figures_dir, launcher, overrides)
