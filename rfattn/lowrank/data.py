r"""Pattern data model of the one-layer transformer analyses (Li, Wang, Zhang, Liu, Chen 2024).

Li et al., "Learning on Transformers is Provable Low-Rank and Sparse: A One-layer Analysis",
arXiv 2406.17167, following the template of the same group's shallow-ViT paper (ICLR 2023).

Vocabulary: ``patterns`` is the paper's M (orthonormal patterns), N tokens per sample (the
paper's L), n samples (the paper's N).

- ``patterns`` = M orthonormal patterns :math:`\mu_1, \dots, \mu_M \in \mathbb{R}^d`
  (:math:`M \le d`).
  Patterns :math:`0..K-1` are the label-relevant ones of class :math:`+1`, patterns
  :math:`K..2K-1` those of class :math:`-1`, the rest are label-irrelevant.
- A sample is N tokens :math:`x_l = \mu_{j(l)} + z_l`. A share :math:`\alpha_*` of the
  tokens carries a relevant pattern of the sample's class, a share :math:`\alpha_\#` one of the
  other class ("confusion" tokens), the rest irrelevant patterns. With ``mix = token`` each
  relevant token picks one of its class's :math:`K` patterns at random; with ``mix = sample``
  a sample draws one pattern of each class (a subtype) for all its relevant tokens.
- Noise :math:`z_l`: uniform in the ball :math:`\|z\| \le \tau` (``bounded``) or
  :math:`N(0, \tau^2 I_d / d)` (``gaussian``, so :math:`E\|z\|^2 = \tau^2`).
- The label is the majority vote over the discriminative tokens; :math:`\alpha_* > \alpha_\#`
  makes it the drawn class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.checks import ConfigError, choice, positive_int, real

NOISES = ("bounded", "gaussian")
MIXES = ("token", "sample")


@dataclass(frozen=True)
class PatternData:
    """Data-model settings, validated on construction (errors name the parameter).

    Attributes
    ----------
    d : int
        Token dimension.
    patterns : int
        Orthonormal patterns (the paper's M), at most d.
    N : int
        Tokens per sample (the paper's L).
    K : int
        Label-relevant patterns per class (2K in all).
    alpha_star, alpha_conf : float
        Shares of tokens with the sample's own class pattern and with the other class's.
    tau : float
        Noise size.
    noise : str
        ``bounded`` or ``gaussian``.
    mix : str
        ``token`` or ``sample`` (module docstring).
    """

    d: int
    patterns: int
    N: int
    K: int
    alpha_star: float
    alpha_conf: float
    tau: float
    noise: str
    mix: str

    def __post_init__(self):
        d = positive_int("d", self.d)
        M = positive_int("patterns", self.patterns)
        N = positive_int("N", self.N)
        K = positive_int("K", self.K)
        if M > d:
            raise ConfigError(f"patterns must be <= d = {d} for orthonormal patterns "
                              f"(got {M})")
        if 2 * K > M:
            raise ConfigError(f"K must be <= patterns/2 = {M // 2}: 2K label-relevant patterns "
                              f"must fit among the {M} patterns (got K = {K})")
        real("alpha_star", self.alpha_star, low=0.0, high=1.0, low_open=True)
        real("alpha_conf", self.alpha_conf, low=0.0, high=1.0)
        real("tau", self.tau, low=0.0, high=1e3)
        choice("noise", self.noise, NOISES)
        choice("mix", self.mix, MIXES)
        n_star, n_conf = self.token_counts
        if n_star <= n_conf:
            raise ConfigError(
                f"alpha_star must exceed alpha_conf by at least one token of N = {N}: "
                f"round(alpha_star N) = {n_star} <= round(alpha_conf N) = {n_conf} "
                f"(alpha_star = {self.alpha_star}, alpha_conf = {self.alpha_conf})")
        if n_star + n_conf > N:
            raise ConfigError(f"alpha_star + alpha_conf must be <= 1 (got {self.alpha_star} + "
                              f"{self.alpha_conf})")
        if n_star + n_conf < N and M == 2 * K:
            raise ConfigError(f"irrelevant tokens need an irrelevant pattern: patterns must be "
                              f"> 2K = {2 * K} when alpha_star + alpha_conf < 1 (got {M})")

    @property
    def token_counts(self) -> tuple[int, int]:
        """Tokens per sample carrying the own-class and the other-class relevant patterns."""
        return round(self.alpha_star * self.N), round(self.alpha_conf * self.N)

    @property
    def relevant(self) -> list[int]:
        """Indices of the 2K label-relevant patterns (class +1 first)."""
        return list(range(2 * self.K))


def orthonormal_patterns(d: int, patterns: int, generator: torch.Generator,
                         dtype=torch.float64) -> torch.Tensor:
    """Orthonormal patterns: the Q factor of a Gaussian d x patterns matrix, as rows.

    Parameters
    ----------
    d, patterns : int
        Dimension and number of patterns (at most d).
    generator : torch.Generator
        The random stream (the study uses ``generator(seed, "lowrank", "patterns")``).
    dtype : torch.dtype
        Of the result (drawn in float64).

    Returns
    -------
    Tensor
        (patterns, d) with orthonormal rows.
    """
    g = torch.randn(d, patterns, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    return (q * torch.sign(torch.diagonal(r))).T.contiguous().to(dtype)


def majority_vote(pattern_index: torch.Tensor, K: int) -> torch.Tensor:
    """+1 where class-(+1) patterns outnumber class-(-1) ones, -1 where fewer, 0 on a tie."""
    pos = (pattern_index < K).sum(-1)
    neg = ((pattern_index >= K) & (pattern_index < 2 * K)).sum(-1)
    return torch.sign(pos - neg).to(torch.int64)


def sample(data: PatternData, n: int, mu: torch.Tensor, generator: torch.Generator,
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw ``n`` samples of the pattern data model (Li et al. 2024).

    Parameters
    ----------
    data : PatternData
        The data-model settings.
    n : int
        Samples.
    mu : Tensor
        The patterns as rows, (patterns, d) (:func:`orthonormal_patterns`).
    generator : torch.Generator

    Returns
    -------
    (Tensor, Tensor, Tensor)
        Tokens X (n, N, d), labels y (n,) in {+1, -1}, and each token's pattern index (n, N).
    """
    n = positive_int("n", n)
    N, K, d, draw = data.N, data.K, data.d, {"generator": generator}
    n_star, n_conf = data.token_counts
    cls = torch.randint(0, 2, (n,), **draw)  # 0 -> y = +1, 1 -> y = -1
    per = 1 if data.mix == "sample" else None
    own = cls[:, None] * K + torch.randint(0, K, (n, per or n_star), **draw)
    other = (1 - cls)[:, None] * K + torch.randint(0, K, (n, per or n_conf), **draw)
    own, other = own.expand(n, n_star), other.expand(n, n_conf)
    irr = 2 * K + torch.randint(0, max(data.patterns - 2 * K, 1), (n, N - n_star - n_conf),
                                **draw)
    index = torch.cat([own, other, irr], 1)
    # random token positions (float32 draws, whatever torch's default dtype)
    order = torch.argsort(torch.rand(n, N, **draw, dtype=torch.float32), dim=1)
    index = torch.gather(index, 1, order)
    X = mu.to(torch.float64)[index]
    if data.tau > 0:
        if data.noise == "gaussian":
            X = X + torch.randn(n, N, d, **draw, dtype=torch.float64) * (data.tau / math.sqrt(d))
        else:
            direction = torch.randn(n, N, d, **draw, dtype=torch.float64)
            direction = direction / direction.norm(dim=-1, keepdim=True)
            radius = data.tau * torch.rand(n, N, 1, **draw, dtype=torch.float64) ** (1 / d)
            X = X + direction * radius
    y = majority_vote(index, K)
    return X.to(mu.dtype), y, index
