r"""Low-rank and pruning study jobs (Li, Wang, Zhang, Liu, Chen, arXiv 2406.17167).

:func:`run_lowrank_job` trains the one-layer transformer of :mod:`rfattn.lowrank.model` for
every seed of ``cfg['seeds']`` at once and returns tidy rows (setting columns, ``seed``,
``analysis``, ``metric``, ``value``). ``kind``:

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

import pandas as pd
import torch

from ..core.checks import ConfigError, choice, positive, positive_int
from ..core.runtime import generator, resolve_device, resolve_dtype
from .analysis import (ORDERS, RANKINGS, effective_rank, normalized_spectrum, numerical_rank,
                       prune_mask, span_energy, stable_rank, truncate)
from .data import PatternData, orthonormal_patterns, sample
from .model import (MATRICES, METHODS, Parameterization, attention, evaluate, init_weights,
                    train)

KINDS = ("train", "adapter")
DATA_KEYS = ("d", "M", "L", "K", "alpha_star", "alpha_conf", "tau", "noise", "mix")


def seeds_of(cfg: dict) -> list[int]:
    seeds = cfg.get("seeds")
    if isinstance(seeds, int) or not seeds:
        raise ConfigError(f"seeds must be a non-empty list of integers >= 0 (got {seeds!r})")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must not repeat (got {seeds!r})")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"seeds must be integers >= 0 (got {s!r})")
    return list(seeds)


def validate(cfg: dict) -> PatternData:
    """Check every knob before any work; returns the data model."""
    choice("kind", cfg["kind"], KINDS)
    seeds_of(cfg)
    data = PatternData(**{k: cfg[k] for k in DATA_KEYS})
    for key in ("n_train", "n_test", "m", "epochs", "batch_size"):
        positive_int(key, cfg[key])
    for key in ("truncate",):
        for name in cfg[key]:
            choice(f"{key}[]", name, MATRICES)
    for r in cfg["r_grid"]:
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ConfigError(f"r_grid must hold integers >= 0 (got {r!r})")
    if cfg["kind"] == "adapter":
        choice("method", cfg["method"], METHODS)
        if cfg["method"] != "full":
            positive_int("r", cfg["r"])
            positive(f"adapter_lr.{cfg['method']}", cfg["adapter_lr"].get(cfg["method"]))
    return data


class Setup:
    """Data, W(0) and head for every seed, on the job's device (CPU streams, any device)."""

    def __init__(self, cfg: dict):
        self.data = validate(cfg)
        self.seeds = seeds_of(cfg)
        self.device, self.dtype = resolve_device(cfg["device"]), resolve_dtype(cfg["dtype"])
        d = self.data.d
        self.patterns = torch.stack([orthonormal_patterns(d, self.data.M, s) for s in self.seeds])
        train_set = [sample(self.data, cfg["n_train"], p, generator(s, "lowrank", "train"))
                     for s, p in zip(self.seeds, self.patterns)]
        test_set = [sample(self.data, cfg["n_test"], p, generator(s, "lowrank", "test"))
                    for s, p in zip(self.seeds, self.patterns)]
        put = lambda t: t.to(self.device)  # noqa: E731
        self.X, self.y, _ = (put(torch.stack(t)) for t in zip(*train_set))
        self.X_test, self.y_test, self.index_test = (put(torch.stack(t)) for t in zip(*test_set))
        self.X, self.X_test = self.X.to(self.dtype), self.X_test.to(self.dtype)
        m_a, m_b = cfg.get("m_a") or d, cfg.get("m_b") or d
        W0, a = init_weights(d, m_a, m_b, cfg["m"], [generator(s, "lowrank", "init")
                                                    for s in self.seeds],
                             cfg["qkv_std"], cfg["o_std"])
        self.W0 = {k: w.to(self.device, self.dtype) for k, w in W0.items()}
        self.a = a.to(self.device, self.dtype)
        self.relevant = self.patterns[:, self.data.relevant].to(self.device, self.dtype)

    def batch_orders(self) -> list[torch.Generator]:
        return [generator(s, "lowrank", "batches") for s in self.seeds]

    def train(self, cfg: dict, params: Parameterization, lr: float, record=None) -> int:
        return train(params.to(self.device), self.a, self.X, self.y, lr,
                     cfg["batch_size"], cfg["epochs"], self.batch_orders(), record,
                     cfg["record_every"])

    def own_label_mask(self, n: int) -> torch.Tensor:
        """(S, n, L) True where a test token carries a relevant pattern of its sample's class."""
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


