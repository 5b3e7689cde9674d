r"""SNNK study jobs (Sehanobish et al. 2024, "Scalable Neural Network Kernels", ICLR).

- ``snnk_layer``: an SNNK layer's estimate :math:`M\phi(x)` of :math:`f(w_k^\top x + b_k)`
  against the exact layer, for every feature kind, input/weight norm and m of ``m_grid``:
  mean squared error, relative mean squared error and mean signed error over the (x, w)
  pairs. Inputs and weight rows are random directions scaled to each norm of ``norms``
  (``normalize: none``); the towers are called directly, so norms beyond the layer's variance
  guard (:data:`~rfattn.ntk.snnk.MAX_RELATIVE_VARIANCE`) can be measured too.
- ``snnk_bundled``: on one of scikit-learn's bundled datasets (diabetes regression; digits
  classification with the squared loss on one-hot targets), four models fitted on the same
  split:

  - ``mlp``: the MLP :math:`W_2 f(W_1 x + b_1) + b_2` (hidden width ``hidden``) trained by
    Adam;
  - ``snnk_mlp``: the same MLP with its hidden layer replaced by an SNNK layer
    (``m_layer`` features, ``normalize: unit``), trained by Adam;
  - ``bundled_gd``: the fully bundled network :math:`M\bar\phi(x) + c` (``m_bundle`` features
    per layer), M and c trained by Adam on the ridge objective;
  - ``bundled_closed_form``: the same network fitted in closed form
    (:meth:`~rfattn.ntk.snnk.BundledSNNK.fit`), no backpropagation.

  The ridge of the bundled networks is chosen on the validation split from ``ridges``; Adam
  runs ``steps`` full-batch steps and keeps the parameters of the best validation error
  (checked every ``eval_every`` steps). Rows (column ``size``: the hidden width, or m of a
  bundled network): test MSE (summed over outputs), test accuracy (digits), trainable
  parameters, the Adam step kept (``best_step``), seconds to fit (the closed form: the path's
  time over its number of ridges, one fit as one Adam run is), and the training objective
  and chosen ridge of the bundled networks. Adam trains the bundled network at the largest m only.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..core.checks import choice, nonnegative, positive_int, positive_ints, real, sequence
from ..core.runtime import generator
from .settings import FLOPS_PER_SECOND, NTKSettings
from .snnk import SNNK_FEATURES, BundledSNNK, SNNKLayer, exact_layer
from .snnk_features import draw_tower, gerf_mu, input_features, weight_features

DATASETS = {"diabetes": (442, 10, 1), "digits": (1797, 64, 10)}  # scikit-learn's bundled
# sets: samples, input and output widths (one-hot digits)
ACTIVATIONS = ("cos", "sin", "relu")  # MLP activations with an SNNK layer
MODELS = ("mlp", "snnk_mlp", "bundled_gd", "bundled_closed_form")
SPLIT = (0.6, 0.2)  # train and validation shares; the rest is the test split
MAX_NORM = 3.0  # beyond this, exp features overflow the float64 MSE (e^{|x+w|^2} ~ e^36)
BIAS_STD = 0.3  # biases of the snnk_layer pairs [ours]


@dataclass(frozen=True)
class SNNKLayerSettings(NTKSettings):
    """Kind ``snnk_layer``: SNNK layer error against m, per feature kind and norm."""

    memory_hint: ClassVar[str] = "lower n, d or m_grid"

    features: tuple[str, ...]
    norms: tuple[float, ...]
    n: int
    d: int
    m_grid: tuple[int, ...]

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "features", tuple(sequence(
            "features", self.features, lambda name, v: choice(name, v, SNNK_FEATURES))))
        object.__setattr__(self, "norms", tuple(sequence(
            "norms", self.norms, lambda name, v: real(name, v, low=0.0, high=MAX_NORM,
                                                      low_open=True))))
        positive_int("n", self.n)
        positive_int("d", self.d)
        object.__setattr__(self, "m_grid", tuple(positive_ints("m_grid", self.m_grid)))

    def estimate_memory(self) -> int:
        """Peak bytes: both towers' complex features, the pairs and the (n, n) estimates."""
        return (8 * self.n * max(self.m_grid) + 4 * self.n * self.n + 4 * self.n * self.d) * 16

    def estimate_seconds(self) -> float:
        work = sum(2 * self.n * m * (self.d + self.n) for m in self.m_grid)
        return 0.3 + len(self.features) * len(self.norms) * work / FLOPS_PER_SECOND

    @property
    def columns(self) -> dict:
        return {"n": self.n, "d": self.d}


