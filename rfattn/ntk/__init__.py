"""Neural tangent kernels: empirical (any torch module), analytic, kernel regression, random
features.

Public surface::

    fc_kernels, Kernels                         # analytic NNGP / NTK of fully connected nets
    EmpiricalNTK, empirical_ntk, monte_carlo_ntk  # torch.func empirical NTK, tiled
    FullyConnected, ValueOnlyAttention          # finite networks with those limits
    gradient_flow, gaussian_quantiles           # closed-form training dynamics (squared loss)
    random_features                             # universal random features (SNNK)
"""

from . import random_features
from .analytic import ACTIVATIONS, Kernels, fc_kernels
from .empirical import EmpiricalNTK, empirical_ntk, monte_carlo_ntk
from .networks import FullyConnected, ValueOnlyAttention
from .regression import GradientFlowPrediction, gaussian_quantiles, gradient_flow

__all__ = ["ACTIVATIONS", "EmpiricalNTK", "FullyConnected", "GradientFlowPrediction", "Kernels",
           "ValueOnlyAttention", "empirical_ntk", "fc_kernels", "gaussian_quantiles",
           "gradient_flow", "monte_carlo_ntk", "random_features"]
