"""Run (or resume) a study's named sweeps through its Hydra entry point, then collect them."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from rfattn.experiment import collect
from rfattn.experiment.hydra_app import compose

_ABSENT = object()
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
FINISHED: set[Path] = set()  # sweep folders run to the end by this process: only collected


#: seconds of each quick sweep on 2 cores, two sweeps at a time (make repro, rfattn 0.1): only
#: the order in which :func:`longest_first` starts sweeps uses them; a sweep not listed here
#: starts last.
QUICK_SECONDS = {
    "lowrank_adapters": 300, "rfa": 250, "ntk_gaussian_limit": 240, "ntk_snnk_bundled": 140,
    "rfa_similarity": 130, "lowrank_noise": 125, "ntk_kernel_drift": 125, "lowrank_patterns": 120,
    "theory_validity_rfa": 110, "theory_sphere_networks": 90, "rfa_bias_scan": 90,
    "theory_rfa_curves": 70, "ntk_width_convergence": 55, "theory_validity": 50,
    "ntk_random_features": 50, "theory_attention_kernels": 45, "ntk_attention_width": 30,
    "ntk_attention_training": 30,
    "theory_sphere": 35,
    "rfa_heads": 30, "svm_global": 27, "ntk_mode_decay": 25, "svm_nonlinear": 25, "svm_rank": 20,
    "theory_double_descent": 15, "ntk_snnk_layer": 15, "svm_convergence": 14, "svm_trajectory": 13,
}


def longest_first(commands: dict[Path, list[str]], scale: str) -> list[tuple[Path, list[str]]]:
    """The sweeps ordered by :data:`QUICK_SECONDS`, longest first: with sweeps run a few at a
    time, a long sweep started last would leave the other slots idle until it ends."""
    def seconds(item):
        return QUICK_SECONDS.get(item[0].name.removesuffix(f"_{scale}"), 0)
    return sorted(commands.items(), key=seconds, reverse=True)


def applicable(study: str, experiment: str, overrides: list[str]) -> list[str]:
    """The overrides whose key the experiment's config has (kinds differ in their keys)."""
    return list(_applicable(study, experiment, tuple(overrides)))


@functools.cache  # the check, the first run and each study ask again
def _applicable(study: str, experiment: str, overrides: tuple[str, ...]) -> tuple[str, ...]:
    cfg = compose(study, [f"+experiment={experiment}"])
    keys = [o.key_or_group for o in OverridesParser.create().parse_overrides(list(overrides))]
    return tuple(text for text, key in zip(overrides, keys)
                 if key.startswith("hydra") or OmegaConf.select(cfg, key, default=_ABSENT)
                 is not _ABSENT)


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


def sweep_commands(study: str, sweeps, scale: str, out_root: Path, launcher: str,
                   overrides: list[str]) -> list[tuple[Path, list[str]]]:
    """(sweep folder, command) of each sweep: ``python -m sims.<owner> -m
    +experiment=<sweep>_<scale>`` with the overrides its config has (:func:`applicable`)."""
    commands = []
    for owner, sweep in sweep_pairs(study, sweeps):
        experiment = f"{sweep}_{scale}"
        kept = applicable(owner, experiment, overrides)
        sweep_dir = out_root / owner / experiment
        commands.append((sweep_dir, [sys.executable, "-m", f"sims.{owner}", "-m",
                                     f"+experiment={experiment}", f"launcher={launcher}",
                                     f"hydra.sweep.dir={sweep_dir}", *kept]))
    return commands


def run_commands(commands: list[tuple[Path, list[str]]], launcher: str, slots: int = 1) -> None:
    """Run the sweeps not yet in :data:`FINISHED`, ``slots`` at a time.

    With several slots the cores are shared out: each sweep's joblib launcher gets
    cores // slots workers, every process one BLAS thread, and a sweep's output goes to
    ``<sweep folder>.log`` (its last lines are shown if it stops). Small sweeps then no longer
    leave cores idle, and one sweep's start-up overlaps another's jobs.
    """
    env, extra = None, []
    if slots > 1:
        env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, "1")}
        if launcher == "joblib":
            extra = [f"hydra.launcher.n_jobs={max(1, (os.cpu_count() or 1) // slots)}"]

    def run(item):
        sweep_dir, cmd = item
        if sweep_dir in FINISHED:
            return
        if slots > 1:
            log = sweep_dir.parent / f"{sweep_dir.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            print(f"paper_repro: {sweep_dir.name} (output: {log})", flush=True)
            start = time.perf_counter()
            with open(log, "w") as out:
                code = subprocess.run(cmd + extra, env=env, stdout=out,
                                      stderr=subprocess.STDOUT).returncode
            if not code:
                print(f"paper_repro: {sweep_dir.name} done in "
                      f"{time.perf_counter() - start:.0f}s", flush=True)
            if code:
                print(log.read_text()[-3000:], file=sys.stderr)
        else:
            code = subprocess.run(cmd).returncode
        if code:
            raise SystemExit(f"paper_repro: the sweep {sweep_dir.name} stopped (exit status "
                             f"{code}); its finished jobs are kept and the same command "
                             "resumes it")
        FINISHED.add(sweep_dir)

    with ThreadPoolExecutor(max(1, slots)) as pool:
        list(pool.map(run, commands))


def run_sweeps(study: str, sweeps, scale: str, out_root: Path, launcher: str,
               overrides: list[str]) -> pd.DataFrame:
    """Run the sweeps (:func:`sweep_commands`) that this process has not run yet, one at a
    time, and collect them.

    A sweep is a name (of ``study``) or a pair (another study, name): the RFA figures draw
    the predictions of ``("theory", "theory_rfa_curves")``. Each sweep lives in
    ``out_root/<study>/<sweep>_<scale>``: running again skips finished jobs, so studies can
    share sweeps. An override goes to every sweep whose config has its key (see
    :func:`check_overrides`). Rows are tagged with the sweep's name (without the scale) in
    column ``sweep``.
    """
    commands = sweep_commands(study, sweeps, scale, out_root, launcher, overrides)
    run_commands(commands, launcher)
    tables = []
    for (sweep_dir, _), (_, sweep) in zip(commands, sweep_pairs(study, sweeps)):
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