@dataclass(frozen=True)
class SNNKBundledSettings(NTKSettings):
    """Kind ``snnk_bundled``: the bundled network in closed form against gradient descent."""

    memory_hint: ClassVar[str] = "lower hidden, m_layer or m_bundle"

    dataset: str
    activation: str
    hidden: tuple[int, ...]
    m_layer: int
    m_bundle: tuple[int, ...]
    bundle_layers: int
    ridges: tuple[float, ...]
    lr: float
    steps: int
    eval_every: int

    def __post_init__(self):
        super().__post_init__()
        choice("dataset", self.dataset, tuple(DATASETS))
        choice("activation", self.activation, ACTIVATIONS)
        object.__setattr__(self, "hidden", tuple(positive_ints("hidden", self.hidden)))
        positive_int("m_layer", self.m_layer)
        object.__setattr__(self, "m_bundle", tuple(positive_ints("m_bundle", self.m_bundle)))
        positive_int("bundle_layers", self.bundle_layers)
        object.__setattr__(self, "ridges", tuple(sequence("ridges", self.ridges, nonnegative)))
        real("lr", self.lr, low=0.0, high=1.0, low_open=True)
        positive_int("steps", self.steps)
        positive_int("eval_every", self.eval_every)

    @property
    def widths(self) -> tuple[int, int]:
        """Input and output widths of the dataset."""
        return DATASETS[self.dataset][1:]

    def real_features(self, m: int) -> int:
        """Real features of m random features: 2m for cos and sin (real and imaginary)."""
        return m * (1 if self.activation == "relu" else 2)

    def feature_width(self) -> int:
        """Real features of the largest bundled network's last layer."""
        return self.real_features(self.m_bundle[-1])

    def estimate_memory(self) -> int:
        """Peak bytes: the features and activations of every split, the normal equations of
        the largest bundled network and the SNNK layer's weights."""
        n, (d, _) = DATASETS[self.dataset][0], self.widths
        p, hidden = self.feature_width(), max(self.hidden)
        layer = self.real_features(self.m_layer)
        return (4 * n * (p + hidden + layer + d) + 3 * p * p + 8 * hidden * (layer + d)) * 8

    def estimate_seconds(self) -> float:
        """Adam runs (6 flops per weight and example per step) and the ridge solves."""
        n = DATASETS[self.dataset][0] * SPLIT[0]
        (d, k), p = self.widths, self.feature_width()
        layer = self.real_features(self.m_layer)
        weights = sum(h * (2 * d + 2 * k + layer) for h in self.hidden) + p * k
        solves = len(self.ridges) * sum(n * q * q + q ** 3 for q in map(self.real_features,
                                                                         self.m_bundle))
        runs = 2 * len(self.hidden) + 1
        return 0.5 + self.steps * (6 * n * weights / FLOPS_PER_SECOND + runs * 3e-4) \
            + solves / FLOPS_PER_SECOND

    @property
    def columns(self) -> dict:
        return {"dataset": self.dataset, "activation": self.activation}


def _pairs(s: SNNKLayerSettings, norm: float):
    """Inputs x (n, d), weight rows W (n, d) at norm ``norm`` and biases b (n,), the same for
    every seed."""
    gen = generator(0, "snnk-points")
    x = torch.randn(s.n, s.d, generator=gen, dtype=torch.float64)
    W = torch.randn(s.n, s.d, generator=gen, dtype=torch.float64)
    b = BIAS_STD * torch.randn(s.n, generator=gen, dtype=torch.float64)
    unit = lambda t: t / t.norm(dim=1, keepdim=True)  # noqa: E731
    return norm * unit(x), norm * unit(W), b


