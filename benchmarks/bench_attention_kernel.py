"""Infinite-head attention kernels: time and error of each way to compute them.

    python benchmarks/bench_attention_kernel.py [--device cpu|cuda] [--samples 1024]

On ``--samples`` token samples (d = 4, N = 4, sphere tokens, head variance 0.25), the Gram
matrix of:

- zero-mean ReLU heads, closed form (``rfa_relu_kernel``), and biased ReLU heads
  (c = sqrt(d)/2, bivariate-normal moments);
- zero-mean softmax heads by plain Monte Carlo (``monte_carlo_attention_kernel``) with 1024 and
  4096 heads, and by the control variate with antithetic heads (``softmax_attention_kernel``)
  with 512, 1024 and 4096 heads, i.i.d. in draws of 128 or scrambled Sobol in draws of 512
  (``sampler="sobol"``);
- softmax heads, zero-mean and biased, by the Mehler-Hermite expansion
  (``hermite_softmax_kernel``) at degree/nodes 4/6, 6/8 and 8/10.

Each row gives the seconds (median of 3 after a warm-up), the relative standard error of a
Monte Carlo estimate (Frobenius norm of the entrywise errors over that of the kernel, on its
first 512 rows) or the relative truncation bound of an expansion, the actual relative error
against the degree-12 expansion with 14 nodes (softmax rows), and the peak extra memory of the
process (CPU: resident set growth). ``equal_cost_gain`` of a zero-mean softmax row: the error
of plain Monte Carlo with 1024 heads, scaled to that row's time (Monte Carlo error goes as
1/sqrt(time)), over the row's standard error (Monte Carlo) or actual error (expansion).
Writes ``benchmarks/results/attention_kernel[_cuda].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

from rfattn.core import generator, resolve_device
from rfattn.rfa import RandomFeatureAttention, monte_carlo_attention_kernel, rfa_relu_kernel
from rfattn.rfa import sample_tokens
from rfattn.rfa.hermite_kernel import hermite_softmax_kernel
from rfattn.rfa.softmax_kernel import relative_error, softmax_attention_kernel

RESULTS = Path(__file__).resolve().parent / "results"
D, N, VARIANCE = 4, 4, 0.25
ERROR_ROWS = 512


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats=3):
    fn()
    _sync(device)
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=int, default=1024)
    args = parser.parse_args()
    device = resolve_device(args.device)
    x0, X = sample_tokens(args.samples, N, D, generator(0, "bench", "attention"),
                          dtype=torch.float64, device=device)[:2]

    def plain(heads):
        def run():
            return monte_carlo_attention_kernel(
                x0, X, None, None, lambda m, draw: RandomFeatureAttention.sample(
                    m, D, generator(0, "bench", "plain", draw), "softmax", "zero", VARIANCE,
                    dtype=x0.dtype, device=device), heads, 128, ERROR_ROWS)
        return run

    def controlled(heads, sampler="iid", per_draw=128):
        def run():
            return softmax_attention_kernel(x0, X, variance=VARIANCE, total_heads=heads,
                                            heads_per_draw=per_draw, error_rows=ERROR_ROWS,
                                            sampler=sampler)
        return run

    def hermite(degree, c=0.0):
        def run():
            return hermite_softmax_kernel(x0, X, variance=VARIANCE, c=c, degree=degree,
                                          nodes=degree + 2)
        return run

    bias = D**0.5 / 2
    references = {c: hermite(12, c)()[0] for c in (0.0, bias)}
    rows = []
    for name, heads, fn in (
            ("relu, closed form", 0, lambda: (rfa_relu_kernel(x0, X, variance=VARIANCE), None)),
            ("biased relu, closed form", 0,
             lambda: (rfa_relu_kernel(x0, X, variance=VARIANCE, c=D**0.5 / 2), None)),
            ("softmax, plain Monte Carlo", 1024, plain(1024)),
            ("softmax, plain Monte Carlo", 4096, plain(4096)),
            ("softmax, control variate", 512, controlled(512)),
            ("softmax, control variate", 1024, controlled(1024)),
            ("softmax, control variate", 4096, controlled(4096)),
            ("softmax, control variate, Sobol heads", 1024, controlled(1024, "sobol", 512)),
            ("softmax, control variate, Sobol heads", 4096, controlled(4096, "sobol", 512)),
            ("softmax, Hermite degree 4", 0, hermite(4)),
            ("softmax, Hermite degree 6", 0, hermite(6)),
            ("softmax, Hermite degree 8", 0, hermite(8)),
            ("biased softmax, Hermite degree 6", 0, hermite(6, bias))):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds, (kernel, error) = timed(fn, device)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        row = {"kernel": name, "heads": heads, "seconds": round(seconds, 4)}
        if "Hermite" in name:
            row["relative_bound"] = error
        else:
            row["relative_stderr"] = 0.0 if error is None else relative_error(kernel, error)
        if "softmax" in name:
            reference = references[bias if name.startswith("biased") else 0.0]
            row["relative_error"] = float((kernel - reference).norm() / reference.norm())
        if name.startswith("softmax"):  # Monte Carlo rows by their standard error
            plain_row = next((r for r in rows if "plain" in r["kernel"]), row)
            row["equal_cost_gain"] = (
                plain_row["relative_stderr"] * (plain_row["seconds"] / row["seconds"]) ** 0.5
                / row.get("relative_stderr", row["relative_error"]))
        row["peak_rss_growth_mib"] = round(grown / 1024, 1)
        rows.append(row)
        print(rows[-1])
    result = {"device": device.type, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(),
              "samples": args.samples, "d": D, "N": N, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    name = "attention_kernel_cuda.json" if device.type == "cuda" else "attention_kernel.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
