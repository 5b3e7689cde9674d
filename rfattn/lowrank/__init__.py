"""One-layer transformer: pattern data, training, update spectra, pruning and adapters.

Li, Wang, Zhang, Liu, Chen, "Learning on Transformers is Provable Low-Rank and Sparse: A
One-layer Analysis", arXiv 2406.17167 (IEEE SAM 2024).

Public surface::

    PatternData, orthonormal_patterns, sample               # the data model
    init_weights, Parameterization, forward, attention, train, evaluate   # the network
    SNNKAdapters                                            # SNNK adapters (Sehanobish 2024)
    numerical_rank, stable_rank, effective_rank, normalized_spectrum, span_energy   # spectra
    truncate, prune_mask                                    # low rank and sparsity
    STUDY, run_lowrank_job                                        # the study job
"""

from .analysis import (effective_rank, normalized_spectrum, numerical_rank, prune_mask,
                       span_energy, stable_rank, truncate)
from .data import PatternData, orthonormal_patterns, sample
from .model import Parameterization, attention, evaluate, forward, init_weights, train
from .snnk_adapters import SNNKAdapters
from .study import STUDY, run_lowrank_job

__all__ = [
    "STUDY", "Parameterization", "PatternData", "SNNKAdapters", "attention", "effective_rank",
    "evaluate", "forward", "init_weights", "normalized_spectrum", "numerical_rank",
    "orthonormal_patterns", "prune_mask", "run_lowrank_job", "sample", "span_energy",
    "stable_rank", "train", "truncate",
]