def snnk_layer_rows(s: SNNKLayerSettings) -> list[dict]:
    """Rows of kind ``snnk_layer`` (module docstring)."""
    rows = []
    for norm in s.norms:
        x, W, b = _pairs(s, norm)
        for kind in s.features:
            exact = exact_layer(kind, x, W, b)
            mu = gerf_mu(s.d, 2 * norm * norm) if kind == "gerf" else 0.0
            for m in s.m_grid:
                G = draw_tower(kind, m, s.d, generator(s.seed, "snnk", kind, m))
                est = input_features(kind, x, G, mu) @ weight_features(kind, W, b, G, mu).T
                err = est - exact
                mse = float((err ** 2).mean())
                common = {"feature": kind, "norm": norm, "m": m}
                rows += [{**common, "metric": "mse", "value": mse},
                         {**common, "metric": "relative_mse",
                          "value": mse / float((exact ** 2).mean())},
                         {**common, "metric": "mean_error", "value": float(err.mean())}]
    return rows


def load_dataset(name: str, seed: int) -> tuple[torch.Tensor, ...]:
    """A seeded train/validation/test split (``SPLIT``) of a bundled scikit-learn dataset,
    inputs standardized on the training split; diabetes targets standardized too, digits
    targets one-hot.

    Parameters
    ----------
    name : str
        ``diabetes`` or ``digits``.
    seed : int
        Seed of the split.

    Returns
    -------
    tuple of Tensor
        x_train, y_train, x_val, y_val, x_test, y_test (float64; targets (n, k)).
    """
    from sklearn.datasets import load_diabetes, load_digits

    choice("dataset", name, tuple(DATASETS))
    data = load_diabetes() if name == "diabetes" else load_digits()
    x = torch.tensor(data.data, dtype=torch.float64)
    target = torch.tensor(data.target)
    y = (target[:, None].to(torch.float64) if name == "diabetes"
         else nn.functional.one_hot(target, 10).to(torch.float64))
    order = torch.randperm(len(x), generator=generator(seed, "snnk", "split", name))
    n_train, n_val = (round(share * len(x)) for share in SPLIT)
    train, val, test = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    x = (x - x[train].mean(0)) / x[train].std(0).clamp_min(1e-12)
    if name == "diabetes":
        y = (y - y[train].mean(0)) / y[train].std(0)
    return tuple(t[i] for i in (train, val, test) for t in (x, y))


def squared_error(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over samples of the squared error summed over outputs."""
    return float(((pred - y) ** 2).sum(1).mean())


def adam_early_stopped(model: nn.Module, forward, x, y, x_val, y_val, lr: float, steps: int,
                       eval_every: int, penalty=lambda: 0.0) -> tuple[int, float]:
    """Full-batch Adam on the squared error (+ ``penalty()``); the model ends at the
    parameters of the best validation error (checked every ``eval_every`` steps).

    Returns
    -------
    (int, float)
        The best step and the seconds spent.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_step, best_state = math.inf, 0, copy.deepcopy(model.state_dict())
    start = time.perf_counter()
    for step in range(1, steps + 1):
        opt.zero_grad()
        loss = ((forward(x) - y) ** 2).sum(1).mean() + penalty()
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                val = squared_error(forward(x_val), y_val)
            if val < best:
                best, best_step, best_state = val, step, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return best_step, time.perf_counter() - start


class _Activation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.fn = {"cos": torch.cos, "sin": torch.sin, "relu": torch.relu}[name]

    def forward(self, x):
        return self.fn(x)


def _linear(fan_in: int, fan_out: int, gen: torch.Generator) -> nn.Linear:
    """A float64 linear layer with N(0, 1/fan_in) weights and zero bias."""
    layer = nn.Linear(fan_in, fan_out, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64)
                           / math.sqrt(fan_in))
        layer.bias.zero_()
    return layer


def _score(name: str, size: int, model, x, y, seconds: float,
           best_step: int | None = None) -> list[dict]:
    with torch.no_grad():
        pred = model(x)
    params = sum(p.numel() for p in model.parameters())
    common = {"model": name, "size": size}
    rows = [{**common, "metric": "test_mse", "value": squared_error(pred, y)},
            {**common, "metric": "parameters", "value": float(params)},
            {**common, "metric": "fit_seconds", "value": seconds}]
    if best_step is not None:
        rows.append({**common, "metric": "best_step", "value": float(best_step)})
    if y.shape[1] > 1:
        rows.append({**common, "metric": "test_accuracy",
                     "value": float((pred.argmax(1) == y.argmax(1)).double().mean())})
    return rows


