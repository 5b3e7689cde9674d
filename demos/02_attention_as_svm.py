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
# # Attention as a support vector machine
#
# Tarzanagh, Li, Thrampoulidis, Oymak (2023), *Transformers as Support Vector Machines*,
# arXiv 2308.16898; Tarzanagh, Li, Zhang, Oymak, *Max-Margin Token Selection in Attention
# Mechanism*, NeurIPS 2023.
#
# One attention layer with a linear head: sample $i$ has tokens $X_i \in \mathbb R^{N\times d}$,
# a query $z_i$, a label $Y_i = \pm1$ and
#
# $$ f(X_i) = v^\top X_i^\top \mathrm{softmax}(X_i W z_i). $$
#
# Gradient descent on $W$ (or on $K, Q$ with $W = KQ^\top$) grows $\|W\|$ without bound, and the
# softmax ends up selecting one token $\alpha_i$ per sample. The papers show that the
# *direction* of $W$ converges to the solution of an SVM that separates the selected token from
# the others:
#
# $$ \min_W \|W\|_F \ \text{(for } W\text{)} \quad\text{or}\quad \min_W \|W\|_*
#    \ \text{(for } KQ^\top\text{)}
#    \qquad \text{s.t.}\quad (x_{i\alpha_i} - x_{it})^\top W z_i \ge 1
#    \ \ \forall i, t\ne\alpha_i. $$
#
# The nuclear norm favours low rank. **Knob**: `RUNS` (independent problems trained at once).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from rfattn.core import generator
from rfattn.svm import (classify, constraints, correlation, random_data, solve_frobenius,
                        solve_nuclear, train_attention)

RUNS = 20          # <- the knob: problems trained at once (the paper's E3 uses 100)
torch.set_default_dtype(torch.float64)

# %% [markdown]
# ## In two dimensions: the paths bend onto the SVM direction

# %%
data = random_data(1, n=4, N=3, d=2, generator=generator(0, "demo", "svm", "2d"))
traj = train_attention(data, steps=2000, lr=0.1, parameterization="W", record_every=20,
                       generator=generator(0, "demo", "svm", "init"))
X, z = data.X[0].numpy(), data.z[0].numpy()
alpha = traj.scores[0].argmax(-1).numpy()            # the token each sample's softmax selects
svm = solve_frobenius(constraints(X, alpha, z))
print("W-SVM:", svm.status, "margin constraints certified to", f"{svm.certificate:.1e}")
paths = torch.einsum("kde,ne->knd", traj.W[0], data.z[0]).numpy()   # W(k) z_i, k over steps
fig, ax = plt.subplots(figsize=(4.5, 4.5))
for i in range(X.shape[0]):
    ax.plot(paths[:, i, 0], paths[:, i, 1], lw=1)
    direction = svm.W @ z[i]
    ax.arrow(0, 0, *(direction / np.linalg.norm(direction) * np.abs(paths).max()), ls="--",
             color="gray", width=0.002)
ax.set(title="W(k) z_i (lines) and the SVM directions (dashed)", aspect="equal")
corr = float(correlation(traj.W[0, -1], torch.tensor(svm.W)))
print(f"correlation of W(2000) with the W-SVM solution: {corr:.4f}")
assert corr > 0.99

# %% [markdown]
# ## $W$ against $(K, Q)$: Frobenius against nuclear norm, and rank
#
# The same problems trained both ways, in $d = 10$. Each run's iterate is compared with both
# SVMs of the selection it makes.

# %%
data = random_data(RUNS, n=6, N=8, d=10, generator=generator(0, "demo", "svm", "e3"))
result = {}
for par in ("W", "KQ"):
    traj = train_attention(data, steps=2000, lr=0.1, parameterization=par, record_every=2000,
                           generator=generator(0, "demo", "svm", par))
    rows = []
    for r in range(RUNS):
        X, z = data.X[r].numpy(), data.z[r].numpy()
        alpha = traj.scores[r].argmax(-1).numpy()
        problem = constraints(X, alpha, z)
        frob = solve_frobenius(problem)
        if not frob.optimal:
            continue
        nuc = solve_nuclear(problem, frobenius=frob)
        W = traj.W[r, -1]
        rows.append((float(correlation(W, torch.tensor(frob.W))),
                     float(correlation(W, torch.tensor(nuc.W))), frob.rank, nuc.rank))
    result[par] = np.array(rows)
    c_frob, c_nuc, r_frob, r_nuc = np.median(result[par], axis=0)
    print(f"{par:2s}: median correlation with the Frobenius SVM {c_frob:.3f}, with the nuclear "
          f"SVM {c_nuc:.3f}; median rank of the SVMs: Frobenius {r_frob:.0f}, nuclear {r_nuc:.0f}")

# W goes to the Frobenius SVM, (K, Q) to the nuclear one; the nuclear solution has lower rank
assert np.median(result["W"][:, 0]) > np.median(result["W"][:, 1])
assert np.median(result["KQ"][:, 1]) > np.median(result["KQ"][:, 0])
assert np.median(result["W"][:, 3]) < np.median(result["W"][:, 2])

# %% [markdown]
# ## Local and global optima
#
# The SVM is defined by the selection GD ends up making. When the selected token is the one
# with the best score $Y_i v^\top x_{it}$ for every sample, GD found the **global** optimum;
# otherwise the selection may still be a **local** optimum (every non-selected token beaten
# on the SVM's support) or **neither**.

# %%
labels = []
for r in range(RUNS):
    X, z, Y, v = (a[r].numpy() for a in (data.X, data.z, data.Y, data.v))
    labels.append(classify(X, z, Y, v, traj.scores[r].argmax(-1).numpy()))
counts = {k: labels.count(k) for k in ("global", "local", "neither")}
print("(K, Q) runs:", counts)
assert counts["global"] > 0

# %% [markdown]
# ## An infeasible problem and its certificate
#
# Two samples with the same tokens and the same query cannot select different tokens: the two
# margin constraints contradict each other. The solver says so, with a Farkas certificate (a
# nonnegative combination of the constraints that is $\ge 1$ on one side and 0 on the other).

# %%
X, z = data.X[0].numpy(), data.z[0].numpy()
X2, z2 = np.stack([X[0], X[0]]), np.stack([z[0], z[0]])
bad = solve_frobenius(constraints(X2, np.array([0, 1]), z2))
print("status:", bad.status, f"| Farkas certificate ||A^T y|| = {bad.certificate:.1e}")
assert bad.status == "infeasible" and bad.W is None and bad.certificate < 1e-8

# %% [markdown]
# ## Exercises
#
# 1. Train with `normalized=False` (plain GD). How many steps does the correlation need to pass
#    0.99 now?
# 2. Use the correlation loss (`loss="correlation"`): does $W$ still converge in direction?
# 3. Increase $N$ (tokens per sample) and watch the share of global optima. Why do more tokens
#    make local optima likelier?
