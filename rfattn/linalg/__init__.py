"""Shared numerics: ridge paths from one eigendecomposition, primal or dual, kernel or features."""

from .montecarlo import RunningMean
from .ridge import (RidgePath, RidgeRegressor, SpectralRidge, check_lambdas,
                    prefix_kernel_ridge_paths, prefix_ridge_paths)

__all__ = ["RidgePath", "RunningMean", "RidgeRegressor", "SpectralRidge", "check_lambdas",
           "prefix_kernel_ridge_paths", "prefix_ridge_paths"]