def _train_job(cfg: dict, setup: Setup) -> list[dict]:
    seeds, rows = setup.seeds, []
    params = Parameterization(setup.W0, "full")
    probe = min(cfg["probe"], cfg["n_test"])
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

    steps = setup.train(cfg, params, cfg["lr"], record)
    with torch.no_grad():
        W = {k: w.detach() for k, w in params.matrices().items()}
        dW = {k: W[k] - setup.W0[k] for k in MATRICES}
        rows += _final_rows(setup, W)
        rows += _rows_per_seed(seeds, torch.full((len(seeds),), float(steps)),
                               analysis="final", metric="steps")
        for name in MATRICES:
            basis = setup.relevant if name != "o" else None
            d = dW[name]
            metrics = {"numerical_rank": numerical_rank(d, cfg["rank_tol"]),
                       "stable_rank": stable_rank(d), "effective_rank": effective_rank(d),
                       "relative_change": d.norm(dim=(-1, -2)) / setup.W0[name].norm(
                           dim=(-1, -2))}
            if basis is not None:
                metrics["relevant_energy"] = torch.stack(
                    [span_energy(d[i:i + 1], basis[i])[0] for i in range(len(seeds))])
            for metric, v in metrics.items():
                rows += _rows_per_seed(seeds, v.to(torch.float64), analysis="rank",
                                       matrix=name, metric=metric)
            spectrum = normalized_spectrum(d)[:, :cfg["spectrum_len"]]
            for i in range(spectrum.shape[1]):
                rows += _rows_per_seed(seeds, spectrum[:, i], analysis="spectrum", matrix=name,
                                       index=i + 1, metric="singular_value")
        for r in cfg["r_grid"]:
            Wr = dict(W)
            for name in cfg["truncate"]:
                Wr[name] = setup.W0[name] + truncate(dW[name], r)
            rows += _error_rows(setup, Wr, setup.X_test, setup.y_test, analysis="truncation", r=r)
        norms = W["o"].norm(dim=-1)
        for order in ORDERS:
            for ranking in RANKINGS:
                for rate in cfg["prune_rates"]:
                    gens = [generator(s, "lowrank", "prune", ranking, str(rate)) for s in seeds]
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


def _adapter_job(cfg: dict, setup: Setup) -> list[dict]:
    method = cfg["method"]
    r = 0 if method == "full" else cfg["r"]
    params = Parameterization(setup.W0, method, r,
                              gens=[generator(s, "lowrank", "lora", r) for s in setup.seeds],
                              lora_alpha=cfg.get("lora_alpha"),
                              sorsa_gamma=cfg.get("sorsa_gamma", 0.0))
    setup.train(cfg, params, cfg["lr"] if method == "full" else cfg["adapter_lr"][method])
    with torch.no_grad():
        rows = _final_rows(setup, params.matrices())
    return [{**row, "method": method, "r": r} for row in rows]


def run_lowrank_job(cfg: dict) -> pd.DataFrame:
    """One job: validated config -> tidy rows with the setting columns prepended."""
    setup = Setup(cfg)
    rows = _train_job(cfg, setup) if cfg["kind"] == "train" else _adapter_job(cfg, setup)
    setting = {"kind": cfg["kind"], "K": cfg["K"], "alpha_star": cfg["alpha_star"],
               "alpha_conf": cfg["alpha_conf"], "tau": cfg["tau"], "noise": cfg["noise"], "mix": cfg["mix"],
               "lr": cfg["lr"], "epochs": cfg["epochs"], "n_train": cfg["n_train"]}
    return pd.DataFrame([{**setting, **row} for row in rows])
