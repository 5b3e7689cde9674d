"""Shared numerics: ridge paths, arc-cosine kernel formulas, block sizing, Monte Carlo means."""

from .blocks import block_rows
from .kernel_ridge import kernel_ridge_gcv, kernel_ridge_solve
from .kernels import add_gram_, arccos_angular_, gram_matrix, relu_arccos_kernel
from .montecarlo import RunningMean
from .ridge import (RidgePath, RidgeRegressor, SpectralRidge, check_lambdas,
                    prefix_kernel_ridge_paths, prefix_ridge_paths)

__all__ = ["RidgePath", "RidgeRegressor", "RunningMean", "SpectralRidge", "add_gram_",
           "arccos_angular_", "block_rows", "check_lambdas", "gram_matrix", "kernel_ridge_gcv",
           "kernel_ridge_solve", "prefix_kernel_ridge_paths", "prefix_ridge_paths",
           "relu_arccos_kernel"]
