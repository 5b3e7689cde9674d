"""Empirical NTK against the plain torch.func recipe, and the analytic kernel's speed.

    python benchmarks/bench_ntk.py [--device cpu|cuda] [--large N]

- ``small``: MLPs where both fit in memory: time, peak memory and the largest relative
  difference (float64), ours (method chosen by cost, tiled) against the plain recipe of the
  torch.func tutorial (per-example Jacobians of x1 and x2, then an einsum per parameter);
- ``bounded``: a width-1024, depth-3 MLP on ``--large`` inputs with a memory budget (4 GiB) the
  plain recipe exceeds by its Jacobians alone (their size is reported; the plain recipe is
  not run there);
- ``analytic``: a 4096 x 4096 NTK of a depth-10 ReLU network.

Each measurement runs in a fresh process, after a warm-up call on 4 inputs. Writes
``benchmarks/results/ntk[_cuda].json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import time
from pathlib import Path

import torch
from torch.func import functional_call, jacrev, vmap

from rfattn.core import generator, resolve_device
from rfattn.ntk import EmpiricalNTK, FullyConnected, fc_kernels

RESULTS = Path(__file__).resolve().parent / "results"
SMALL = [  # (name, n0, width, depth, outputs, n_inputs, mode)
    ("mlp-w256-d3-o1-n256", 16, 256, 3, 1, 256, "trace"),
    ("mlp-w128-d4-o4-n128", 16, 128, 4, 4, 128, "full"),
    ("mlp-w1024-d3-o1-n64", 16, 1024, 3, 1, 64, "trace"),
]


def plain_recipe(model, x1, x2, mode):
    """The torch.func tutorial's Jacobian contraction, untiled."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    jac1 = vmap(jacrev(f), (None, 0))(params, x1)
    jac2 = vmap(jacrev(f), (None, 0))(params, x2)
    eq = {"full": "Naf,Mbf->NMab", "trace": "Naf,Maf->NM"}[mode]
    return sum(torch.einsum(eq, j1.flatten(2), j2.flatten(2))
               for j1, j2 in zip(jac1.values(), jac2.values()))


def _peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(task, args, device, queue):
    torch.set_default_dtype(torch.float64)
    dev = resolve_device(device)
    if task == "analytic":
        x = torch.randn(4096, 16, generator=generator(0, "bench"), dtype=torch.float64).to(dev)
        fc_kernels(x[:64], depth=10)  # warm-up
        start = time.perf_counter()
        K = fc_kernels(x, depth=10).ntk
        if dev.type == "cuda":
            torch.cuda.synchronize()
        queue.put({"seconds": time.perf_counter() - start, "finite": bool(torch.isfinite(K).all())})
        return
    name, n0, width, depth, outputs, n, mode, budget = args
    model = FullyConnected(n0, width, depth, outputs, generator=generator(0, "bench-net")).to(dev)
    x = torch.randn(n, n0, generator=generator(0, "bench-x"), dtype=torch.float64).to(dev)
    ntk = EmpiricalNTK(model, memory_bytes=budget)
    warm = x[:4]  # first calls pay for kernel loading and planning: not what is compared
    plain_recipe(model, warm, warm, mode) if task == "plain" else ntk(warm, mode=mode)
    base = _peak_rss()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if task == "plain":
        K = plain_recipe(model, x, x, mode)
        method = "plain"
    else:
        method = ntk.choose_method(n, n, outputs)
        K = ntk(x, mode=mode)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else _peak_rss() - base
    params = sum(p.numel() for p in model.parameters())
    kernel = K.detach().cpu().numpy() if n <= 512 else None  # numpy: plain pickling
    queue.put({"seconds": seconds, "peak_mb": peak / 2**20, "K": kernel,
               "method": method, "params": params})


def measure(task, args, device):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_child, args=(task, args, device, q))
    proc.start()
    out = q.get()
    proc.join()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--large", type=int, default=1024, help="inputs of the bounded case")
    parser.add_argument("--budget-gib", type=float, default=4.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    budget = int(args.budget_gib * 2**30)
    small = []
    for case in SMALL:
        ours = min((measure("ours", (*case, budget), args.device) for _ in range(2)),
                   key=lambda r: r["seconds"])
        plain = min((measure("plain", (*case, budget), args.device) for _ in range(2)),
                    key=lambda r: r["seconds"])
        diff = float(abs(ours["K"] - plain["K"]).max() / abs(plain["K"]).max())
        small.append({"case": case[0], "params": ours["params"], "method": ours["method"],
                      "seconds_ours": round(ours["seconds"], 4),
                      "seconds_plain": round(plain["seconds"], 4),
                      "speedup": plain["seconds"] / ours["seconds"],
                      "peak_mb_ours": round(ours["peak_mb"], 1),
                      "peak_mb_plain": round(plain["peak_mb"], 1), "max_rel_diff": diff})
    case = ("bounded", 16, 1024, 3, 1, args.large, "trace", budget)
    big = measure("ours", case, args.device)
    plain_jacobians_gb = 2 * args.large * big["params"] * 8 / 2**30
    analytic = measure("analytic", None, args.device)
    out = {
        "device": args.device if args.device != "cuda" else torch.cuda.get_device_name(0),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__},
        "small": small,
        "bounded": {"inputs": args.large, "width": 1024, "depth": 3, "params": big["params"],
                    "budget_gib": args.budget_gib, "method": big["method"],
                    "seconds": round(big["seconds"], 2), "peak_mb": round(big["peak_mb"], 1),
                    "plain_recipe_jacobians_gib": round(plain_jacobians_gb, 1)},
        "analytic_4096_depth10_seconds": round(analytic["seconds"], 3),
        "targets": {"small_speedup": ">= 1", "max_rel_diff": 1e-10, "analytic_seconds": 10},
    }
    path = Path(args.out) if args.out else RESULTS / (
        "ntk.json" if args.device == "cpu" else "ntk_cuda.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
