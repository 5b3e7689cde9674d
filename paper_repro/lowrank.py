"""Li, Wang, Zhang, Liu, Chen (2024): low-rank updates and pruning of a one-layer transformer.

Sweeps: ``conf/experiment/lowrank_{patterns,noise,adapters}_{quick,full}.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from rfattn.experiment import Claim
from rfattn.experiment.plotting import figure_name_for, lines_over_seeds, save_figure, set_style

from .sweeps import reproduce_steps

STUDY = "lowrank"
PAPER = ("Li, Wang, Zhang, Liu, Chen (2024), Learning on Transformers is Provable Low-Rank and "
         "Sparse: A One-layer Analysis, arXiv 2406.17167")
BEYOND = "beyond the paper: low-rank adapters (LoRA, PiSSA, SVFit, SORSA) on the same model"
SWEEPS = ("lowrank_patterns", "lowrank_noise", "lowrank_adapters")
PRUNE_RATE = 0.5
ONE_POINT = 0.01
CLEAR_HARM = 0.02  # [ours] "hurts clearly": twice the one-point tolerance of the harmless side


def _part(rows: pd.DataFrame, sweep: str, analysis: str) -> pd.DataFrame:
    part = rows[(rows.sweep == f"{STUDY}_{sweep}") & (rows.analysis == analysis)]
    if part.empty:
        raise ValueError(f"no {analysis} rows in the {sweep} sweep")
    part = part.dropna(axis=1, how="all").copy()
    for col in ("K", "r", "index", "step", "seed", "d", "N", "n"):
        if col in part and part[col].notna().all():
            part[col] = part[col].astype(int)
    return part


def _ranks(rows, sweep):
    return _part(rows, sweep, "rank").pivot_table(
        index=[c for c in ("K", "tau", "lr", "noise", "seed") if c in rows], columns=[
            "matrix", "metric"], values="value")


def spectra(rows, figures_dir) -> list[Claim]:
    sp = _part(rows, "patterns", "spectrum")
    sp["matrix"] = "Delta W_" + sp.matrix.str.upper()
    grid = lines_over_seeds(sp, x="index", hue="K", col="matrix", logx=False, logy=True,
                            col_order=[f"Delta W_{m}" for m in "QKVO"], palette="viridis")
    grid.set_axis_labels("i", "sigma_i / sigma_1")
    grid.figure.suptitle("Singular values of the trained updates; 2K label-relevant patterns",
                         y=1.03)
    name = figure_name_for(sp, STUDY, "update_spectra_vs_K", "d", "N", "n")
    save_figure(grid, figures_dir / name)
    ranks = _ranks(rows, "patterns")
    K = ranks.index.get_level_values("K")
    target = 2 * K
    v_rank = ranks[("v", "numerical_rank")]
    kq_match = ((ranks[("k", "numerical_rank")] == target)
                & (ranks[("q", "numerical_rank")] == target))
    base = K == 1
    per_k = ranks.groupby("K").mean()

    def table(matrix):
        return ", ".join(f"K={k}: {per_k.loc[k, (matrix, 'numerical_rank')]:.2g}"
                         for k in per_k.index)

    claims = [
        Claim("v-update-rank-two-patterns", STUDY, PAPER,
              "with one label-relevant pattern per class (2 in all), Delta W_V has numerical "
              "rank 2 (share of seeds)", float((v_rank[base] == 2).mean()), 1.0, ">=", name,
              f"numerical rank = #(sigma_i >= 0.1 sigma_1); mean rank of Delta W_V: "
              f"{table('v')}",
              origin="paper"),
        Claim("v-update-rank-grows-with-patterns", STUDY, PAPER,
              "Delta W_V has numerical rank 2K when there are 2K label-relevant patterns, K > 1 "
              "(share of runs)", float((v_rank[~base] == target[~base]).mean())
              if (~base).any() else None, 0.9, ">=", name,
              f"mean rank of Delta W_V: {table('v')}. It stays at 2, the number of classes: "
              "the value update only learns one direction per class, while the attention "
              "updates Delta W_K and Delta W_Q do resolve the 2K patterns (next claim)"
              if (~base).any() else "needs K > 1",
              origin="lab",
              lesson=("The value update's rank counts the classes (one direction per label), not "
                      "the label-relevant patterns; the pattern count shows in the attention "
                      "updates instead.")),
        Claim("kq-update-rank-equals-patterns", STUDY, PAPER,
              "Delta W_K and Delta W_Q have numerical rank 2K, the number of label-relevant "
              "patterns (share of runs)", float(kq_match.mean()), 0.9, ">=", name,
              f"mean rank of Delta W_K: {table('k')}; of Delta W_Q: {table('q')}",
              origin="lab",
              lesson=("The attention updates do not resolve each label-relevant pattern, so their "
                      "rank cannot count the patterns.")),
        Claim("v-update-energy-on-relevant-span", STUDY, PAPER,
              "at least 90% of the energy of Delta W_V lies on the span of the label-relevant "
              "patterns (smallest share over runs)", float(ranks[("v", "relevant_energy")].min()),
              0.9, ">=", name,
              "||Delta W P||_F^2 / ||Delta W||_F^2; mean over runs: V "
              f"{ranks[('v', 'relevant_energy')].mean():.3f}, K "
              f"{ranks[('k', 'relevant_energy')].mean():.3f}, Q "
              f"{ranks[('q', 'relevant_energy')].mean():.3f}",
              origin="lab",
              lesson=("About a tenth of the value update's energy lies off the relevant span, so "
                      "a 0.9 energy cut sits at the edge and is no safe low-rank criterion.")),
    ]
    noise = _ranks(rows, "noise")
    noise_name = figure_name_for(_part(rows, "noise", "rank"), STUDY, "noise_ranks", "d", "N", "n")
    q_ok = noise[("q", "numerical_rank")] == 2
    settings = noise[("q", "numerical_rank")].groupby(["tau", "lr"]).mean()
    claims.append(Claim(
        "q-update-rank-under-noise", STUDY, PAPER,
        "Delta W_Q keeps numerical rank 2 on a harder task (alpha_conf 0.15, n = 500) at every "
        "noise level and step size (share of runs)", float(q_ok.mean()), 0.9, ">=",
        noise_name,
        "mean rank of Delta W_Q by (tau, lr): " + ", ".join(
            f"({t:g}, {lr:g}): {v:.2g}" for (t, lr), v in settings.items())
        + f"; Delta W_V keeps rank 2 in {float((noise[('v', 'numerical_rank')] == 2).mean()):.0%}"
        " of these runs",
        origin="lab",
        lesson=("On a harder task the query update is not low rank: the low-rank picture needs "
                "the paper's benign regime.")))
    long = noise.stack(level=0, future_stack=True).reset_index()
    long = long[long.matrix.isin(["q", "k", "v"])]
    long["setting"] = [f"tau={t:g}, lr={lr:g}" for t, lr in zip(long.tau, long.lr)]
    long["matrix"] = "Delta W_" + long.matrix.str.upper()
    set_style()
    g = sns.catplot(data=long, x="matrix", y="numerical_rank", hue="setting", kind="bar",
                    errorbar="sd", height=3.4, aspect=1.6)
    g.ax.axhline(2, color="k", ls="--", lw=1)
    g.ax.set_title("Numerical rank of the updates on a harder task (2 relevant patterns)")
    save_figure(g, figures_dir / noise_name)
    return claims


def truncation(rows, figures_dir) -> list[Claim]:
    tr = _part(rows, "patterns", "truncation")
    final = _part(rows, "patterns", "final")
    grid = lines_over_seeds(tr, x="r", hue="K", col="metric", logx=False, logy=False,
                            palette="viridis")
    grid.set_axis_labels("rank r of the truncated updates of W_Q, W_K, W_V", "test value")
    grid.figure.suptitle("W(0) + [Delta W]_r: test error and hinge loss", y=1.03)
    name = figure_name_for(tr, STUDY, "truncation_vs_r", "d", "N", "n")
    save_figure(grid, figures_dir / name)
    err = tr[tr.metric == "test_error"].pivot_table(index=["K", "seed"], columns="r",
                                                    values="value")
    full = final[final.metric == "test_error"].set_index(["K", "seed"]).value
    at_2k = pd.Series([err.loc[(k, s), 2 * k] for k, s in err.index], index=err.index)
    gap = (at_2k - full.reindex(err.index)).max()
    return [Claim(
        "rank-2K-truncation-keeps-error", STUDY, PAPER,
        "replacing the Q, K, V updates by their rank-2K truncation changes test error by at "
        "most one point (largest increase over runs)", float(gap), ONE_POINT, "<=", name,
        f"untruncated error {full.mean():.4f}; rank 2K {at_2k.mean():.4f}; reverted (r = 0) "
        f"{err[0].mean():.3f} (means over runs)",
        origin="paper")]


def pruning(rows, figures_dir) -> list[Claim]:
    pr = _part(rows, "noise", "pruning")
    hard = pr[(pr.tau == 0.6) & (pr.lr == 0.3)]
    grid = lines_over_seeds(hard, x="rate", hue="order", style="ranking", col="metric",
                            logx=False, logy=False)
    grid.set_axis_labels("share of W_O rows pruned", "test value")
    grid.figure.suptitle("Pruning W_O rows by magnitude (tau = 0.6, lr = 0.3)", y=1.03)
    name = figure_name_for(hard, STUDY, "pruning_curves", "d", "N", "n", tau=0.6, lr=0.3)
    save_figure(grid, figures_dir / name)
    norms = pd.concat([_part(rows, "noise", "row_norms"), _part(rows, "patterns", "row_norms")])
    norms["setting"] = [f"K={k:g}, tau={t:g}, lr={lr:g}" for k, t, lr in
                        zip(norms.K, norms.tau, norms.lr)]
    g = lines_over_seeds(norms, x="index", hue="setting", logx=False, logy=True, height=3.6)
    g.set_axis_labels("row of W_O (sorted)", "||W_O row|| / largest")
    save_figure(g, figures_dir / figure_name_for(norms, STUDY, "sorted_row_norms", "d", "N"))
    sign = hard[(hard.ranking == "sign") & (hard.metric == "test_error")]
    at = sign.pivot_table(index="seed", columns=["order", "rate"], values="value")
    base = at[("small", 0.0)]
    small = (at[("small", PRUNE_RATE)] - base).mean()
    large = (at[("large", PRUNE_RATE)] - base).mean()
    hinge = hard[(hard.ranking == "sign") & (hard.metric == "test_hinge")].groupby(
        ["order", "rate"]).value.mean()
    detail = (f"test error unpruned {base.mean():.4f}; at {PRUNE_RATE:.0%}: small-first "
              f"{at[('small', PRUNE_RATE)].mean():.4f}, large-first "
              f"{at[('large', PRUNE_RATE)].mean():.4f}, random "
              f"{at[('random', PRUNE_RATE)].mean():.4f}; hinge loss unpruned "
              f"{hinge[('small', 0.0)]:.3f}, small {hinge[('small', PRUNE_RATE)]:.3f}, large "
              f"{hinge[('large', PRUNE_RATE)]:.3f}; rows ranked within each sign group of a")
    return [
        Claim("small-first-pruning-harmless", STUDY, PAPER,
              f"pruning the smallest {PRUNE_RATE:.0%} of W_O rows changes test error by at most "
              "one point", abs(small), ONE_POINT, "<=", name, detail,
              origin="paper"),
        Claim("large-first-pruning-hurts", STUDY, PAPER,
              f"pruning the largest {PRUNE_RATE:.0%} of W_O rows raises test error clearly "
              "(increase)", large, CLEAR_HARM, ">=", name,
              detail + f"; threshold [ours]: {CLEAR_HARM} = two points",
              origin="lab",
              lesson=("Here pruning the largest W_O rows costs about as much as pruning the "
                      "smallest: magnitude alone does not single out the rows that matter.")),
    ]


def attention_mass(rows, figures_dir) -> list[Claim]:
    h = _part(rows, "patterns", "history")
    grid = lines_over_seeds(h, x="step", hue="K", col="metric", logx=False, logy=False,
                            palette="viridis", sharey=False)
    grid.set_axis_labels("SGD step", "")
    grid.figure.suptitle("Attention on the sample's own label-relevant tokens, test error and "
                         "hinge loss during training", y=1.03)
    name = figure_name_for(h, STUDY, "attention_mass_history", "d", "N", "n")
    save_figure(grid, figures_dir / name)
    mass = h[h.metric == "attention_mass"].pivot_table(index=["K", "seed"], columns="step",
                                                       values="value")
    first, last = mass.iloc[:, 0], mass.iloc[:, -1]
    return [Claim(
        "attention-concentrates-on-relevant-tokens", STUDY, PAPER,
        "training raises the attention mass on the sample's own label-relevant tokens "
        "(final over initial, smallest over runs)", float((last / first).min()), 1.2, ">=",
        name, f"mass {first.mean():.3f} at step 0 (the token share alpha_* = 0.2) and "
        f"{last.mean():.3f} at the end; theory: it grows toward 1 with more training",
        origin="paper")]


def adapters(rows, figures_dir) -> list[Claim]:
    ad = _part(rows, "adapters", "final")
    ad = ad[ad.metric == "test_error"]
    K = int(ad.K.iloc[0])
    full = _part(rows, "patterns", "final")
    full = full[(full.metric == "test_error") & (full.K == K)].set_index("seed").value
    set_style()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    sns.lineplot(data=ad, x="r", y="value", hue="method", marker="o", errorbar="sd", ax=ax)
    ax.axhline(full.mean(), color="k", ls="--", lw=1, label="full training")
    ax.axvline(2 * K, color="grey", ls=":", lw=1)
    ax.set(xlabel="adapter rank r", ylabel="test error",
           title=f"Rank-r adapters from W(0), {2 * K} label-relevant patterns")
    ax.legend()
    name = figure_name_for(ad, STUDY, "adapters_vs_r", "d", "N", "n", "K")
    save_figure(fig, figures_dir / name)
    lora = ad[(ad.method == "lora") & (ad.r >= 2 * K)].set_index(["r", "seed"]).value
    gap = (lora - full.reindex(lora.index.get_level_values("seed")).values).max()
    means = ad.groupby(["method", "r"]).value.mean()
    return [Claim(
        "lora-rank-2K-matches-full", STUDY, BEYOND,
        "a LoRA adapter of rank r >= 2K trained from W(0) matches full training: test error "
        "within one point (largest gap over runs)", float(gap), ONE_POINT, "<=", name,
        f"K = {K}; full training {full.mean():.4f}; " + ", ".join(
            f"{m} r={r}: {v:.3f}" for (m, r), v in means.items()),
        origin="lab",
        lesson=("A rank-2K adapter trained from W(0) does not reach full training's error, "
                "although full training's update is of that rank."))]


def reproduce(scale: str = "quick", out_root: str | Path = "outputs/repro",
              figures_dir: str | Path = "figures", launcher: str = "joblib",
              overrides: list[str] | None = None) -> list[Claim]:
    return reproduce_steps(STUDY, SWEEPS, (spectra, truncation, pruning, attention_mass, adapters),
                           scale, out_root, figures_dir, launcher, overrides)
