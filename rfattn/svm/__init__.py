"""Attention as a support vector machine: Att-SVM problems, solvers and GD dynamics.

Tarzanagh, Li, Thrampoulidis, Oymak, "Transformers as Support Vector Machines", arXiv
2308.16898 (2023); Tarzanagh, Li, Zhang, Oymak, "Max-Margin Token Selection in Attention
Mechanism", NeurIPS 2023 (arXiv 2306.13596).
"""

from .dynamics import (
                       AttentionData,
                       Trajectory,
                       correlation,
                       outputs,
                       random_data,
                       saturation,
                       softmax_scores,
                       train_attention,
)
from .nuclear import nuclear_bounds, solve_nuclear
from .problems import AttSVMProblem, check_data, constraints, optimal_selection, token_scores
from .selection import MultiTokenSVM, classify, is_locally_optimal, multi_token_svm
from .solvers import (
                       SVMResult,
                       kkt_residual,
                       least_distance,
                       matrix_rank,
                       solve_cvxpy,
                       solve_frobenius,
)
from .study import run_svm_job

__all__ = [
    "AttSVMProblem", "AttentionData", "MultiTokenSVM", "SVMResult", "Trajectory", "check_data",
    "classify", "constraints", "correlation", "is_locally_optimal", "kkt_residual",
    "least_distance", "matrix_rank", "multi_token_svm", "nuclear_bounds", "optimal_selection",
    "outputs",
    "random_data", "run_svm_job", "saturation", "softmax_scores", "solve_cvxpy", "solve_frobenius",
    "solve_nuclear", "token_scores", "train_attention",
]
