"""The analytic NTK of multi-head attention against the empirical NTK of finite networks.

    python benchmarks/bench_attention_ntk.py [--device cpu|cuda] [--sequences 1024]

On ``--sequences`` sequences of 5 tokens in R^4 (a query and 4 keys on the sphere of radius 2,
as kind ``attention_ntk``), the (n, n) NTK of softmax attention (1/d_key scaling, tied
query-key), ReLU, mean over tokens and a dense readout:

- analytic (``rfattn.ntk.attention_kernels.attention_kernels``, NNGP and NTK together);
- empirical (``rfattn.ntk.EmpiricalNTK``, Jacobian contraction, tiled within a quarter of the
  free memory) of one network with heads = d_key = channels = 32, 64 and 128, and its relative
  Frobenius error against the analytic NTK.

Each row: seconds (median of 3 after a warm-up for the analytic kernel; one run after a
two-sequence warm-up for the empirical ones), the network's parameters, and the growth of the
process's peak memory (CPU: the peak resident set, so a row below an earlier, larger peak
shows 0; CUDA: peak allocated). Writes
``benchmarks/results/attention_ntk[_cuda].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch
from bench_attention_kernel import _sync, timed

from rfattn.core import generator, resolve_device
from rfattn.ntk import EmpiricalNTK
from rfattn.ntk.attention_kernels import AttentionArchitecture, attention_kernels
from rfattn.ntk.attention_network import AttentionNetwork
from rfattn.rfa import sample_tokens

RESULTS = Path(__file__).resolve().parent / "results"
D, KEYS = 4, 4
WIDTHS = (32, 64, 128)


def peak(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sequences", type=int, default=1024)
    args = parser.parse_args()
    device = resolve_device(args.device)
    x0, keys = sample_tokens(args.sequences, KEYS, D, generator(0, "bench", "attention-ntk"),
                             dtype=torch.float64, device=device)[:2]
    x = D**0.5 * torch.cat([x0[:, None], keys], 1)
    arch = AttentionArchitecture("softmax", "linear", b_std=0.1)
    rows = []
    before = peak(device)
    seconds, exact = timed(lambda: attention_kernels(x, arch=arch), device)
    rows.append({"kernel": "analytic (NNGP and NTK)", "heads": None, "params": 0,
                 "seconds": round(seconds, 4), "relative_error": 0.0,
                 "peak_growth_mib": round(peak(device) - before, 1)})
    print(rows[-1])
    for heads in WIDTHS:
        net = AttentionNetwork(D, heads, heads, 1, heads, arch, generator(0, "bench", heads),
                               torch.float64).to(device)
        EmpiricalNTK(net)(x[:2], method="jacobian")  # warm-up
        before = peak(device)
        start = time.perf_counter()
        empirical = EmpiricalNTK(net)(x, method="jacobian")
        _sync(device)
        seconds = time.perf_counter() - start
        error = float((empirical - exact.ntk).norm() / exact.ntk.norm())
        rows.append({"kernel": "empirical (Jacobians)", "heads": heads,
                     "params": sum(p.numel() for p in net.parameters()),
                     "seconds": round(seconds, 3), "relative_error": round(error, 4),
                     "peak_growth_mib": round(peak(device) - before, 1)})
        print(rows[-1])
    result = {"device": device.type, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(),
              "sequences": args.sequences, "tokens": KEYS + 1, "d": D, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    name = "attention_ntk_cuda.json" if device.type == "cuda" else "attention_ntk.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
