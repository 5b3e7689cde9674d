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
# # Attention at infinite width: the kernels of ReLU and softmax heads
#
# Random-feature attention (Fu, Guo, Bai, Mei 2023) freezes M random query-key heads and
# trains the values, so it is kernel regression with the heads' kernel
# $\Phi_M\Phi_M^\top$, an average of M independent one-head kernels. As $M\to\infty$ it
# becomes the infinite-head kernel
#
# $$ K = \mathbb E_W\Big[\sum_{i,j} a_i a'_j\,\langle\tilde x_i, \tilde x'_j\rangle\Big]. $$
#
# For ReLU heads K has a closed form (zero-mean and biased). For softmax heads it does not;
# the lab computes it two ways: by Monte Carlo with a control variate (the softmax's
# second-order Taylor polynomial, whose kernel is known exactly, and antithetic heads
# $(W, -W)$), and deterministically by a Mehler-Hermite expansion in each sample's Hermite
# coefficients.
#
# **Knob**: `HEADS` is the number of heads of the two Monte Carlo estimators compared below
# (4096 runs in a few seconds on 2 CPU cores).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from rfattn.core import generator
from rfattn.rfa import (RandomFeatureAttention, monte_carlo_attention_kernel, rfa_relu_kernel,
                        sample_tokens)
from rfattn.rfa import hermite_softmax_kernel
from rfattn.rfa.softmax_kernel import relative_error, softmax_attention_kernel

HEADS = 4096    # <- the knob: heads of each Monte Carlo softmax estimator
DEGREE = 6      # total degree of the Hermite expansion (nodes: DEGREE + 2)
torch.set_default_dtype(torch.float64)
D, N, VARIANCE = 4, 4, 0.25
x0, X = sample_tokens(128, N, D, generator(0, "demo9", "tokens"))[:2]

# %% [markdown]
# ## Finite heads converge to the kernel like 1/M
#
# For zero-mean ReLU heads, the squared distance between the M heads' kernel and the closed
# form, relative to the kernel, over 6 draws per M. Its expectation is exactly $c/M$.

# %%
exact = rfa_relu_kernel(x0, X, variance=VARIANCE)
ms = [8, 32, 128, 512, 2048]
errors = []
for m in ms:
    draws = []
    for draw in range(6):
        phi = RandomFeatureAttention.sample(m, D, generator(draw, "demo9", "heads", m),
                                            "relu", "zero", VARIANCE).features(x0, X)
        draws.append(float((phi @ phi.T - exact).norm() ** 2 / exact.norm() ** 2))
    errors.append(np.mean(draws))
slope = np.polyfit(np.log(ms), np.log(errors), 1)[0]
plt.loglog(ms, errors, "o-", label="ReLU heads")
plt.loglog(ms, errors[0] * ms[0] / np.array(ms), "k:", label="1/M")
plt.xlabel("heads M")
plt.ylabel("|K_M - K|^2 / |K|^2")
plt.title(f"Finite heads against the closed form (slope {slope:.2f})")
plt.legend()
plt.show()
print("slope", round(slope, 3))
assert abs(slope + 1) < 0.15, slope

# %% [markdown]
# ## Softmax heads: plain Monte Carlo against the control variate
#
# Both estimators use `HEADS` heads; their standard errors come from the spread of draws of
# 64 heads. The control variate subtracts the Taylor features' kernel per draw and adds its
# exact value, so it stays unbiased: the two estimates agree within their errors.

# %%
def plain_heads(m, draw):
    return RandomFeatureAttention.sample(m, D, generator(0, "demo9", "softmax", draw),
                                         "softmax", "zero", VARIANCE)


plain, plain_se = monte_carlo_attention_kernel(x0, X, None, None, plain_heads, HEADS, 64)
controlled, controlled_se = softmax_attention_kernel(x0, X, variance=VARIANCE,
                                                     total_heads=HEADS, heads_per_draw=64)
gain = relative_error(plain, plain_se) / relative_error(controlled, controlled_se)
z = (plain - controlled) / (plain_se**2 + controlled_se**2).sqrt()
print(f"relative standard error: plain {relative_error(plain, plain_se):.2e}, control "
      f"variate {relative_error(controlled, controlled_se):.2e} ({gain:.1f}x lower)")
print(f"mean z of their difference {float(z.mean()):+.2f}")
assert gain > 2.0
assert abs(float(z.mean())) < 1.0  # entries share heads: a mean within one standard error

# %% [markdown]
# ## Softmax heads without heads: the Mehler-Hermite expansion
#
# A head enters a sample only through $u = W^\top\tilde x_0$, and two samples' $u$ are
# Gaussians with the isotropic correlation $\rho = \cos(\tilde x_0, \tilde x_0')$. Mehler's
# formula then writes the kernel as $\sum_k \rho^k\langle\hat f_k, \hat f'_k\rangle$ over
# each sample's Hermite coefficients of degree k, computed once per sample by Gauss-Hermite
# quadrature. Its error falls fast with the degree, and it comes with a truncation bound.

# %%
reference, _ = hermite_softmax_kernel(x0, X, variance=VARIANCE, degree=10, nodes=12)
degrees, hermite_errors, bounds = [2, 4, DEGREE], [], []
for degree in degrees:
    kernel, bound = hermite_softmax_kernel(x0, X, variance=VARIANCE, degree=degree,
                                           nodes=degree + 2)
    hermite_errors.append(float((kernel - reference).norm() / reference.norm()))
    bounds.append(bound)
    print(f"degree {degree}: relative error {hermite_errors[-1]:.1e}, bound {bound:.1e}")
plt.semilogy(degrees, hermite_errors, "o-", label="error against degree 10")
plt.semilogy(degrees, bounds, "s--", label="truncation bound")
plt.axhline(relative_error(plain, plain_se), color="k", ls=":",
            label=f"plain Monte Carlo, {HEADS} heads")
plt.xlabel("degree")
plt.ylabel("relative Frobenius error")
plt.legend()
plt.show()
z = (plain - reference) / plain_se
print(f"plain Monte Carlo against the expansion: mean z {float(z.mean()):+.2f}")
assert all(e <= b for e, b in zip(hermite_errors, bounds))
assert hermite_errors[-1] < 1e-3 * relative_error(plain, plain_se)
assert abs(float(z.mean())) < 1.0

# %% [markdown]
# ## Exercises
#
# 1. Replace the ReLU heads of the first cell by biased ones (`"biased"` and `c=1.0` in
#    `sample`, `c=1.0` in `rfa_relu_kernel`). Is the slope still -1? What happens if you keep
#    `c=0.0` in the kernel?
# 2. Multiply `VARIANCE` by 4. How does the control variate's gain change, and why (think of
#    where the Taylor polynomial of the softmax stops tracking it)?
# 3. Set `HEADS` to 1024 and 16384. Do both errors fall like $1/\sqrt{M}$?
# 4. Multiply `VARIANCE` by 4 and rerun the expansion. Why does it need a higher degree for the
#    same error (think of how far the scores reach into the softmax's curvature)?
