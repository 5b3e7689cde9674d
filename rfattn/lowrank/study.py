r"""Low-rank and pruning study jobs (Li, Wang, Zhang, Liu, Chen, arXiv 2406.17167).

:func:`run_lowrank_job` trains the one-layer transformer of :mod:`rfattn.lowrank.model` for
the job's seed and returns tidy rows (setting columns, ``seed``, ``analysis``, ``metric``,
``value``). ``kind``:

- ``train``: full training, then
  ``history`` (attention mass on the sample's own label-relevant tokens, test error and hinge
  loss every ``record_every`` steps), ``final`` errors, ``rank`` metrics and ``spectrum`` of
  :math:`\Delta W_Q, \Delta W_K, \Delta W_V, \Delta W_O`, ``truncation`` of the updates of
  ``truncate`` to rank r for r in ``r_grid``, ``pruning`` curves of W_O rows for every order and
  ranking over ``prune_rates``, and the sorted ``row_norms`` of W_O;
- ``adapter``: training of a rank-``r`` adapter (``method``) on all four matrices from the same
  :math:`W(0)`, same data and batch order as ``train``; ``final`` errors.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch

from ..core.checks import ConfigError, choice, nonnegative_int, positive_int, real, sequence
from ..core.runtime import generator, get_logger
from ..core.study import KindSettings, Study
from .analysis import (ORDERS, RANKINGS, effective_rank, normalized_spectrum, numerical_rank,
                       prune_mask, span_energy, stable_rank, truncate)
from .data import PatternData, orthonormal_patterns, sample
from .model import (ADAPTER_METHODS, MATRICES, Parameterization, attention, evaluate,
                    init_weights, train)
from .snnk_adapters import SNNKAdapters

SCALE_MAX, LR_MAX = 1e3, 1e3  # beyond these, float64 overflows or training diverges
MAX_SNNK_FEATURES = 4096  # random features per SNNK adapter
FLOPS_PER_SECOND = 1e10  # calibrated on the quick sweeps (2-core CPU, float64)
STEP_SECONDS = 2e-3  # per SGD step: the calls of a small batch
log = get_logger(__name__)
DATA_KEYS = ("d", "patterns", "N", "K", "alpha_star", "alpha_conf", "tau", "noise", "mix")


@dataclass(frozen=True)
class LowrankSettings(KindSettings):
    """Settings every low-rank job shares: data model, network and SGD.

    Vocabulary (Li et al. 2024): n training samples (the paper's N), N tokens per sample (the
    paper's L), ``patterns`` orthonormal patterns (the paper's M), K label-relevant patterns
    per class, m hidden neurons (rows of W_O).
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
    n: int
    n_test: int
    m: int
    m_a: int | None
    m_b: int | None
    qkv_std: float
    o_std: float
    lr: float
    batch_size: int
    epochs: int

    def __post_init__(self):
        super().__post_init__()
        self.data  # noqa: B018 (builds and so validates the data model)
        for key in ("n", "n_test", "m", "epochs", "batch_size"):
            positive_int(key, getattr(self, key))
        for key in ("m_a", "m_b"):
            if getattr(self, key) is not None:
                positive_int(key, getattr(self, key))
        if self.m % 2:
            raise ConfigError(f"m must be even so that a has two equal sign groups "
                              f"(got {self.m})")
        real("qkv_std", self.qkv_std, low=0.0, high=SCALE_MAX, low_open=True)
        real("o_std", self.o_std, low=0.0, high=SCALE_MAX, low_open=True)
        real("lr", self.lr, low=0.0, high=LR_MAX, low_open=True)

    @property
    def data(self) -> PatternData:
        return PatternData(**{k: getattr(self, k) for k in DATA_KEYS})

    memory_hint: ClassVar[str] = "lower m, m_a, m_b, d, N, n, n_test or batch_size"
    record_interval = property(lambda self: 0)  # steps between recorded histories (0: none)
    evaluations = property(lambda self: 2)  # passes over the train and test sets after training

    @property
    def job_label(self) -> str:
        return f"kind {self.kind} with m={self.m}"

    def estimate_memory(self) -> int:
        """Peak bytes: W(0), the trained matrices, their gradients and a working copy; the
        train and test tokens; the activations of one batch and of one evaluation chunk
        (512)."""
        item = torch.finfo(self.torch_dtype).bits // 8
        m_a, m_b = self.m_a or self.d, self.m_b or self.d
        params = 2 * m_b * self.d + m_a * self.d + self.m * m_a
        tokens = (self.n + self.n_test) * self.N * self.d
        batch = max(self.batch_size, 512) * self.N * (self.N + m_a + self.m + 2 * m_b)
        return (4 * params + 2 * tokens + 8 * batch) * item

    def estimate_seconds(self) -> float:
        """Rough run time on a 2-core CPU: forward and backward passes of every epoch and the
        evaluations on the test set (the train kind also evaluates every truncation and
        pruning)."""
        m_a, m_b, N, d = self.m_a or self.d, self.m_b or self.d, self.N, self.d
        per_sample = N * (N * m_b + 2 * d * m_b + d * m_a + N * m_a + self.m * m_a) * 2
        work = (3 * self.epochs * self.n * per_sample
                + self.evaluations * (self.n + self.n_test) * per_sample)
        steps = self.epochs * -(-self.n // self.batch_size)
        return 0.3 + steps * STEP_SECONDS + work / FLOPS_PER_SECOND


@dataclass(frozen=True)
class TrainSettings(LowrankSettings):
    """Kind ``train``: full training, then spectra, truncation, pruning and history."""

    record_every: int
    probe: int
    rank_tol: float
    spectrum_len: int
    truncate: tuple[str, ...]
    r_grid: tuple[int, ...]
    prune_rates: tuple[float, ...]

    def __post_init__(self):
        super().__post_init__()
        positive_int("record_every", self.record_every)
        positive_int("probe", self.probe)
        real("rank_tol", self.rank_tol, low=0.0, high=1.0, low_open=True)
        positive_int("spectrum_len", self.spectrum_len)
        sequence("truncate", self.truncate, lambda k, v: choice(k, v, MATRICES))
        shapes = {"q": (self.m_b or self.d, self.d), "k": (self.m_b or self.d, self.d),
                  "v": (self.m_a or self.d, self.d), "o": (self.m, self.m_a or self.d)}
        full = min(min(shapes[name]) for name in self.truncate)

        def rank(key, r):
            if nonnegative_int(key, r) > full:
                raise ConfigError(f"{key} must lie in [0, {full}], the full rank of the "
                                  f"truncated updates {list(self.truncate)} (got {r})")
            return r

        sequence("r_grid", self.r_grid, rank)
        sequence("prune_rates", self.prune_rates, lambda k, v: real(k, v, low=0.0, high=1.0))

    record_interval = property(lambda self: self.record_every)
    evaluations = property(lambda self: 3 + len(self.r_grid) + 6 * len(self.prune_rates))


@dataclass(frozen=True)
class AdapterSettings(LowrankSettings):
    """Kind ``adapter``: a rank-``r`` adapter (``method``) on all four matrices from W(0), or
    (``snnk``) two SNNK adapters of ``r`` random features in the activations."""

    method: str
    r: int
    adapter_lr: dict
    lora_alpha: float | None
    sorsa_gamma: float

    def __post_init__(self):
        super().__post_init__()
        choice("method", self.method, ADAPTER_METHODS)
        if not isinstance(self.adapter_lr, Mapping):
            raise ConfigError(f"adapter_lr must map each method to its learning rate "
                              f"(got {self.adapter_lr!r})")
        if self.method != "full":
            positive_int("r", self.r)
            if self.method == "snnk" and self.r > MAX_SNNK_FEATURES:
                raise ConfigError(f"r must lie in [1, {MAX_SNNK_FEATURES}] for method snnk "
                                  f"(random features per adapter; got {self.r})")
            real(f"adapter_lr.{self.method}", self.adapter_lr.get(self.method), low=0.0,
                 high=LR_MAX, low_open=True)
        if self.lora_alpha is not None:
            real("lora_alpha", self.lora_alpha, low=0.0, high=SCALE_MAX, low_open=True)
        real("sorsa_gamma", self.sorsa_gamma, low=0.0, high=SCALE_MAX)


SETTINGS = {"train": TrainSettings, "adapter": AdapterSettings}


class Setup:
    """Data, W(0) and head of the job's seed, on its device (CPU streams, any device).

    Tensors carry the model's seed axis S = 1 (:mod:`rfattn.lowrank.model`).
    """

    def __init__(self, s: LowrankSettings):
        self.settings, self.data = s, s.data
        self.seeds = [s.seed]
        self.device, self.dtype = s.torch_device, s.torch_dtype
        d = self.data.d
        mu = orthonormal_patterns(d, self.data.patterns, generator(s.seed, "lowrank", "patterns"))
        self.mu = mu[None]
        train_set = sample(self.data, s.n, mu, generator(s.seed, "lowrank", "train"))
        test_set = sample(self.data, s.n_test, mu, generator(s.seed, "lowrank", "test"))
        put = lambda t: t[None].to(self.device)  # noqa: E731
        self.X, self.y, _ = (put(t) for t in train_set)
        self.X_test, self.y_test, self.index_test = (put(t) for t in test_set)
        self.X, self.X_test = self.X.to(self.dtype), self.X_test.to(self.dtype)
        m_a, m_b = s.m_a or d, s.m_b or d
        W0, a = init_weights(d, m_a, m_b, s.m, [generator(s.seed, "lowrank", "init")],
                             s.qkv_std, s.o_std)
        self.W0 = {k: w.to(self.device, self.dtype) for k, w in W0.items()}
        self.a = a.to(self.device, self.dtype)
        self.relevant = self.mu[:, self.data.relevant].to(self.device, self.dtype)

    def train(self, params: Parameterization, lr: float, record=None) -> int:
        s = self.settings
        return train(params.to(self.device), self.a, self.X, self.y, lr, s.batch_size,
                     s.epochs, [generator(s.seed, "lowrank", "batches")], record,
                     s.record_interval)

    def own_label_mask(self, n: int) -> torch.Tensor:
        """(S, n, N) True where a test token carries a relevant pattern of its sample's class."""
        K = self.data.K
        index, y = self.index_test[:, :n], self.y_test[:, :n, None]
        cls = torch.where(y > 0, 0, 1)
        return (index >= cls * K) & (index < (cls + 1) * K)


def _rows_per_seed(seeds, values: torch.Tensor, **setting) -> list[dict]:
    return [{"seed": s, **setting, "value": float(v)} for s, v in zip(seeds, values.tolist())]


def _error_rows(setup: Setup, W: dict, X: torch.Tensor, y: torch.Tensor, split: str = "test",
                **setting) -> list[dict]:
    """0-1 error and hinge loss of ``W`` on (X, y), one row per seed and metric."""
    err, loss = evaluate(W, setup.a, X, y)
    return (_rows_per_seed(setup.seeds, err, **setting, metric=f"{split}_error")
            + _rows_per_seed(setup.seeds, loss, **setting, metric=f"{split}_hinge"))


def _final_rows(setup: Setup, W: dict) -> list[dict]:
    return (_error_rows(setup, W, setup.X_test, setup.y_test, "test", analysis="final")
            + _error_rows(setup, W, setup.X, setup.y, "train", analysis="final"))


def _train_job(s: TrainSettings, setup: Setup) -> list[dict]:
    seeds, rows = setup.seeds, []
    params = Parameterization(setup.W0, "full")
    probe = min(s.probe, s.n_test)
    mask = setup.own_label_mask(probe).to(setup.dtype)

    def record(step):
        W = params.matrices()
        with torch.no_grad():
            attn = attention(W, setup.X_test[:, :probe])
            mass = (attn * mask[:, :, None, :]).sum(-1).mean((1, 2))
        rows.extend(_rows_per_seed(seeds, mass, analysis="history", step=step,
                                   metric="attention_mass"))
        rows.extend(_error_rows(setup, W, setup.X_test[:, :probe], setup.y_test[:, :probe],
                                analysis="history", step=step))

    steps = setup.train(params, s.lr, record)
    with torch.no_grad():
        W = {k: w.detach() for k, w in params.matrices().items()}
        dW = {k: W[k] - setup.W0[k] for k in MATRICES}
        rows += _final_rows(setup, W)
        rows += _rows_per_seed(seeds, torch.full((len(seeds),), float(steps)),
                               analysis="final", metric="steps")
        for name in MATRICES:
            basis = setup.relevant if name != "o" else None
            d = dW[name]
            metrics = {"numerical_rank": numerical_rank(d, s.rank_tol),
                       "stable_rank": stable_rank(d), "effective_rank": effective_rank(d),
                       "relative_change": d.norm(dim=(-1, -2)) / setup.W0[name].norm(
                           dim=(-1, -2))}
            if basis is not None:
                metrics["relevant_energy"] = torch.stack(
                    [span_energy(d[i:i + 1], basis[i])[0] for i in range(len(seeds))])
            for metric, v in metrics.items():
                rows += _rows_per_seed(seeds, v.to(torch.float64), analysis="rank",
                                       matrix=name, metric=metric)
            spectrum = normalized_spectrum(d)[:, :s.spectrum_len]
            for i in range(spectrum.shape[1]):
                rows += _rows_per_seed(seeds, spectrum[:, i], analysis="spectrum", matrix=name,
                                       index=i + 1, metric="singular_value")
        for r in s.r_grid:
            Wr = dict(W)
            for name in s.truncate:
                Wr[name] = setup.W0[name] + truncate(dW[name], r)
            rows += _error_rows(setup, Wr, setup.X_test, setup.y_test, analysis="truncation", r=r)
        norms = W["o"].norm(dim=-1)
        for order in ORDERS:
            for ranking in RANKINGS:
                for rate in s.prune_rates:
                    gens = [generator(seed, "lowrank", "prune", ranking, str(rate))
                            for seed in seeds]
                    keep = prune_mask(norms, setup.a, rate, order, ranking, gens)
                    Wp = dict(W, o=W["o"] * keep[..., None].to(W["o"].dtype))
                    rows += _error_rows(setup, Wp, setup.X_test, setup.y_test,
                                        analysis="pruning", order=order, ranking=ranking,
                                        rate=rate)
        sorted_norms = norms.sort(dim=-1, descending=True).values
        sorted_norms = sorted_norms / sorted_norms[:, :1]
        for i in range(sorted_norms.shape[1]):
            rows += _rows_per_seed(seeds, sorted_norms[:, i], analysis="row_norms", index=i + 1,
                                   metric="row_norm")
    return rows


def _adapter_job(s: AdapterSettings, setup: Setup) -> list[dict]:
    method = s.method
    r = 0 if method == "full" else s.r
    if method == "snnk":
        params = SNNKAdapters(setup.W0, r, [generator(s.seed, "lowrank", "snnk", r)])
    else:
        params = Parameterization(setup.W0, method, r,
                                  generators=[generator(s.seed, "lowrank", "lora", r)],
                                  lora_alpha=s.lora_alpha, sorsa_gamma=s.sorsa_gamma)
    setup.train(params, s.lr if method == "full" else s.adapter_lr[method])
    trainable = sum(p.numel() for p in params.parameters()) // len(setup.seeds)
    with torch.no_grad():
        rows = _final_rows(setup, params.matrices())
    rows += _rows_per_seed(setup.seeds, torch.full((len(setup.seeds),), float(trainable)),
                           analysis="final", metric="parameters")
    return [{**row, "method": method, "r": r} for row in rows]


def lowrank_rows(s: LowrankSettings) -> pd.DataFrame:
    """The rows of one validated low-rank job (:func:`run_lowrank_job`)."""
    log.info("lowrank %s: d=%d, N=%d, K=%d, n=%d, m=%d, %d epochs, seed %d, %s", s.kind, s.d,
             s.N, s.K, s.n, s.m, s.epochs, s.seed, s.torch_device)
    start = time.perf_counter()
    setup = Setup(s)
    rows = _train_job(s, setup) if s.kind == "train" else _adapter_job(s, setup)
    final = [r["value"] for r in rows if r.get("analysis") == "final"
             and r["metric"] == "test_error"]
    log.info("lowrank %s done in %.1fs: test error %.4g", s.kind, time.perf_counter() - start,
             final[0] if final else float("nan"))
    setting = {"kind": s.kind, "d": s.d, "N": s.N, "K": s.K, "alpha_star": s.alpha_star,
               "alpha_conf": s.alpha_conf, "tau": s.tau, "noise": s.noise, "mix": s.mix,
               "lr": s.lr, "epochs": s.epochs, "n": s.n}
    return pd.DataFrame([{**setting, **row} for row in rows])


STUDY = Study("lowrank", SETTINGS, lowrank_rows)


def run_lowrank_job(cfg: dict) -> pd.DataFrame:
    """One low-rank job (module docstring).

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/lowrank.yaml`` and its ``kind``.

    Returns
    -------
    DataFrame
        Tidy rows: the setting columns (kind, d, N, K, alpha_star, alpha_conf, tau, noise, mix,
        lr, epochs, n), ``seed``, the kind's own columns (analysis, matrix, step, r, order,
        ranking, rate, index, method), ``metric`` and ``value``.
    """
    return STUDY.run(cfg)
