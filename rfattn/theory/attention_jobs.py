r"""Kind ``attention_kernel``: the infinite-head kernel of one RFA model against finite heads.

For an attention model (``conf/model/``: zero-mean or biased ReLU, zero-mean softmax) on
``n_sample`` token samples, a job measures [ours]:

- **the reference kernel** :math:`K_\infty`: for ReLU heads :func:`rfattn.rfa.rfa_relu_kernel`
  (closed form for zero-mean heads, a 6-node quadrature exact to 3e-9 for biased heads); for
  softmax heads, zero-mean or biased, the Mehler-Hermite expansion of total degree ``degree``
  on ``nodes`` Gauss-Hermite points per coordinate
  (:func:`rfattn.rfa.hermite_kernel.hermite_softmax_kernel`, with its truncation bound);
- **a plain Monte Carlo check** of it with ``check_heads`` fresh heads per group of 16 samples:
  one independent z-score per group (:func:`check_scores`), standard normal when the reference
  is right;
- **finite heads**: :math:`\|\Phi_M\Phi_M^\top - K_\infty\|_F^2/\|K_\infty\|_F^2` for M in
  ``heads_grid`` over ``draws`` head draws. The M heads' kernel is an average of M i.i.d.
  one-head kernels, so its expected squared error is exactly :math:`c/M` (slope -1 in log-log);
- for softmax, **the estimators**: the relative standard error of plain Monte Carlo and (for
  zero-mean heads) of the control-variate estimate, with ``check_heads`` heads each, the actual
  relative error of the expansion against one of degree + 4 on nodes + 4 points, and the
  seconds of each;
- **the trained query-key terms**: the model as a torch module
  (:class:`~rfattn.ntk.ValueOnlyAttention`) with its query-key matrices trainable and values
  N(0, 1), for M in :data:`QUERY_KEY_HEADS`: the empirical NTK's value part, which equals
  :math:`\Phi\Phi^\top` (``value_ntk_error``), and the query-key part's Frobenius norm relative
  to it (``query_key_share``). At zero values (the lens's models) the query-key part vanishes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..core.checks import ConfigError, positive_int, positive_ints
from ..core.runtime import generator
from ..ntk import EmpiricalNTK, ValueOnlyAttention
from ..rfa import RandomFeatureAttention, monte_carlo_attention_kernel, rfa_relu_kernel
from ..rfa.settings import bias_c
from ..rfa.hermite_kernel import (MAX_GRID_POINTS, check_hermite_grid, grid_fits,
                                  hermite_softmax_kernel)
from ..rfa.softmax_kernel import relative_error, softmax_attention_kernel
from .settings import TheoryTokenSettings

QUERY_KEY_HEADS = (256, 1024)  # heads of the query-key measurement
QUERY_KEY_SAMPLES = 128  # samples of it (the first of the job's)
HEADS_PER_DRAW = 64  # heads per Monte Carlo draw: check_heads / 64 draws give the errors
CHECK_GROUP = 16  # samples per independent group of the Monte Carlo check


@dataclass(frozen=True)
class AttentionKernelSettings(TheoryTokenSettings):
    """Kind ``attention_kernel`` (module docstring)."""

    n_sample: int
    heads_grid: tuple[int, ...]
    draws: int
    check_heads: int
    degree: int
    nodes: int

    def __post_init__(self):
        super().__post_init__()
        positive_int("n_sample", self.n_sample)
        object.__setattr__(self, "heads_grid", tuple(positive_ints("heads_grid",
                                                                   self.heads_grid)))
        if len(self.heads_grid) < 2:
            raise ConfigError("heads_grid needs at least two numbers of heads for a rate "
                              f"(got {list(self.heads_grid)})")
        positive_int("draws", self.draws)
        if positive_int("check_heads", self.check_heads) < 8 * HEADS_PER_DRAW:
            raise ConfigError(f"check_heads must be >= {8 * HEADS_PER_DRAW}: its error needs at "
                              f"least 8 draws of {HEADS_PER_DRAW} heads (got {self.check_heads})")
        model = self.model
        if model.family != "attention" or model.activation not in ("relu", "softmax"):
            raise ConfigError(f"model {model.name!r} has no infinite-head kernel here: kind "
                              "attention_kernel takes ReLU or softmax attention (model=rfa, "
                              "rfa_biased or rfa_softmax)")
        if model.activation == "softmax":
            check_hermite_grid(self.d, self.degree, self.nodes)
            if not grid_fits(self.d, self.nodes + 4):
                raise ConfigError(f"(nodes + 4)**d must be <= {MAX_GRID_POINTS}: the job checks "
                                  "the expansion against one of degree + 4 on nodes + 4 points "
                                  f"(got nodes={self.nodes}, d={self.d})")

    @property
    def closed_form(self) -> bool:
        return self.model.activation == "relu"

    def heads(self, m: int, *stream) -> RandomFeatureAttention:
        """m fresh heads of the model, from ``(seed, "theory", "attention", *stream)``."""
        model = self.model
        return RandomFeatureAttention.sample(
            m, self.d, generator(self.seed, "theory", "attention", *stream), model.activation,
            model.qk_mean, model.qk_variance, bias_c(model, self.d), self.torch_dtype,
            self.torch_device)

    def estimate_memory(self) -> int:
        n = self.n_sample
        widest = max(max(self.heads_grid), HEADS_PER_DRAW) * (self.d + 1)
        return 8 * (6 * n * n + 3 * n * widest) + 256 * 2**20

    def estimate_seconds(self) -> float:
        n, q = self.n_sample, self.d + 1
        heads = self.draws * sum(self.heads_grid) + 3 * self.check_heads
        expansions = 0 if self.closed_form else 2 * n * (self.nodes + 4)**self.d / 4e6
        return 3.0 + heads * n * (n + 60) * q / 4e9 + expansions  # 2 s: the query-key terms


def check_scores(s: AttentionKernelSettings, x0, X, reference) -> list[float]:
    r"""Independent z-scores of the reference kernel against plain Monte Carlo.

    The samples are split into groups of :data:`CHECK_GROUP`; each group draws its own
    ``check_heads`` heads, in draws of :data:`HEADS_PER_DRAW`, and each draw's Gram matrix of the
    group is an unbiased estimate of the kernel there. The z-score of a group is the t-statistic
    of the mean over draws of :math:`\overline{\hat K_{draw} - K_\infty}` (mean over the
    group's block). Groups share no heads, so their scores are independent, and with the right
    reference they are standard normal (to the t distribution with draws - 1 degrees of
    freedom). Entries of one Monte Carlo matrix share their heads: their z-scores are strongly
    correlated, so a mean square over them does not test anything sharply.
    """
    scores = []
    for g in range(s.n_sample // CHECK_GROUP):
        part = slice(g * CHECK_GROUP, (g + 1) * CHECK_GROUP)
        means = []
        for draw in range(s.check_heads // HEADS_PER_DRAW):
            phi = s.heads(HEADS_PER_DRAW, "check", g, draw).features(x0[part], X[part])
            means.append(float((phi @ phi.T - reference[part, part]).mean()))
        means = torch.tensor(means, dtype=torch.float64)
        scores.append(float(means.mean() / (means.std() / len(means) ** 0.5)))
    return scores


def query_key_terms(s: AttentionKernelSettings, x0, X) -> list[dict]:
    """Rows of the trained query-key terms (module docstring)."""
    x0, X = x0[:QUERY_KEY_SAMPLES], X[:QUERY_KEY_SAMPLES]
    tokens = torch.cat([x0[:, None], X], 1)
    rows = []
    for m in QUERY_KEY_HEADS:
        heads = s.heads(m, "query-key", m)
        net = ValueOnlyAttention(heads, train_query_key=True, value_std=1.0,
                                 generator=generator(s.seed, "theory", "query-key-values", m))
        query_key = EmpiricalNTK(net, parameters=["W"])(tokens, method="jacobian")
        value = EmpiricalNTK(net, parameters=["values"])(tokens, method="jacobian")
        phi = heads.features(x0, X)
        cell = {"analysis": "query_key_terms", "M": m}
        rows += [{**cell, "metric": "query_key_share",
                  "value": float(query_key.norm() / value.norm())},
                 {**cell, "metric": "value_ntk_error",
                  "value": float((value - phi @ phi.T).norm() / value.norm())}]
    return rows


def expansion(s: AttentionKernelSettings, x0, X, degree: int, nodes: int):
    """The Mehler-Hermite kernel of the job's softmax heads and its relative bound."""
    return hermite_softmax_kernel(x0, X, variance=s.model.qk_variance, c=bias_c(s.model, s.d),
                                  degree=degree, nodes=nodes)


def monte_carlo_estimators(s: AttentionKernelSettings, x0, X) -> list[dict]:
    """Rows of plain Monte Carlo and, for zero-mean heads, of the control variate: relative
    standard error and seconds with ``check_heads`` heads each."""
    estimators = {"plain": lambda: monte_carlo_attention_kernel(
        x0, X, None, None, lambda m, draw: s.heads(m, "plain", draw), s.check_heads,
        HEADS_PER_DRAW)}
    if s.model.qk_mean == "zero":
        estimators["control_variate"] = lambda: softmax_attention_kernel(
            x0, X, variance=s.model.qk_variance, total_heads=s.check_heads, seed=s.seed + 1,
            heads_per_draw=HEADS_PER_DRAW)
    rows = []
    for estimator, run in estimators.items():
        start = time.perf_counter()
        kernel, stderr = run()
        seconds = time.perf_counter() - start
        cell = {"analysis": "estimator", "estimator": estimator, "M": s.check_heads}
        rows += [{**cell, "metric": "relative_stderr", "value": relative_error(kernel, stderr)},
                 {**cell, "metric": "seconds", "value": seconds}]
    return rows


def attention_kernel(s: AttentionKernelSettings) -> list[dict]:
    x0, X = s.sample(s.n_sample, "attention-kernel")
    model = s.model
    setting = {"model": model.name, "activation": model.activation, "qk_mean": model.qk_mean,
               "n_sample": s.n_sample, "d": s.d, "N": s.N}
    if s.closed_form:
        reference = rfa_relu_kernel(x0, X, variance=model.qk_variance, c=bias_c(model, s.d))
        rows = [{"analysis": "reference", "metric": "relative_bound", "value": 0.0}]
    else:
        start = time.perf_counter()
        reference, bound = expansion(s, x0, X, s.degree, s.nodes)
        seconds = time.perf_counter() - start
        finer, _ = expansion(s, x0, X, s.degree + 4, s.nodes + 4)
        cell = {"analysis": "estimator", "estimator": "hermite", "degree": s.degree,
                "nodes": s.nodes}
        rows = [{"analysis": "reference", "metric": "relative_bound", "value": bound},
                {**cell, "metric": "relative_error",
                 "value": float((reference - finer).norm() / finer.norm())},
                {**cell, "metric": "seconds", "value": seconds}]
    rows += [{"analysis": "check", "M": s.check_heads, "group": g, "metric": "z",
              "value": z} for g, z in enumerate(check_scores(s, x0, X, reference))]

    scale = float(reference.norm()) ** 2
    for m in s.heads_grid:
        for draw in range(s.draws):
            phi = s.heads(m, "finite", m, draw).features(x0, X)
            error = float((phi @ phi.T - reference).norm()) ** 2 / scale
            rows.append({"analysis": "finite_heads", "M": m, "draw": draw,
                         "metric": "relative_squared_error", "value": error})
    if not s.closed_form:
        rows += monte_carlo_estimators(s, x0, X)
    rows += query_key_terms(s, x0, X)
    return [{**setting, **row} for row in rows]
