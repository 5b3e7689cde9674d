"""``rfattn-check STUDY [-m] [OVERRIDES]``: check a run or a sweep before launching anything.

Given the same overrides as the run (``-m`` for a sweep), it composes every job, validates
each (the same ``ConfigError`` as the job would raise), estimates each job's memory and time
and the sweep's total, and says which jobs are already done (they will be skipped: resume).
It exits with status 2 at the first invalid job, before anything is written, and with 0
otherwise. The same checks run inside every study before Hydra launches its jobs (the
``Preflight`` callback), whatever the launcher: local, joblib or SLURM. The console script
(``sims.check``) hands :func:`main` the studies it knows.

    rfattn-check rfa -m +experiment=rfa_quick hydra.sweep.dir=outputs/my_sweep
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from ..core.checks import ConfigError
from ..core.study import Study
from .hydra_app import compose, hydra_error_line, plan, sweep_overrides


def split_overrides(study: str, overrides: list[str], multirun: bool):
    """(job overrides of every job, Hydra overrides) for ``overrides`` of ``study``."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    hydra_overrides = [text for text, o in zip(overrides, parsed)
                       if o.key_or_group.startswith("hydra.") or o.key_or_group == "hydra"]
    task = [text for text in overrides if text not in hydra_overrides]
    if not multirun:
        sweeps = [text for text, o in zip(overrides, parsed) if o.is_sweep_override()]
        if sweeps:
            raise ConfigError(f"{sweeps[0]} is a sweep: add -m")
        return [task], hydra_overrides
    plain = [text for text, o in zip(overrides, parsed)
             if not o.is_sweep_override() and text in task]
    cfg = compose(study, plain + hydra_overrides, return_hydra_config=True)
    return sweep_overrides(cfg.hydra.sweeper.params, task), hydra_overrides


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def main(studies: Mapping[str, Study], argv: list[str] | None = None) -> int:
    """``rfattn-check``: check a run or sweep of one of ``studies`` (module docstring).

    Parameters
    ----------
    studies : Mapping[str, Study]
        The studies by name.
    argv : list of str, optional
        The command line (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every job is valid, 2 at the first invalid one.
    """
    parser = argparse.ArgumentParser(prog="rfattn-check", description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=list(studies))
    parser.add_argument("-m", "--multirun", action="store_true", help="check a sweep")
    parser.add_argument("--quiet", action="store_true", help="print the totals only")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for the run")
    args = parser.parse_intermixed_args(argv)
    study = studies[args.study]
    try:
        job_overrides, hydra_overrides = split_overrides(args.study, args.overrides,
                                                         args.multirun)
        jobs = plan(study, job_overrides, args.multirun, hydra_overrides)
    except (ConfigError, HydraException) as err:
        line = str(err) if isinstance(err, ConfigError) else hydra_error_line(err)
        print(f"rfattn-check: {line}", file=sys.stderr)
        return 2
    seconds = [job.settings.estimate_seconds() for job in jobs]
    todo = [(job, s) for job, s in zip(jobs, seconds) if not job.done]
    if not args.quiet:
        width = max(len(",".join(job.overrides) or "(defaults)") for job in jobs)
        print(f"{'job':{width}s}  {'memory':>10s}  {'time':>7s}  status")
        for job, s in zip(jobs, seconds):
            label = ",".join(job.overrides) or "(defaults)"
            print(f"{label:{width}s}  {_size(job.memory):>10s}  {_duration(s):>7s}  "
                  f"{'done (skipped)' if job.done else 'to run'}")
    peak = max(job.memory for job in jobs)
    total = sum(s for _, s in todo)
    print(f"{len(jobs)} jobs valid: {len(todo)} to run, {len(jobs) - len(todo)} already done; "
          f"largest job {_size(peak)}; time to run about {_duration(total)} on one worker "
          f"(estimates calibrated on a 2-core CPU; a GPU is faster)")
    return 0
