"""Run (or resume) a study's named sweeps through its Hydra entry point, then collect them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from rfattn.experiment import collect


def run_sweeps(study: str, experiments: list[str], out_root: Path, launcher: str,
               overrides: list[str]) -> pd.DataFrame:
    """``python -m sims.<study> -m +experiment=E`` for each E; rows tagged with ``sweep``.

    Each sweep lives in ``out_root/<study>/<E>``: running again skips finished jobs.
    """
    tables = []
    for exp in experiments:
        sweep_dir = out_root / study / exp
        cmd = [sys.executable, "-m", f"sims.{study}", "-m", f"+experiment={exp}",
               f"launcher={launcher}", f"hydra.sweep.dir={sweep_dir}", *overrides]
        subprocess.run(cmd, check=True)
        table = collect(sweep_dir)
        table["sweep"] = exp
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def reproduce_steps(study: str, sweeps, steps, scale: str, out_root, figures_dir,
                    launcher: str, overrides: list[str] | None) -> list:
    """Run ``<study>_<sweep>_<scale>`` for every sweep, then each ``step(rows, figures_dir)``
    (it draws its figures and returns its claims); returns all claims."""
    rows = run_sweeps(study, [f"{study}_{s}_{scale}" for s in sweeps], Path(out_root), launcher,
                      overrides or [])
    return [claim for step in steps for claim in step(rows, Path(figures_dir))]
