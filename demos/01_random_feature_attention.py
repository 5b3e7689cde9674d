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
# # What can one attention layer with frozen random query-key matrices learn?
#
# Fu, Guo, Bai, Mei (2023), *What can a Single Attention Layer Learn? A Study Through the
# Random Features Lens*, arXiv 2307.11353.
#
# A sample is a query $x_0$ and $N$ keys $x_1, \dots, x_N$ on the unit sphere of
# $\mathbb R^d$. **Random-feature attention** (RFA) draws $M$ query-key matrices
# $W_m \in \mathbb R^{(d+1)\times(d+1)}$ once and freezes them; only the values are trained:
#
# $$ f(x) = \sum_{m=1}^M \frac{1}{N}\sum_{i=1}^N
#    \sigma\big(\langle W_m, \tilde x_0 \tilde x_i^\top\rangle\big)\,\langle v_m, \tilde x_i\rangle,
#    \qquad \tilde x = [x; 1], $$
#
# a linear model in $M(d+1)$ features, fitted by ridge regression. As $M \to \infty$ it is
# kernel ridge regression with the *infinite-head kernel*, in closed form for ReLU and
# zero-mean $W_m$. The paper's point: attention is permutation invariant in the keys, so on
# targets that are too (for example $f^* = \frac1N\sum_i \langle x_0, x_i\rangle^p$) it needs
# far fewer samples than a random-feature MLP on the concatenated tokens (RFMLP) with as many
# parameters.
#
# **Knob**: `SCALE` multiplies every sample size (1 runs in about 20 s on 2 CPU cores; 4 is
# closer to the paper); `DEVICE = "cuda"` uses a GPU.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from rfattn.core import generator, resolve_device
from rfattn.linalg import SpectralRidge
from rfattn.rfa import (RandomFeatureAttention, RandomFeatureMLP, make_target, rfa_relu_kernel,
                        sample_tokens)

SCALE = 1          # <- the knob: sample sizes x SCALE
DEVICE = "auto"    # "cpu", "cuda"
torch.set_default_dtype(torch.float64)
device = resolve_device(DEVICE)
d, N, M = 4, 4, 256
n_grid = [32 * SCALE * 2**k for k in range(6)]          # 32 .. 1024
lambdas = np.logspace(-8, 1, 19).tolist()               # objective (1/n)|y - Phi w|^2 + lam |w|^2


def tokens(n, purpose):
    return sample_tokens(n, N, d, generator(0, "demo", purpose), device=device)


train, val, test = tokens(n_grid[-1], "train"), tokens(500, "val"), tokens(1000, "test")

# %% [markdown]
# ## The features and the kernel
#
# Each head gives $d+1$ features; they are scaled by $1/\sqrt M$ so that the feature Gram
# matrix $\Phi\Phi^\top$ converges to the infinite-head kernel as $M$ grows.

# %%
rfa = RandomFeatureAttention.sample(M, d, generator(0, "demo", "heads"), device=device)
Phi = rfa.features(*train)
K = rfa_relu_kernel(*train)
print("features", tuple(Phi.shape))
for m in (16, 256, 4096):
    heads = RandomFeatureAttention.sample(m, d, generator(0, "demo", "heads", m), device=device)
    P = heads.features(*val)
    gap = float((P @ P.T - rfa_relu_kernel(*val)).norm() / rfa_relu_kernel(*val).norm())
    print(f"M = {m:5d}: relative distance of Phi Phi^T to the kernel {gap:.3f}")

# %% [markdown]
# ## Learning curves
#
# One helper fits ridge regression on the first $n$ training samples for every $\lambda$ at
# once (one eigendecomposition), picks $\lambda$ on held-out data and reports the normalized
# test error $\mathbb E(\hat f - f^*)^2 / \mathrm{Var} f^*$.


