"""The main job: ``python -m paper_repro [--full] [--studies rfa ...]``.

Runs every study's sweeps (quick by default, resumable), writes its figures to figures/, its
claims to figures/claims/<study>.json, and the joined report figures/REPORT.md + claims.json.
"""

from __future__ import annotations

import argparse
import sys
import time

from rfattn.experiment import save_study_claims, write_report

from . import STUDIES
from .sweeps import check_overrides


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
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to every sweep")
    args = parser.parse_args(argv)
    scale_name = args.scale or "quick"
    check_overrides({name: STUDIES[name] for name in args.studies}, scale_name, args.overrides)
    for name in args.studies:
        start = time.perf_counter()
        claims = STUDIES[name].reproduce(scale_name, f"{args.out}/{scale_name}", args.figures,
                                         args.launcher, args.overrides)
        save_study_claims(name, claims, args.figures)
        print(f"[{name}] {len(claims)} claims in {time.perf_counter() - start:.0f}s:")
        for c in claims:
            print(f"  {c.verdict:7s} {c.id}: {c.value} {c.comparison} {c.threshold}")
    md, js = write_report(args.figures)
    print(f"report: {md}, {js}")
    return 0


def cli() -> None:
    """``rfattn-repro [--quick | --full] [--studies ...]``: ``python -m paper_repro``."""
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted: finished jobs are kept; the same command resumes", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    cli()
