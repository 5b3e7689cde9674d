"""Random-feature attention (Fu, Guo, Bai, Mei 2023, arXiv 2307.11353).

Public surface::

    sample_tokens, sample_query_key                 # samplers
    RandomFeatureAttention, RandomFeatureMLP        # feature maps (relu / softmax attention)
    make_target, Target                             # normalized targets with a complexity axis
    rfa_relu_kernel, monte_carlo_attention_kernel   # infinite-head kernels
    hermite_softmax_kernel                          # softmax: Mehler-Hermite expansion
    softmax_attention_kernel                        # softmax: control variate (Monte Carlo)
    user_kernel                                     # a user's kernel model.kernel=module:function
    TokenSettings, ModelSettings, TargetSettings, RidgeSettings   # the study's settings
    STUDY, run_rfa_job                              # the study (a pure function of its config)
"""

from .features import RandomFeatureAttention, RandomFeatureMLP
from .hermite_kernel import hermite_softmax_kernel
from .kernels import monte_carlo_attention_kernel, rfa_relu_kernel, user_kernel
from .sampling import sample_query_key, sample_tokens
from .settings import ModelSettings, RidgeSettings, TargetSettings, TokenSettings
from .softmax_kernel import softmax_attention_kernel
from .study import STUDY, run_rfa_job
from .targets import Target, make_target

__all__ = ["STUDY", "ModelSettings", "RandomFeatureAttention", "RandomFeatureMLP",
           "RidgeSettings", "Target", "TargetSettings", "TokenSettings", "hermite_softmax_kernel",
           "make_target",
           "monte_carlo_attention_kernel", "rfa_relu_kernel", "run_rfa_job", "sample_query_key",
           "sample_tokens", "softmax_attention_kernel", "user_kernel"]
