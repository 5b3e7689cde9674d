# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A one-layer transformer learns low-rank, prunable updates
#
# Li, Wang, Zhang, Liu, Chen (2024), *Learning on Transformers is Provable Low-Rank and Sparse:
# A One-layer Analysis*, arXiv 2406.17167.
#
# Data: each sample has $N$ tokens in $\mathbb R^d$. Its class $y = \pm1$ is carried by
# *label-relevant* patterns ($K$ per class, $2K$ in all); other tokens carry the other class's
# pattern (confusion) or irrelevant patterns, plus noise. The model is one attention layer and
# a two-layer head with fixed signs $a_j$:
#
# $$ F(X) = \frac1N\sum_{l} \sum_{j=1}^m a_j\,\mathrm{ReLU}\Big(W_{O,j}\sum_s W_V x_s\,
#    \mathrm{softmax}_s\big(x_s^\top W_K^\top W_Q x_l\big)\Big), $$
#
# trained by SGD on the hinge loss. The paper proves that the updates $\Delta W_Q, \Delta W_K,
# \Delta W_V$ are low rank (they live on the span of the label-relevant patterns) and that the
# rows of $W_O$ with small norm can be pruned. Low-rank adapters (LoRA, PiSSA) of rank
# $r \ge 2K$ should therefore match full training.
#
# **Knob**: `SIZE` multiplies the training set and the epochs (1: about 20 s on 2 CPU cores).

# %%
import matplotlib.pyplot as plt
import torch

from rfattn.core import generator
from rfattn.lowrank import (Parameterization, PatternData, evaluate, init_weights,
                            normalized_spectrum, numerical_rank, orthonormal_patterns, prune_mask,
                            sample, span_energy, train, truncate)

SIZE = 1           # <- the knob
torch.set_default_dtype(torch.float64)
d, m, K = 16, 64, 1
data = PatternData(d=d, patterns=d, N=10, K=K, alpha_star=0.2, alpha_conf=0.1, tau=0.5,
                   noise="bounded", mix="sample")
mu = orthonormal_patterns(d, d, generator(0, "demo", "patterns"))
X, y, _ = sample(data, 400 * SIZE, mu, generator(0, "demo", "train"))
Xt, yt, _ = sample(data, 1000, mu, generator(0, "demo", "test"))
X, y, Xt, yt = X[None], y[None], Xt[None], yt[None]        # leading axis: one seed
W0, a = init_weights(d, d, d, m, [generator(0, "demo", "init")], qkv_std=1.0, o_std=0.1)


def fit(method="full", rank=0, lr=0.3):
    net = Parameterization(W0, method, rank, generators=[generator(0, "demo", "lora", rank)])
    train(net, a, X, y, lr=lr, batch_size=32, epochs=15 * SIZE,
          generators=[generator(0, "demo", "batches")])
    return {k: w.detach() for k, w in net.matrices().items()}


W = fit()
error, _ = evaluate(W, a, Xt, yt)
print(f"test error after full training: {float(error):.3f}")

# %% [markdown]
# ## The updates are low rank, on the label-relevant patterns

# %%
relevant = mu[data.relevant][None]                  # the 2K label-relevant patterns
fig, ax = plt.subplots(figsize=(5, 3.5))
for name in ("q", "k", "v"):
    dW = W[name] - W0[name]
    ax.semilogy(normalized_spectrum(dW)[0, :10], marker="o", label=f"Delta W_{name.upper()}")
    print(f"Delta W_{name.upper()}: numerical rank {int(numerical_rank(dW, 0.1))}, "
          f"energy on the relevant span {float(span_energy(dW, relevant[0])[0]):.2f}")
ax.set(xlabel="index", ylabel="singular value / largest", title="update spectra (2K = 2)")
ax.legend()
assert int(numerical_rank(W["v"] - W0["v"], 0.1)) == 2 * K

# %% [markdown]
# ## Truncation and pruning
#
# Replace each update by its best rank-$r$ approximation, and remove 90% of the rows of $W_O$
# in order of their norm within each sign group of $a$ (smallest first, or largest first).

# %%
for r in (0, 1, 2 * K, d):
    Wr = {k: (W0[k] + truncate(W[k] - W0[k], r) if k in "qkv" else W[k]) for k in W}
    print(f"rank-{r:2d} updates: test error {float(evaluate(Wr, a, Xt, yt)[0]):.3f}")
W2K = {k: (W0[k] + truncate(W[k] - W0[k], 2 * K) if k in "qkv" else W[k]) for k in W}
assert float(evaluate(W2K, a, Xt, yt)[0]) <= float(error) + 0.01
norms = W["o"].norm(dim=-1)
pruned = {}
for order in ("small", "large"):
    keep = prune_mask(norms, a, 0.9, order, "sign")
    pruned[order] = float(evaluate(dict(W, o=W["o"] * keep[..., None]), a, Xt, yt)[0])
    print(f"pruning 90% of the W_O rows, {order} norm first: test error {pruned[order]:.3f}")
assert pruned["small"] <= float(error) + 0.01 < pruned["large"] - 0.04

# %% [markdown]
# ## Low-rank adapters
#
# LoRA trains $W_0 + BA$ with $A, B$ of rank $r$ from $B = 0$; PiSSA starts from the top-$r$
# singular part of $W_0$ and trains it, the rest of $W_0$ frozen. The updates of full training
# have rank $2K$, so LoRA at $r = 2K$ should match full training. PiSSA must instead turn the
# principal directions of the random $W_0$ toward the label-relevant patterns: at the same
# rank it learns more slowly here (exercise 4).

# %%
adapters = {}
for method, lr in (("lora", 1.0), ("pissa", 0.3)):
    adapters[method] = float(evaluate(fit(method, 2 * K, lr), a, Xt, yt)[0])
    print(f"{method} rank {2 * K}: test error {adapters[method]:.3f}")
assert adapters["lora"] <= float(error) + 0.02

# %% [markdown]
# ## Exercises
#
# 1. Set `K = 2`. Which updates have rank $2K$ now, and which stay at 2 (the number of classes)?
# 2. Use Gaussian noise (`noise="gaussian"`) with `tau = 1`: does $\Delta W_Q$ keep low rank?
# 3. Prune 90% of the rows, ranking by norm over all rows (`"global"`) instead of within each
#    sign group of $a$. Which ranking is safer, and why?
# 4. Train PiSSA at rank $2K$ with learning rates 0.1, 0.3, 1 and for more epochs. Does it reach
#    full training, and what does the overlap of its top-$r$ subspace with the relevant
#    patterns (`span_energy`) say?
