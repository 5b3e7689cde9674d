"""Random-feature attention (Fu, Guo, Bai, Mei 2023, arXiv 2307.11353).

Public surface::

    sample_tokens, sample_query_key                 # samplers
    RandomFeatureAttention, RandomFeatureMLP        # feature maps (relu / softmax attention)
    make_target, Target                             # normalized targets with a complexity axis
    rfa_relu_kernel, monte_carlo_attention_kernel   # infinite-head kernels
    run_rfa_job                                     # the study job (a pure function of its config)
"""

from .features import RandomFeatureAttention, RandomFeatureMLP
from .kernels import monte_carlo_attention_kernel, rfa_relu_kernel
from .sampling import sample_query_key, sample_tokens
from .study import run_rfa_job
from .targets import Target, make_target

__all__ = ["RandomFeatureAttention", "RandomFeatureMLP", "Target", "make_target",
           "monte_carlo_attention_kernel", "rfa_relu_kernel", "run_rfa_job", "sample_query_key",
           "sample_tokens"]
