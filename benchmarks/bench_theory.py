"""Learning-curve theory against the simulation it predicts, in one run.

    python benchmarks/bench_theory.py [--device cpu|cuda] [--no-simulation] [--scale full]

Measured, each part in a fresh process (so peak memory is its own):

- ``simulation``: every job of the quick RFA sweeps the predictions cover
  (``rfa_quick`` and ``rfa_similarity_quick``: 135 jobs) run one after another in-process;
- ``spectra``: the spectrum of every model's kernel the quick grid needs
  (``theory_rfa_curves_quick``: rfa, rfa_biased, rfa_softmax, rfmlp; rfa's also serves the
  kernel), with its tail, its half-sample check and learnability rows;
- ``curves``: once the spectra exist, every predicted curve (every model, its M, target, n
  of the fine grid and ridge of the grid, from the full and the half sample);
- ``gram8192``: the spectrum of an 8192-sample zero-mean RFA Gram matrix (d = N = 4) with the
  nine targets' powers: time and peak memory above the process's baseline.

Writes ``benchmarks/results/theory[_cuda].json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser

from rfattn.experiment.hydra_app import compose, job_config

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("rfa", "rfa_biased", "rfa_softmax", "rfmlp")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sweep_configs(study: str, experiment: str, extra: list[str]) -> list[dict]:
    """Every job config of a named sweep (its parameters expanded)."""
    params = compose(study, [f"+experiment={experiment}"],
                     return_hydra_config=True).hydra.sweeper.params
    parser = OverridesParser.create()
    axes = [[f"{o.key_or_group}={v}" for v in (o.sweep_string_iterator()
                                              if o.is_sweep_override() else [o.value()])]
            for o in parser.parse_overrides([f"{k}={v}" for k, v in params.items()])]
    return [job_config(compose(study, [f"+experiment={experiment}", *point, *extra]))
            for point in itertools.product(*axes)]


def simulation(device: str, scale: str, out) -> None:
    from rfattn.rfa.study import run_rfa_job
    configs = [c for sweep in ("rfa", "rfa_similarity")
               for c in sweep_configs("rfa", f"{sweep}_{scale}", [f"device={device}"])]
    start = time.perf_counter()
    for cfg in configs:
        run_rfa_job(cfg)
    out.put({"seconds": time.perf_counter() - start, "jobs": len(configs),
             "peak_rss_mb": _rss_mb()})


def theory(device: str, scale: str, out) -> None:
    from rfattn.theory.rfa_jobs import rfa_curve_rows, rfa_spectra
    from rfattn.theory.study import STUDY
    settings = [STUDY.validate(job_config(compose("theory", [
        f"+experiment=theory_rfa_curves_{scale}", f"model={m}", f"device={device}"])))
        for m in MODELS]
    start = time.perf_counter()
    spectra = {s.model.name: rfa_spectra(s)[0] for s in settings}
    spectra_s = time.perf_counter() - start
    start = time.perf_counter()
    rows = sum((len(rfa_curve_rows(s, spectra[s.model.name])) for s in settings), 0)
    curves_s = time.perf_counter() - start
    out.put({"spectra_seconds": spectra_s, "curves_seconds": curves_s, "curve_rows": rows,
             "n_sample": settings[0].n_sample, "models": list(MODELS),
             "peak_rss_mb": _rss_mb()})


def gram8192(device: str, scale: str, out) -> None:
    from rfattn.core import generator, resolve_device
    from rfattn.rfa import rfa_relu_kernel, sample_tokens
    from rfattn.theory import sampled_spectrum
    from rfattn.theory.study import STUDY
    s = STUDY.validate(job_config(compose("theory", [f"device={device}"])))
    dev = resolve_device(device)
    x0, X = sample_tokens(8192, 4, 4, generator(0, "bench", "theory"), device=dev)
    targets = {t.label: t(x0, X) for t in (s.build_target(spec) for spec in s.targets)}
    base = _rss_mb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    gram = rfa_relu_kernel(x0, X, variance=0.25)
    gram_s = time.perf_counter() - start
    spectrum = sampled_spectrum(gram, targets, modes=8192 // 4, overwrite=True)
    total = time.perf_counter() - start
    result = {"seconds": total, "gram_seconds": gram_s, "modes": len(spectrum.eigenvalues),
              "peak_above_baseline_mb": _rss_mb() - base}
    if dev.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out.put(result)


def in_fresh_process(fn, *args) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=fn, args=(*args, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scale", default="quick", choices=["quick", "full"])
    parser.add_argument("--no-simulation", action="store_true",
                        help="skip timing the simulation (minutes on 2 cores)")
    args = parser.parse_args()
    report = {"device": args.device, "scale": args.scale, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.processor() or
              platform.machine()}
    report["theory"] = in_fresh_process(theory, args.device, args.scale)
    print("spectra + curves:", json.dumps(report["theory"]), flush=True)
    report["gram8192"] = in_fresh_process(gram8192, args.device, args.scale)
    print("8192-sample spectrum:", json.dumps(report["gram8192"]), flush=True)
    if not args.no_simulation:
        report["simulation"] = in_fresh_process(simulation, args.device, args.scale)
        print("simulation:", json.dumps(report["simulation"]), flush=True)
        both = report["theory"]["spectra_seconds"] + report["theory"]["curves_seconds"]
        report["theory_share_of_simulation"] = both / report["simulation"]["seconds"]
        print(f"spectra and curves take {report['theory_share_of_simulation']:.0%} of the "
              "simulation's time (target: at most 25%)")
    RESULTS.mkdir(exist_ok=True)
    name = "theory" + ("" if args.device == "cpu" else f"_{args.device.split(':')[0]}")
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
