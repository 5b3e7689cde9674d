"""SNNK layers and the fully bundled network against dense layers and backpropagation.

    python benchmarks/bench_snnk.py [--device cpu|cuda]

- ``forward``: a dense layer cos(W x + b) (1024 x 512) against its SNNK layer (m = 64 and
  256) on 4096 unit-norm inputs: seconds per forward (median of 20 after a warm-up), trainable
  parameters, and the SNNK layer's relative error against the dense layer (rows of W at unit
  norm, as ``normalize: unit``);
- ``bundled``: scikit-learn's digits (1797 8x8 images, standardized; 1347 to train, 450 to
  test; one-hot targets, squared loss): the fully bundled network (one cos SNNK layer,
  m = 512) fitted in closed form (``BundledSNNK.fit``, ridge 1e-4) against the same
  network's M and c trained by Adam on the same objective (its tower computed once), and
  against the dense MLP it bundles (hidden width 256, cos, trained by Adam): test accuracy
  and squared error, trainable parameters and seconds to fit.

Writes ``benchmarks/results/snnk[_cuda].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits

from rfattn.core import generator, resolve_device
from rfattn.ntk.snnk import BundledSNNK, SNNKLayer, normalize_rows

RESULTS = Path(__file__).resolve().parent / "results"
RIDGE = 1e-4
ADAM_STEPS, ADAM_LR = 2000, 1e-2


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats=20):
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward(device) -> dict:
    l, d, n = 1024, 512, 4096
    W = normalize_rows(torch.randn(l, d, generator=generator(0, "bench", "W"),
                                   dtype=torch.float64)).to(device)
    b = (0.1 * torch.randn(l, generator=generator(0, "bench", "b"),
                           dtype=torch.float64)).to(device)
    x = normalize_rows(torch.randn(n, d, generator=generator(0, "bench", "x"),
                                   dtype=torch.float64)).to(device)
    dense = torch.cos(x @ W.T + b)
    out = {"dense": {"seconds": timed(lambda: torch.cos(x @ W.T + b), device),
                     "parameters": l * d + l}}
    for m in (64, 256):
        layer = SNNKLayer(W.cpu(), b.cpu(), m, "cos", generator(0, "bench", "G", m)).to(device)
        with torch.no_grad():
            error = float((layer(x) - dense).norm() / dense.norm())
            seconds = timed(lambda: layer(x), device)
        out[f"snnk_m{m}"] = {"seconds": seconds, "parameters": layer.M.numel(),
                             "relative_error": error}
    return out


def digits(device):
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-12)
    y = torch.nn.functional.one_hot(torch.tensor(data.target), 10).to(torch.float64)
    order = torch.randperm(len(x), generator=generator(0, "bench", "split"))
    train, test = order[:1347], order[1347:]
    return [t.to(device) for t in (x[train], y[train], x[test], y[test])]


def scores(model, x, y) -> dict:
    with torch.no_grad():
        pred = model(x)
    return {"test_accuracy": float((pred.argmax(1) == y.argmax(1)).double().mean()),
            "test_mse": float(((pred - y) ** 2).sum(1).mean())}


def adam(model, params, x, y, penalty) -> float:
    opt = torch.optim.Adam(params, lr=ADAM_LR)
    start = time.perf_counter()
    for _ in range(ADAM_STEPS):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum(1).mean() + penalty()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def bundled(device) -> dict:
    xtr, ytr, xte, yte = digits(device)
    out = {}
    net = BundledSNNK(64, 10, [512], ["cos"], generator(0, "bench", "bundle")).to(device)
    start = time.perf_counter()
    net.fit(xtr, ytr, RIDGE)
    _sync(device)
    out["bundled_closed_form"] = {"seconds": time.perf_counter() - start,
                                  "parameters": net.M.numel() + net.c.numel(),
                                  **scores(net, xte, yte)}
    gd = BundledSNNK(64, 10, [512], ["cos"], generator(0, "bench", "bundle")).to(device)
    start = time.perf_counter()
    with torch.no_grad():
        phi = gd.features(xtr)  # the parameter-free tower, once

    def readout(_):
        return phi @ gd.M.T + gd.c

    seconds = time.perf_counter() - start + adam(readout, [gd.M, gd.c], xtr, ytr,
                                                 lambda: RIDGE * (gd.M ** 2).sum())
    out["bundled_adam"] = {"seconds": seconds, "steps": ADAM_STEPS,
                           "parameters": gd.M.numel() + gd.c.numel(), **scores(gd, xte, yte)}
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 256), _Cos(), torch.nn.Linear(256, 10)
                              ).to(device=device, dtype=torch.float64)
    seconds = adam(mlp, list(mlp.parameters()), xtr, ytr, lambda: 0.0)
    out["mlp_adam"] = {"seconds": seconds, "steps": ADAM_STEPS,
                       "parameters": sum(p.numel() for p in mlp.parameters()),
                       **scores(mlp, xte, yte)}
    return out


class _Cos(torch.nn.Module):
    def forward(self, x):
        return torch.cos(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    device = resolve_device(parser.parse_args().device)
    result = {"device": device.type, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(),
              "forward": forward(device), "bundled": bundled(device)}
    RESULTS.mkdir(exist_ok=True)
    name = "snnk_cuda.json" if device.type == "cuda" else "snnk.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
