"""The main job: ``python -m paper_repro [--full] [--studies rfa ...]``.

Runs every study's sweeps (quick by default, resumable), writes its figures to figures/, its
claims to figures/claims/<study>.json, and the joined report figures/REPORT.md + claims.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rfattn.experiment import save_study_claims, write_report

from . import STUDIES
from .sweeps import FINISHED, check_overrides, longest_first, run_commands, sweep_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paper_repro", description=__doc__)
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_const", dest="scale", const="quick",
                       help="quick configurations (default): minutes on a laptop CPU")
    scale.add_argument("--full", action="store_const", dest="scale", const="full",
                       help="full configurations: meant for a GPU")
    parser.add_argument("--studies", nargs="+", choices=list(STUDIES), default=list(STUDIES))
    parser.add_argument("--launcher", default="joblib", choices=["local", "joblib", "slurm"])
    parser.add_argument("--out", default="outputs/repro", help="sweep folders (resumable)")
    parser.add_argument("--figures", default="figures")
    parser.add_argument("--parallel-sweeps", type=int, default=2, metavar="K",
                        help="sweeps run K at a time, sharing the cores (local and joblib "
                             "launchers; default 2)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to every sweep")
    args = parser.parse_args(argv)
    if args.parallel_sweeps < 1:
        raise SystemExit(f"paper_repro: --parallel-sweeps must be >= 1 (got "
                         f"{args.parallel_sweeps})")
    scale_name = args.scale or "quick"
    check_overrides({name: STUDIES[name] for name in args.studies}, scale_name, args.overrides)
    if args.launcher != "slurm" and args.parallel_sweeps > 1:
        start = time.perf_counter()
        commands = {}
        for name in args.studies:  # every sweep once (studies share some), then the figures
            for sweep_dir, cmd in sweep_commands(name, STUDIES[name].SWEEPS, scale_name,
                                                 Path(f"{args.out}/{scale_name}"),
                                                 args.launcher, args.overrides):
                commands.setdefault(sweep_dir, cmd)
        run_commands(longest_first(commands, scale_name), args.launcher, args.parallel_sweeps)
        print(f"[sweeps] {len(commands)} sweeps in {time.perf_counter() - start:.0f}s")
    jobs = [(name, scale_name, f"{args.out}/{scale_name}", args.figures, args.launcher,
             args.overrides, set(FINISHED)) for name in args.studies]
    if args.launcher != "slurm" and args.parallel_sweeps > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(args.parallel_sweeps, len(jobs))) as pool:
            done = list(pool.map(_figures, jobs))  # each study's figures in its own process
    else:
        done = [_figures(job) for job in jobs]
    for name, claims, seconds in done:
        print(f"[{name}] {len(claims)} claims in {seconds:.0f}s:")
        for c in claims:
            print(f"  {c.verdict:7s} {c.id}: {c.value} {c.comparison} {c.threshold}")
    md, js = write_report(args.figures)
    print(f"report: {md}, {js}")
    return 0


def _figures(job) -> tuple:
    """One study's figures and claims (its sweeps already run, or run now), saved to
    ``figures/claims/<study>.json``: (name, claims, seconds)."""
    name, scale, out, figures, launcher, overrides, finished = job
    FINISHED.update(finished)
    start = time.perf_counter()
    claims = STUDIES[name].reproduce(scale, out, figures, launcher, overrides)
    save_study_claims(name, claims, figures)
    return name, claims, time.perf_counter() - start


def cli() -> None:
    """``rfattn-repro [--quick | --full] [--studies ...]``: ``python -m paper_repro``."""
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted: finished jobs are kept; the same command resumes", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    cli()
