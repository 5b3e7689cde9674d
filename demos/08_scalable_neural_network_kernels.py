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
# # Scalable neural network kernels: a dense layer as random features, a network in closed form
#
# Sehanobish, Choromanski, Zhao, Dubey, Likhosherstov (2024), *Scalable Neural Network
# Kernels*, ICLR.
#
# A dense layer $y_k = f(w_k^\top x + b_k)$ is a kernel between the input and each weight
# row. Universal random features split it into two towers that share one Gaussian matrix
# $G$ ($m$ rows): for $a^2 = \kappa$,
#
# $$ e^{\kappa\,w^\top x} = \mathbb E_g\big[e^{a g^\top x - a^2\|x\|^2/2}\,
#    e^{a g^\top w - a^2\|w\|^2/2}\big], $$
#
# so $f(Wx + b) \approx M\,\phi(x)$ with a parameter-free input tower $\phi$ and one matrix
# $M = \Psi(W, b)$ (cos and sin take $\kappa = i$). The estimate is unbiased and its error
# falls like $1/m$, times a factor $e^{\|x + w\|^2}$: hence unit-norm inputs and weights.
# Stacking SNNK layers **bundles** them: the input towers compose into one random map
# $\bar\phi$, the parameters collapse into one $M$, and for the squared loss $M$ has a closed
# form (ridge regression on $\bar\phi(x)$), with no backpropagation.
#
# **Knob**: `FEATURES` is m of the bundled network (512 runs in about 12 s on 2 CPU cores).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from rfattn.core import generator
from rfattn.ntk.snnk import BundledSNNK, SNNKLayer, exact_layer, normalize_rows
from rfattn.ntk.snnk_study import load_dataset, squared_error

FEATURES = 512    # <- the knob: random features of the bundled network
torch.set_default_dtype(torch.float64)

# %% [markdown]
# ## One SNNK layer against the dense layer
#
# A cos layer with 64 unit-norm weight rows on 200 unit-norm inputs; the SNNK layer draws its
# $G$ from a seeded stream (a buffer: saved with the layer, moved by `.to()`). Its relative
# error against the exact layer, over 10 draws of $G$ per m, should fall like $1/m$.

# %%
W = normalize_rows(torch.randn(64, 16, generator=generator(0, "demo8", "W")))
b = 0.3 * torch.randn(64, generator=generator(0, "demo8", "b"))
x = normalize_rows(torch.randn(200, 16, generator=generator(0, "demo8", "x")))
exact = exact_layer("cos", x, W, b)
ms = [16, 64, 256, 1024, 4096]
errors = {kind: [] for kind in ("cos", "exp", "gerf")}
for kind in errors:
    target = exact if kind == "cos" else exact_layer(kind, x, W, b)
    for m in ms:
        draws = []
        for seed in range(10):
            layer = SNNKLayer(W, b, m, kind, generator(seed, "demo8", kind, m))
            with torch.no_grad():
                draws.append(float(((layer(x) - target) ** 2).mean() / (target ** 2).mean()))
        errors[kind].append(np.mean(draws))
slope = np.polyfit(np.log(ms), np.log(errors["cos"]), 1)[0]
for kind, values in errors.items():
    plt.loglog(ms, values, "o-", label=kind)
plt.xlabel("m (random features)")
plt.ylabel("relative mean squared error")
plt.title(f"SNNK layers against the dense layer (cos slope {slope:.2f})")
plt.legend()
plt.show()
print("cos slope", round(slope, 3), "| gerf / exp error at each m:",
      np.round(np.array(errors["gerf"]) / np.array(errors["exp"]), 2))
assert abs(slope + 1) < 0.15, slope  # the error falls like 1/m
assert np.mean(errors["gerf"]) < np.mean(errors["exp"])  # the variance-reduced features win

# %% [markdown]
# ## The fully bundled network: closed form against Adam
#
# On scikit-learn's digits (one-hot targets, squared loss), one bundled cos layer of `FEATURES`
# features: $M$ and $c$ fitted in closed form, and the same $M$, $c$ trained by Adam on the
# same ridge objective, from zero, with the tower computed once. The closed form is the
# minimum, so Adam can only approach its training objective.

# %%
xtr, ytr, xva, yva, xte, yte = load_dataset("digits", seed=0)
ridge = 1e-4
start = time.perf_counter()
closed = BundledSNNK(64, 10, [FEATURES], ["cos"], generator(0, "demo8", "bundle")).fit(
    xtr, ytr, ridge)
closed_seconds = time.perf_counter() - start

adam = BundledSNNK(64, 10, [FEATURES], ["cos"], generator(0, "demo8", "bundle"))
start = time.perf_counter()
with torch.no_grad():
    tower = adam.features(xtr)
opt = torch.optim.Adam(adam.parameters(), lr=0.01)
history = []
for _ in range(300):
    opt.zero_grad()
    loss = ((tower @ adam.M.T + adam.c - ytr) ** 2).sum(1).mean() + ridge * (adam.M ** 2).sum()
    loss.backward()
    opt.step()
    history.append(loss.item())
adam_seconds = time.perf_counter() - start


def objective(net):
    with torch.no_grad():
        return squared_error(net(xtr), ytr) + ridge * float((net.M ** 2).sum())


def accuracy(net):
    with torch.no_grad():
        return float((net(xte).argmax(1) == yte.argmax(1)).double().mean())


plt.semilogy(history, label="Adam")
plt.axhline(objective(closed), color="k", ls="--", label="closed form")
plt.xlabel("step")
plt.ylabel("training objective")
plt.legend()
plt.show()
print(f"closed form: objective {objective(closed):.4f}, test accuracy {accuracy(closed):.3f}, "
      f"{closed_seconds:.2f} s; Adam (300 steps): objective {objective(adam):.4f}, test "
      f"accuracy {accuracy(adam):.3f}, {adam_seconds:.2f} s; parameters "
      f"{closed.M.numel() + closed.c.numel()}")
assert objective(closed) <= objective(adam) + 1e-12  # the closed form is the minimum
assert accuracy(closed) > 0.9

# %% [markdown]
# ## Exercises
#
# 1. Replace `cos` by `relu` in the first cell. What does the ReLU-SNNK layer estimate, and
#    why is its error against `torch.relu(x @ W.T)` not falling with m?
# 2. Scale `x` and `W` to norm 2 instead of 1 (and build the layers with `normalize="none"`).
#    How much larger is the error at m = 1024, and does the layer accept the inputs?
# 3. Set `FEATURES` to 64, 256 and 2048. Where does the bundled network's test accuracy stop
#    improving, and how does its parameter count compare with a dense MLP of hidden width 64?
# 4. Bundle two layers (`[FEATURES, FEATURES]`, `["cos", "cos"]`): does the closed form gain
#    anything on digits?
