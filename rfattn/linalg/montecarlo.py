"""Running Monte Carlo estimates: a weighted mean and its standard error, entrywise.

West's (1979) weighted update of the mean and of the sum of squared deviations avoids the
cancellation of E[X^2] - E[X]^2. With equal weights the standard error is the usual
sqrt(sample variance / n); it is infinite after a single sample.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class RunningMean:
    """Running weighted mean and standard error of tensor samples (Welford's update).

    ``add(x, weight)`` accumulates a sample; ``mean`` is the weighted mean and ``stderr`` its
    standard error (``inf`` below two samples). It starts empty.
    """

    def __init__(self):
        self.count, self.weight = 0, 0.0
        self.mean: Tensor | None = None
        self._sq_dev: Tensor | None = None

    def add(self, x: Tensor, weight: float = 1.0) -> None:
        self.count += 1
        self.weight += weight
        if self.mean is None:
            self.mean, self._sq_dev = x.clone(), torch.zeros_like(x)
            return
        delta = x - self.mean
        self.mean.add_(delta, alpha=weight / self.weight)
        self._sq_dev.addcmul_(delta, x - self.mean, value=weight)  # in place: n x n matrices

    @property
    def stderr(self) -> Tensor:
        if self.count < 2:
            return torch.full_like(self.mean, math.inf)
        return (self._sq_dev / self.weight / (self.count - 1)).clamp_min(0.0).sqrt()
