"""Neural tangent kernels: empirical (any torch module), analytic, kernel regression, random
features.

Public surface::

    fc_kernels                                  # analytic NNGP / NTK of fully connected nets
    EmpiricalNTK, empirical_ntk, monte_carlo_ntk  # torch.func empirical NTK, tiled
    FullyConnected, ValueOnlyAttention          # finite networks with those limits
    train_full_batch                            # gradient descent on the squared loss
    gradient_flow, gaussian_quantiles           # closed-form training dynamics (squared loss)
    random_features                             # universal random features (SNNK)
    snnk.SNNKLayer                              # a dense layer as y = M phi(x) (SNNK)
    attention_kernels, AttentionArchitecture    # NNGP / NTK of multi-head attention networks
    AttentionNetwork                            # the finite network with those limits
    STUDY, run_ntk_job                                # the study job

``ValueOnlyAttention`` is the one bridge between lenses: random-feature attention as a torch
module, whose NTK is the RFA feature Gram matrix and, as M grows, the infinite-head kernel
:func:`rfattn.rfa.rfa_relu_kernel`.
"""

from . import random_features, snnk
from .analytic import fc_kernels
from .attention_kernels import AttentionArchitecture, attention_kernels
from .attention_network import AttentionNetwork
from .empirical import EmpiricalNTK, empirical_ntk, monte_carlo_ntk
from .networks import FullyConnected, ValueOnlyAttention, train_full_batch
from .regression import gaussian_quantiles, gradient_flow
from .study import STUDY, run_ntk_job

__all__ = ["STUDY", "AttentionArchitecture", "AttentionNetwork", "EmpiricalNTK",
           "FullyConnected", "ValueOnlyAttention", "attention_kernels", "empirical_ntk",
           "fc_kernels", "gaussian_quantiles", "gradient_flow", "monte_carlo_ntk",
           "random_features", "run_ntk_job", "snnk", "train_full_batch"]