# %%
def learning_curve(model, target):
    y = {name: target(*split) for name, split in (("train", train), ("val", val),
                                                  ("test", test))}
    errors = []
    for n in n_grid:
        x0, X = train[0][:n], train[1][:n]
        if model == "kernel":
            fit = SpectralRidge.from_gram(rfa_relu_kernel(x0, X), y["train"][:n])
            pred_val = fit.predict(lambdas, cross_gram=rfa_relu_kernel(*val, x0, X))
            pred_test = fit.predict(lambdas, cross_gram=rfa_relu_kernel(*test, x0, X))
        else:
            fit = SpectralRidge.from_features(model.features(x0, X), y["train"][:n])
            pred_val = fit.predict(lambdas, model.features(*val))
            pred_test = fit.predict(lambdas, model.features(*test))
        best = int(((pred_val - y["val"][:, None]) ** 2).mean(0).argmin())
        errors.append(float(((pred_test[:, best] - y["test"]) ** 2).mean() / y["test"].var()))
    return np.array(errors)


mlp = RandomFeatureMLP.sample(M * (d + 1), N, d, generator(0, "demo", "mlp"), device=device)
biased = RandomFeatureAttention.sample(M, d, generator(0, "demo", "biased"), mean="biased",
                                       c=0.5 * np.sqrt(d), device=device)
models = {"RFA": rfa, "biased RFA": biased, "RFMLP": mlp, "kernel (M = inf)": "kernel"}
targets = {f"query_key p={p}": make_target("query_key", d, N, degree=p) for p in (1, 2, 3)}
targets["similarity relu"] = make_target("similarity", d, N, function="relu")
targets["two_key (control)"] = make_target("two_key", d, N)
curves = {(t, m): learning_curve(model, target) for t, target in targets.items()
          for m, model in models.items()}

fig, axes = plt.subplots(1, len(targets), figsize=(3.2 * len(targets), 3.2), sharey=True)
for ax, t in zip(axes, targets):
    for m in models:
        ax.loglog(n_grid, curves[t, m], marker="o", ms=3, label=m)
    ax.set(title=t, xlabel="n")
axes[0].set_ylabel("normalized test MSE")
axes[0].legend(fontsize=7)
plt.tight_layout()

# %% [markdown]
# ## What the curves teach (checked as the demo runs)
#
# 1. Higher degree needs more samples: the $n$ at which RFA reaches error 0.5 grows with $p$.
# 2. On permutation-invariant targets RFA beats the parameter-matched RFMLP, and the kernel
#    (infinitely many heads) beats both.
# 3. Biased sampling ($W_m$ with mean $c\,\mathrm{blockdiag}(I_d, 0)$) helps on the similarity
#    target, which depends on $\langle x_0, x_i\rangle$ only.
# 4. The negative control: a target coupling two keys, $\langle x_1, x_2\rangle$, is not
#    learned by ReLU RFA at all (each feature sees one key at a time).

# %%
i512 = n_grid.index(512 * SCALE)
err = {key: value[i512] for key, value in curves.items()}
for t in ("query_key p=2", "similarity relu"):
    assert err[t, "kernel (M = inf)"] < err[t, "RFA"] < err[t, "RFMLP"], t
assert err["similarity relu", "biased RFA"] < err["similarity relu", "RFA"]
assert min(curves["two_key (control)", "RFA"]) > 0.9
reach = [next((n for n, e in zip(n_grid, curves[f"query_key p={p}", "RFA"]) if e <= 0.5),
              np.inf) for p in (1, 2, 3)]
assert reach[0] < reach[1] < reach[2], reach
print("n to reach error 0.5 for query-key p = 1, 2, 3:", reach)
print(f"at n = {512 * SCALE}: query_key p=2: kernel {err['query_key p=2', 'kernel (M = inf)']:.3f}"
      f", RFA {err['query_key p=2', 'RFA']:.3f}, RFMLP {err['query_key p=2', 'RFMLP']:.3f}")

# %% [markdown]
# ## Exercises
#
# 1. Replace ReLU by softmax attention (`activation="softmax"` in
#    `RandomFeatureAttention.sample`). Is the two-key control still
#    unlearned? Why does the softmax normalization couple the keys?
# 2. Sweep the bias $c/\sqrt d \in \{0, 0.5, 1, 2\}$ and find the target where biased sampling
#    hurts (hint: query-key, degree 1). What happens to the odd part of the similarity?
# 3. Double $N$. Which model's error moves most, and why does the RFMLP's input dimension
#    $(N+1)d$ matter?
