"""Run (or resume) a study's named sweeps through its Hydra entry point, then collect them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from rfattn.experiment import collect
from rfattn.experiment.hydra_app import compose

_ABSENT = object()


def applicable(study: str, experiment: str, overrides: list[str]) -> list[str]:
    """The overrides whose key the experiment's config has (kinds differ in their keys)."""
    cfg = compose(study, [f"+experiment={experiment}"])
    keys = [o.key_or_group for o in OverridesParser.create().parse_overrides(overrides)]
    return [text for text, key in zip(overrides, keys)
            if key.startswith("hydra") or OmegaConf.select(cfg, key, default=_ABSENT)
            is not _ABSENT]


def run_sweeps(study: str, sweeps: list[str], scale: str, out_root: Path, launcher: str,
               overrides: list[str]) -> pd.DataFrame:
    """``python -m sims.<study> -m +experiment=<sweep>_<scale>`` for each sweep, collected.

    Each sweep lives in ``out_root/<study>/<sweep>_<scale>``: running again skips finished
    jobs. An override goes to every sweep whose config has its key, and must reach one.
    Rows are tagged with the sweep's name (without the scale) in column ``sweep``.
    """
    experiments = [f"{sweep}_{scale}" for sweep in sweeps]
    chosen = {exp: applicable(study, exp, overrides) for exp in experiments}
    unused = [o for o in overrides if not any(o in kept for kept in chosen.values())]
    if unused:
        raise SystemExit(f"paper_repro: {unused[0]!r} sets a key that no sweep of {study} has")
    tables = []
    for sweep, experiment in zip(sweeps, experiments):
        sweep_dir = out_root / study / experiment
        cmd = [sys.executable, "-m", f"sims.{study}", "-m", f"+experiment={experiment}",
               f"launcher={launcher}", f"hydra.sweep.dir={sweep_dir}", *chosen[experiment]]
        code = subprocess.run(cmd).returncode
        if code:
            raise SystemExit(f"paper_repro: the sweep {experiment} stopped (exit status {code}); "
                             "its finished jobs are kept and the same command resumes it")
        table = collect(sweep_dir)
        table["sweep"] = sweep
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def reproduce_steps(study: str, sweeps, steps, scale: str, out_root, figures_dir,
                    launcher: str, overrides: list[str] | None) -> list:
    """Run the experiments ``<sweep>_<scale>`` (conf/experiment/), then each
    ``step(rows, figures_dir)`` (it draws its figure and returns its claims); returns all
    claims, in the order of the steps."""
    rows = run_sweeps(study, list(sweeps), scale, Path(out_root), launcher, overrides or [])
    return [claim for step in steps for claim in step(rows, Path(figures_dir))]
