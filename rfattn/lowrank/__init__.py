"""One-layer transformer: pattern data, training, update spectra, pruning and adapters.

Li, Wang, Zhang, Liu, Chen, "Learning on Transformers is Provable Low-Rank and Sparse: A
One-layer Analysis", arXiv 2406.17167 (IEEE SAM 2024).
"""

from .analysis import (
                       effective_rank,
                       normalized_spectrum,
                       numerical_rank,
                       prune_mask,
                       span_energy,
                       stable_rank,
                       truncate,
)
from .data import PatternData, majority_vote, orthonormal_patterns, sample
from .model import Parameterization, attention, evaluate, forward, hinge, init_weights, train
from .study import run_lowrank_job

__all__ = [
    "Parameterization", "PatternData", "attention", "effective_rank", "evaluate", "forward",
    "hinge", "init_weights", "majority_vote", "normalized_spectrum", "numerical_rank",
    "orthonormal_patterns", "prune_mask", "run_lowrank_job", "sample", "span_energy",
    "stable_rank", "train", "truncate",
]
