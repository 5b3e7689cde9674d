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


def sweep_pairs(study: str, sweeps) -> list[tuple[str, str]]:
    """(study, sweep) for each sweep: a plain name belongs to ``study``."""
    return [sweep if isinstance(sweep, tuple) else (study, sweep) for sweep in sweeps]


def check_overrides(studies: dict, scale: str, overrides: list[str]) -> None:
    """Every override must set a key of at least one sweep of the chosen studies (a module
    per study with ``STUDY`` and ``SWEEPS``): a misspelt key stops the run before any work."""
    kept = {o for module in studies.values()
            for pair in sweep_pairs(module.STUDY, module.SWEEPS)
            for o in applicable(pair[0], f"{pair[1]}_{scale}", overrides)}
    unused = [o for o in overrides if o not in kept]
    if unused:
        raise SystemExit(f"paper_repro: {unused[0]!r} sets a key that no sweep of "
                         f"{', '.join(studies)} has")


def run_sweeps(study: str, sweeps, scale: str, out_root: Path, launcher: str,
               overrides: list[str]) -> pd.DataFrame:
    """``python -m sims.<study> -m +experiment=<sweep>_<scale>`` for each sweep, collected.

    A sweep is a name (of ``study``) or a pair (another study, name): the RFA figures draw
    the predictions of ``("theory", "theory_rfa_curves")``. Each sweep lives in
    ``out_root/<study>/<sweep>_<scale>``: running again skips finished jobs, so studies can
    share sweeps. An override goes to every sweep whose config has its key (see
    :func:`check_overrides`). Rows are tagged with the sweep's name (without the scale) in
    column ``sweep``.
    """
    chosen = {pair: applicable(pair[0], f"{pair[1]}_{scale}", overrides)
              for pair in sweep_pairs(study, sweeps)}
    tables = []
    for (owner, sweep), kept in chosen.items():
        experiment = f"{sweep}_{scale}"
        sweep_dir = out_root / owner / experiment
        cmd = [sys.executable, "-m", f"sims.{owner}", "-m", f"+experiment={experiment}",
               f"launcher={launcher}", f"hydra.sweep.dir={sweep_dir}", *kept]
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
