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
# # Multi-head attention at infinite width: NNGP, NTK and training in the kernel regime
#
# Train every weight of a multi-head attention network (queries, keys, values, outputs),
# then let the heads, the query-key width $d_k$ and the channels grow together. Under the
# $1/d_k$ scaling with tied queries and keys (Hron, Bahri, Sohl-Dickstein, Novak 2020), the
# attention weights $G = \zeta(\sigma_{QK} ZZ^\top/d)$ become deterministic and the network's
# NTK tends to a closed form: `rfattn.ntk.attention_kernels.attention_kernels`, the same
# kernel as neural-tangents' `GlobalSelfAttention` (to 4e-16).
#
# **Knob**: `MECHANISM`, the attention nonlinearity (softmax, relu, identity or abs).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from rfattn.core import generator
from rfattn.ntk import EmpiricalNTK, gradient_flow, train_full_batch
from rfattn.ntk.attention_kernels import AttentionArchitecture, attention_kernels
from rfattn.ntk.attention_network import AttentionNetwork
from rfattn.rfa import sample_tokens
from rfattn.rfa.targets import make_target

MECHANISM = "softmax"    # <- the knob
torch.set_default_dtype(torch.float64)
D, KEYS = 4, 4
arch = AttentionArchitecture(MECHANISM, "linear", b_std=0.1)


def sequences(n, stream):
    """n samples of a query and KEYS keys, as sequences of KEYS + 1 tokens of norm sqrt(D)."""
    x0, keys = sample_tokens(n, KEYS, D, generator(0, "demo10", stream))
    return x0, keys, D**0.5 * torch.cat([x0[:, None], keys], 1)


# %% [markdown]
# ## The empirical NTK converges like 1/sqrt(heads)
#
# For each width H (= $d_k$ = channels), the relative Frobenius distance between one
# network's empirical NTK and the analytic NTK, RMS over 3 networks.

# %%
x = sequences(12, "ntk")[2]
exact = attention_kernels(x, arch=arch).ntk
widths, errors = [16, 32, 64, 128], []
for h in widths:
    errs = [float((EmpiricalNTK(AttentionNetwork(D, h, h, 1, h, arch, generator(s, "demo10", h)))(
        x, method="jacobian") - exact).norm() / exact.norm()) for s in range(3)]
    errors.append(float(np.sqrt(np.mean(np.square(errs)))))
slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
plt.loglog(widths, errors, "o-", label=f"{MECHANISM} attention")
plt.loglog(widths, errors[0] * (np.array(widths) / widths[0]) ** -0.5, "k:", label="heads^-1/2")
plt.xlabel("heads = d_key = channels")
plt.ylabel("|Theta_H - Theta|_F / |Theta|_F")
plt.title(f"Empirical against analytic NTK (slope {slope:.2f})")
plt.legend()
plt.show()
print("slope", round(slope, 3))
assert -0.8 < slope < -0.25, slope

# %% [markdown]
# ## Training in the kernel regime
#
# A network with 256 heads, trained by full-batch gradient descent on every weight (its
# output centred at initialization), against kernel regression with the analytic NTK at the
# same time $t$ = lr x steps, on a target of the random-feature-attention lens.

# %%
target = make_target("single_key", D, KEYS, degree=2)
x0_test, keys_test, x_test = sequences(256, "test")
y_test = target(x0_test, keys_test)
for n in (16, 48):
    x0_train, keys_train, x_train = sequences(n, f"train{n}")
    y = target(x0_train, keys_train)
    theta = attention_kernels(torch.cat([x_train, x_test]), arch=arch).ntk
    kernel = gradient_flow(theta[:n, :n], theta[n:, :n], y, [300.0]).mean[:, 0]
    net = AttentionNetwork(D, 256, 256, 1, 256, arch, generator(0, "demo10", "net", n))
    with torch.no_grad():
        f0, f0_test = net(x_train)[:, 0].clone(), net(x_test)[:, 0].clone()
    train_full_batch(net, x_train, y, steps=150, lr=2.0, centre=f0)
    with torch.no_grad():
        network = net(x_test)[:, 0] - f0_test
    mse_net, mse_kernel = (float(((p - y_test) ** 2).mean()) for p in (network, kernel))
    print(f"n = {n}: test MSE network {mse_net:.4f}, NTK regression {mse_kernel:.4f}")
    assert abs(mse_net - mse_kernel) / mse_kernel < 0.15

# %% [markdown]
# ## Exercises
#
# 1. Set `MECHANISM = "identity"` and build `AttentionArchitecture("identity", "sqrt")`: the
#    usual $1/\sqrt{d_k}$ scaling with independent queries and keys. Why does the NTK now
#    count the query-key weights (it is $4\Sigma$, not $2\Sigma$)?
# 2. Train the network at 32 heads instead of 256. How far apart are the two test errors?
# 3. Add positional encodings (`positions=sinusoidal_positions(KEYS + 1, D)` from
#    `rfattn.ntk.attention_kernels`). Does the kernel now tell the query from the keys?