def _networks(s: SNNKBundledSettings, train: dict, test: tuple) -> list[dict]:
    """The MLP and the MLP with an SNNK layer at each hidden width, trained by Adam."""
    d, k = s.widths
    place = dict(device=s.torch_device, dtype=s.torch_dtype)
    rows = []
    for hidden in s.hidden:
        gen = generator(s.seed, "snnk", "mlp", hidden)
        first, readout = _linear(d, hidden, gen), _linear(hidden, k, gen)
        mlp = nn.Sequential(copy.deepcopy(first), _Activation(s.activation),
                            copy.deepcopy(readout)).to(**place)
        best, seconds = adam_early_stopped(mlp, mlp, **train)
        rows += _score("mlp", hidden, mlp, *test, seconds, best)
        layer = SNNKLayer(first.weight.detach(), first.bias.detach(), s.m_layer, s.activation,
                          generator(s.seed, "snnk", "layer", hidden), normalize="unit")
        snnk_mlp = nn.Sequential(layer, readout).to(**place)
        best, seconds = adam_early_stopped(snnk_mlp, snnk_mlp, **train)
        rows += _score("snnk_mlp", hidden, snnk_mlp, *test, seconds, best)
    return rows


def snnk_bundled_rows(s: SNNKBundledSettings) -> list[dict]:
    """Rows of kind ``snnk_bundled`` (module docstring)."""
    xtr, ytr, xva, yva, xte, yte = (t.to(s.torch_device, s.torch_dtype)
                                    for t in load_dataset(s.dataset, s.seed))
    d, k = s.widths
    train = dict(x=xtr, y=ytr, x_val=xva, y_val=yva, lr=s.lr, steps=s.steps,
                 eval_every=s.eval_every)
    rows = _networks(s, train, (xte, yte))

    def bundled(m):
        return BundledSNNK(d, k, [m] * s.bundle_layers, [s.activation] * s.bundle_layers,
                           generator(s.seed, "snnk", "bundle", m),
                           dtype=s.torch_dtype).to(s.torch_device)

    for m in s.m_bundle:
        start = time.perf_counter()
        fits = [bundled(m).fit(xtr, ytr, lam) for lam in s.ridges]
        with torch.no_grad():
            val = [squared_error(net(xva), yva) for net in fits]
        chosen = min(range(len(fits)), key=val.__getitem__)
        closed, lam = fits[chosen], s.ridges[chosen]
        seconds = (time.perf_counter() - start) / len(s.ridges)  # per fit, as one Adam run
        rows += _score("bundled_closed_form", m, closed, xte, yte, seconds)
        rows += _objective_rows("bundled_closed_form", m, closed, xtr, ytr, lam)
    gd = bundled(m)  # the largest
    start = time.perf_counter()
    with torch.no_grad():
        phi_tr, phi_va = gd.features(xtr), gd.features(xva)  # the parameter-free tower, once
    tower = {id(xtr): phi_tr, id(xva): phi_va}
    best, _ = adam_early_stopped(gd, lambda x: tower[id(x)] @ gd.M.T + gd.c, **train,
                                 penalty=lambda: lam * (gd.M ** 2).sum())
    rows += _score("bundled_gd", m, gd, xte, yte, time.perf_counter() - start, best)
    return rows + _objective_rows("bundled_gd", m, gd, xtr, ytr, lam)


def _objective_rows(name: str, size: int, net: BundledSNNK, x, y, lam: float) -> list[dict]:
    """The ridge objective on the training split, and the ridge."""
    with torch.no_grad():
        objective = squared_error(net(x), y) + lam * float((net.M ** 2).sum())
    common = {"model": name, "size": size}
    return [{**common, "metric": "train_objective", "value": objective},
            {**common, "metric": "ridge", "value": lam}]


SETTINGS = {"snnk_layer": SNNKLayerSettings, "snnk_bundled": SNNKBundledSettings}
JOBS = {"snnk_layer": snnk_layer_rows, "snnk_bundled": snnk_bundled_rows}
