"""Attention as a support vector machine: Att-SVM problems, solvers and GD dynamics.

Tarzanagh, Li, Thrampoulidis, Oymak, "Transformers as Support Vector Machines", arXiv
2308.16898 (2023); Tarzanagh, Li, Zhang, Oymak, "Max-Margin Token Selection in Attention
Mechanism", NeurIPS 2023 (arXiv 2306.13596).

Public surface::

    constraints, optimal_selection, token_scores        # Att-SVM problems (AttSVMProblem)
    solve_frobenius, least_distance, solve_nuclear      # exact and certified solvers (SVMResult)
    nuclear_bounds, solve_cvxpy                         # bounds on any point; cvxpy cross-check
    classify, is_locally_optimal, multi_token_svm       # which tokens a trained attention selects
    random_data, train_attention, correlation, saturation  # GD dynamics, vectorized over runs
    STUDY, run_svm_job                                        # the study job
"""

from .dynamics import correlation, random_data, saturation, train_attention
from .nuclear import nuclear_bounds, solve_nuclear
from .problems import AttSVMProblem, constraints, optimal_selection, token_scores
from .selection import classify, is_locally_optimal, multi_token_svm
from .solvers import SVMResult, least_distance, solve_cvxpy, solve_frobenius
from .study import STUDY, run_svm_job

__all__ = ["STUDY",
    "AttSVMProblem", "SVMResult", "classify", "constraints", "correlation", "is_locally_optimal",
    "least_distance", "multi_token_svm", "nuclear_bounds", "optimal_selection", "random_data",
    "run_svm_job", "saturation", "solve_cvxpy", "solve_frobenius", "solve_nuclear",
    "token_scores", "train_attention",
]
