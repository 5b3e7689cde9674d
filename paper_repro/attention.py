"""Attention at infinite width: the infinite-head kernels of random-feature attention.

Sweeps:

- ``conf/experiment/theory_attention_kernels_{quick,full}.yaml`` (kind ``attention_kernel`` of
  the theory lens, :mod:`rfattn.theory.attention_jobs`): for zero-mean ReLU, biased ReLU and
  zero-mean softmax heads, the infinite-head kernel against independent plain Monte Carlo
  checks, the error of finite heads against it, and for softmax the control-variate estimate
  and the Mehler-Hermite expansion against plain Monte Carlo;
- ``conf/experiment/ntk_attention_width_{quick,full}.yaml`` (kind ``attention_ntk`` of the ntk
  lens, :mod:`rfattn.ntk.attention_study`): the empirical NTK of a multi-head attention network
  with trained queries, keys, values and outputs against its infinite-width kernel
  (:mod:`rfattn.ntk.attention_kernels`), and the query-key part of it;
- ``conf/experiment/ntk_attention_training_{quick,full}.yaml`` (kind ``attention_training``):
  a wide attention network trained by gradient descent against kernel regression with its NTK.

The kernel is also checked against neural-tangents' ``GlobalSelfAttention`` on the cases
recorded by ``benchmarks/neural_tangents_peer.py``. Every claim here extends the papers:
origin ``lab``.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from rfattn.experiment import Claim
from rfattn.experiment.plotting import figure_name_for, save_figure, set_style
from rfattn.ntk.attention_kernels import AttentionArchitecture, attention_kernels

from .ntk import _slope
from .sweeps import reproduce_steps

STUDY = "attention"
PAPER = ("Fu, Guo, Bai, Mei (2023), arXiv 2307.11353 (random-feature attention); "
         "infinite-head kernels of this lab")
SWEEPS = (("theory", "theory_attention_kernels"), ("ntk", "ntk_attention_width"),
          ("ntk", "ntk_attention_training"))
MODELS = ("rfa", "rfa_biased", "rfa_softmax")
Z_MAX = 4.0  # largest |z| over the independent checks that still reads as agreement
SLOPE_TOLERANCE = 0.1  # |slope + 1| of the finite heads' squared error against M
PAPER_NTK = ("Hron, Bahri, Sohl-Dickstein, Novak (2020), arXiv 2006.10540 (infinite attention); "
             "finite-width checks of this lab")
CONTROL_GAIN = 2.0  # error ratio plain / control variate at equal heads [ours]
HERMITE_GAIN = 100.0  # error ratio plain Monte Carlo / Hermite expansion at equal time [ours]
NTK_RATE_TOLERANCE = 0.15  # |slope + 1/2| of the empirical NTK's error against heads [ours]
PERSIST_RATIO = 1.25  # largest ratio between the RFA query-key shares at 256 and 1024 heads
QK_RATE_TOLERANCE = 0.2  # |slope + 1| of the query-key share against d_key = heads [ours]
TRAINING_TOLERANCE = 0.15  # relative test-MSE difference, network against NTK regression
PEER_TOLERANCE = 1e-6  # relative error against neural-tangents' kernels
PEER_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "neural_tangents_attention.npz"


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
              "Mehler-Hermite expansion for softmax heads) agree with independent plain Monte "
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


def softmax_estimators(rows, figures_dir) -> list[Claim]:
    df = _kind(rows)
    est = df[df.analysis == "estimator"]
    control = ("for softmax heads, the Taylor control variate with antithetic heads has a "
               f"standard error at least {CONTROL_GAIN:g}x lower than plain Monte Carlo with "
               "the same heads")
    expansion = ("for softmax heads, the Mehler-Hermite expansion of the infinite-head kernel "
                 f"is at least {HERMITE_GAIN:g}x more accurate than plain Monte Carlo at equal "
                 "cost")
    if est.empty:
        return [Claim(name, STUDY, PAPER, statement, None, gain, ">=",
                      details="no softmax model in the sweep", origin="lab")
                for name, statement, gain in (
                    ("softmax-control-variate-error", control, CONTROL_GAIN),
                    ("softmax-hermite-kernel-equal-cost", expansion, HERMITE_GAIN))]
    table = est.pivot_table(index="seed", columns=["metric", "estimator"], values="value")
    plain, seconds = table["relative_stderr"]["plain"], table["seconds"]
    gain = plain / table["relative_stderr"]["control_variate"]
    cost = seconds["control_variate"] / seconds["plain"]
    # Monte Carlo's error scales as 1/sqrt(time): plain at the expansion's time
    plain_there = plain * np.sqrt(seconds["plain"] / seconds["hermite"])
    hermite_gain = plain_there / table["relative_error"]["hermite"]
    hermite = est[est.estimator == "hermite"]
    bound = df[(df.analysis == "reference") & (df.activation == "softmax")].value.max()
    degree, nodes = int(hermite.degree.iloc[0]), int(hermite.nodes.iloc[0])
    heads = int(est.M.dropna().iloc[0])
    return [Claim(
        "softmax-control-variate-error", STUDY, PAPER, control, float(gain.min()),
        CONTROL_GAIN, ">=",
        details=f"smallest ratio over {len(gain)} seeds of the relative standard errors (plain "
                f"/ control variate) with {heads} heads each: "
                + ", ".join(f"{v:.2f}" for v in gain) + f"; the control variate takes "
                f"{cost.mean():.1f}x the time (its second feature map and closed-form kernel), "
                f"so at equal time its error is {float((gain / np.sqrt(cost)).min()):.1f}x "
                "lower",
        origin="lab",
        lesson="The second-order Taylor polynomial of the softmax stops tracking it when the "
               "scores' spread is large."), Claim(
        "softmax-hermite-kernel-equal-cost", STUDY, PAPER, expansion,
        float(hermite_gain.min()), HERMITE_GAIN, ">=",
        details=f"smallest ratio over {len(hermite_gain)} seeds of plain Monte Carlo's relative "
                f"standard error ({heads} heads: {plain.mean():.2e} in "
                f"{seconds['plain'].mean():.2f} s), scaled to the expansion's time as "
                "1/sqrt(time), over the expansion's relative error against the "
                f"degree-{degree + 4} expansion on {nodes + 4} nodes (degree {degree} on {nodes} "
                f"nodes: {table['relative_error']['hermite'].mean():.1e} "
                f"in {seconds['hermite'].mean():.2f} s, truncation bound "
                f"{bound:.1e}): "
                + ", ".join(f"{v:.0f}" for v in hermite_gain),
        origin="lab",
        lesson="The softmax is analytic: one sample's Hermite coefficients carry the kernel "
               "with every other sample, so a deterministic rule replaces the heads.")]


def query_key_terms(rows, figures_dir) -> list[Claim]:
    df = _kind(rows)
    terms = df[df.analysis == "query_key_terms"]
    share = terms[terms.metric == "query_key_share"].groupby(["model", "M"]).value.mean()
    low, high = (int(m) for m in sorted(terms.M.unique()))
    ratios = {m: float(max(share[m, high] / share[m, low], share[m, low] / share[m, high]))
              for m in share.index.unique("model")}
    worst = max(ratios, key=ratios.get)
    bridge = terms[terms.metric == "value_ntk_error"].value.max()
    return [Claim(
        "rfa-query-key-terms-persist", STUDY, PAPER,
        "training the query-key matrices of random-feature attention adds NTK terms that do "
        "not vanish as heads grow (values of unit variance): their share at "
        f"{high} heads is within {PERSIST_RATIO:g}x of that at {low}, for every variant",
        ratios[worst], PERSIST_RATIO, "<=",
        details=f"largest ratio of the query-key shares |Theta_QK|_F / |Theta_V|_F between {low} "
                f"and {high} heads: {ratios[worst]:.3f} ({worst}); shares at {high} heads "
                "(mean over seeds): "
                + ", ".join(f"{m} {share[m, high]:.3f}" for m in share.index.unique("model"))
                + f"; the value part equals Phi Phi^T to {bridge:.1e} (the bridge); at zero "
                  "values, the lens's models, the query-key part is zero",
        origin="lab",
        lesson="Frozen queries and keys are a choice, not a limit: unlike tied 1/d_key "
               "attention, random-feature attention keeps its query-key terms at any width.")]


def _rate_claim(name, statement, curves, target, tolerance, figure, what, lesson) -> Claim:
    slopes = {m: _slope(c.index, c.values) for m, c in curves.items()}
    worst = max(slopes, key=lambda m: abs(slopes[m] - target))
    heads = next(iter(curves.values())).index
    return Claim(name, STUDY, PAPER_NTK, statement, abs(slopes[worst] - target), tolerance, "<=",
                 figure, f"largest |slope - ({target:g})| of log {what} against log heads "
                 f"(heads = d_key = channels = {', '.join(str(int(h)) for h in heads)}): "
                 f"{slopes[worst]:.3f} for {worst}; slopes: "
                 + ", ".join(f"{m} {v:.3f}" for m, v in sorted(slopes.items())),
                 origin="lab", lesson=lesson)


def attention_ntk(rows, figures_dir) -> list[Claim]:
    df = rows[rows.kind == "attention_ntk"].dropna(axis=1, how="all")
    rms = (df.assign(sq=df.value ** 2).groupby(["metric", "mechanism", "heads"]).sq.mean()
           ** 0.5)
    set_style()
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8))
    guides = {"relative_error": (-0.5, "heads^-1/2", "RMS |Theta_H - Theta|_F / |Theta|_F"),
              "query_key_share": (-1.0, "1/heads", "RMS |Theta_QK|_F / |Theta_H|_F")}
    curves = {}
    for ax, (metric, (power, guide, label)) in zip(axes, guides.items()):
        curves[metric] = {m: rms.loc[metric, m] for m in rms.loc[metric].index.unique(0)}
        for (mech, curve), marker in zip(curves[metric].items(), "osD^"):
            ax.plot(curve.index, curve.values, marker=marker, label=mech)
        h = np.array(sorted(df.heads.unique()), dtype=float)
        top = max(float(c.iloc[0]) for c in curves[metric].values())
        ax.plot(h, top * (h / h[0]) ** power, "k:", lw=1, label=guide)
        ax.set(xscale="log", yscale="log", xlabel="heads = d_key = channels", ylabel=label)
        ax.set_xticks(h, [str(int(v)) for v in h])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.legend(fontsize=8)
    n, tokens = int(df.n.iloc[0]), int(df.N.iloc[0])
    fig.suptitle(f"Attention network: empirical against infinite-width NTK ({n} sequences of "
                 f"{tokens} tokens, {df.seed.nunique()} seeds)", fontsize=10)
    name = figure_name_for(df, STUDY, "ntk_vs_heads", "n", "N", "d")
    save_figure(fig, figures_dir / name)
    return [
        _rate_claim("attention-ntk-converges-heads-1-2",
                    "the empirical NTK of a multi-head attention network with trained queries, "
                    "keys, values and outputs converges to its infinite-width kernel at rate "
                    "heads^(-1/2), for softmax, ReLU and identity attention",
                    curves["relative_error"], -0.5, NTK_RATE_TOLERANCE, name,
                    "RMS relative Frobenius error over seeds",
                    "A slope away from -1/2 means the analytic kernel is not the limit."),
        _rate_claim("attention-ntk-query-key-share-vanishes",
                    "under the 1/d_key scaling with tied queries and keys, the part of the NTK "
                    "from the query-key weights falls like 1/d_key",
                    curves["query_key_share"], -1.0, QK_RATE_TOLERANCE, name,
                    "RMS query-key share of the empirical NTK",
                    "Trained queries and keys matter at finite width only; the limit drops "
                    "them."),
        neural_tangents_claim(),
    ]


def kernel_regime(rows, figures_dir) -> list[Claim]:
    df = rows[rows.kind == "attention_training"].dropna(axis=1, how="all")
    mse = df[df.metric == "test_mse"].groupby(["heads", "model", "n_train"]).value.mean()
    set_style()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for (heads, model), curve in mse.groupby(level=["heads", "model"]):
        style = "-o" if model == "network" else "--s"
        ax.plot(curve.index.get_level_values("n_train"), curve.values, style,
                label=f"{model}, heads {int(heads)}" if model == "network" else
                f"NTK regression (heads {int(heads)})")
    ns = sorted(int(n) for n in df.n_train.dropna().unique())
    ax.set(xscale="log", xlabel="training samples n", ylabel="test MSE",
           title=f"Kernel regime: {df.mechanism.iloc[0]} attention on {df.target_family.iloc[0]} "
                 f"(degree {int(df.degree.iloc[0])})")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(fontsize=8)
    name = figure_name_for(df, STUDY, "kernel_regime_training", "N", "d")
    save_figure(fig, figures_dir / name)
    diff = df[df.metric == "relative_difference"]
    widest = diff[diff.heads == diff.heads.max()]
    worst = widest.loc[widest.value.idxmax()]
    per_n = widest.groupby("n_train").value.max()
    return [Claim(
        "attention-training-matches-ntk-regression", STUDY, PAPER_NTK,
        f"a softmax attention network with {int(worst.heads)} heads (= d_key = channels), "
        "trained by gradient descent centred at initialization, has the test error of kernel "
        f"regression with its infinite-width NTK within {TRAINING_TOLERANCE:.0%} at every "
        "trained n", float(worst.value), TRAINING_TOLERANCE, "<=", name,
        f"largest |MSE_net - MSE_kernel| / MSE_kernel over {widest.seed.nunique()} seeds: "
        f"{worst.value:.4f} (n = {int(worst.n_train)}, seed {int(worst.seed)}); per n: "
        + ", ".join(f"{int(n)}: {v:.4f}" for n, v in per_n.items()), origin="lab",
        lesson="At this width gradient descent on every weight, queries and keys included, "
               "is kernel regression with the attention NTK.")]


def neural_tangents_claim() -> Claim:
    """rfattn's attention kernels against neural-tangents 0.6.5 on its recorded cases."""
    peer = np.load(PEER_FILE)
    x1, x2 = torch.from_numpy(peer["x1"]), torch.from_numpy(peer["x2"])
    errors = {}
    for case, spec in json.loads(str(peer["cases"])).items():
        ours = attention_kernels(x1, x2, AttentionArchitecture(*spec))
        for kernel in ("nngp", "ntk"):
            ref = peer[f"{kernel}_{case}"]
            errors[f"{case} {kernel}"] = float(
                np.abs(getattr(ours, kernel).numpy() - ref).max() / np.abs(ref).max())
    worst = max(errors, key=errors.get)
    return Claim("attention-ntk-matches-neural-tangents", STUDY, PAPER_NTK,
                 "the NNGP and NTK of softmax, ReLU, identity and abs attention (1/d_key "
                 "scaling, tied queries and keys) and of identity attention (1/sqrt(d_key)), "
                 "followed by ReLU, dense layers and a pooled readout, equal neural-tangents' "
                 "GlobalSelfAttention kernels", errors[worst], PEER_TOLERANCE, "<=",
                 details=f"largest max-abs error relative to the kernel's largest entry over "
                         f"{len(errors)} kernels ({worst}); cases recorded by "
                         "benchmarks/neural_tangents_peer.py with neural-tangents 0.6.5 in "
                         "tests/data/neural_tangents_attention.npz", origin="lab",
                 lesson="Conventions (NTK parameterization, W_std products, the mean over "
                        "tokens) decide agreement before the mathematics does.")


def reproduce(scale: str = "quick", out_root: str | Path = "outputs/repro",
              figures_dir: str | Path = "figures", launcher: str = "joblib",
              overrides: list[str] | None = None) -> list[Claim]:
    steps = (finite_heads, softmax_estimators, query_key_terms, attention_ntk, kernel_regime)
    return reproduce_steps(STUDY, SWEEPS, steps, scale, out_root, figures_dir, launcher,
                           overrides)
