"""Hydra glue: the only module of the library that imports Hydra.

``sims/<study>.py`` entry points are thin: each hands its lens's
:class:`~rfattn.core.study.Study` to :func:`main`, which runs the study inside Hydra (the study's
job lives in ``rfattn``, so joblib, submitit and Ray workers can import it). Before Hydra writes
anything, the :class:`Preflight` callback (``conf/hydra/default.yaml``) composes every job of
the run or sweep and checks it: the study's validation, its memory estimate, and a job folder
that holds another config's results. A bad value, a conflict or Ctrl-C end in one line. The
harness knows no lens by name: :func:`main` registers the study it is given.
Resolvers are registered on import.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ..core.checks import ConfigError
from ..core.study import Study
from .records import ROWS_FILE, FolderConflict, check_folder, run_job

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # packaged; conf/ at the repository top
MAX_DIRNAME = 200  # bytes; most file systems allow 255
log = logging.getLogger(__name__)
#: the studies of this process's entry point (:func:`main`), by config name, for the Preflight
REGISTERED: dict[str, Study] = {}


def _pow2(lo: int, hi: int) -> list[int]:
    """``${rfattn.pow2:6,10}`` -> [64, 128, 256, 512, 1024]."""
    return [2**k for k in range(int(lo), int(hi) + 1)]


def job_dirname(name: str) -> str:
    """A job folder's name: its overrides, or for long ones (over ``MAX_DIRNAME`` bytes) their
    head and a digest of the whole (``${rfattn.dirname:${hydra.job.override_dirname}}``)."""
    if len(name.encode()) <= MAX_DIRNAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    head = name.encode()[:MAX_DIRNAME - 17].decode(errors="ignore")
    return f"{head}~{digest}"


for _name, _resolver in (("rfattn.pow2", _pow2), ("rfattn.dirname", job_dirname)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)


def job_config(cfg: DictConfig) -> dict:
    """The resolved job config as plain containers (the Hydra node excluded)."""
    if "hydra" in cfg:
        cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


def hydra_error_line(err: Exception) -> str:
    """One line for an error of Hydra's composition: its message, the options it lists."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    head, rest = lines[0], lines[1:]
    options = []
    if rest and rest[0].startswith("Available options"):
        options = [x for x in rest[1:] if not x.startswith(("Config search path", "provider="))]
        rest = []
    tail = [x for x in rest if not x.startswith(("Config search path", "provider="))]
    line = " ".join([head, *tail])
    return f"{line} (options: {', '.join(options)})" if options else line


def compose(config_name: str, overrides: list[str] | None = None,
            return_hydra_config: bool = False) -> DictConfig:
    """Compose a config from ``conf/`` outside a Hydra app (tests, notebooks, paper_repro).

    Raises
    ------
    ConfigError
        Hydra could not compose it (an unknown option of a group, a key the config lacks), in
        one line.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            return hydra_compose(config_name, overrides=overrides or [],
                                 return_hydra_config=return_hydra_config)
        except HydraException as err:
            raise ConfigError(hydra_error_line(err)) from None


@dataclass
class PlannedJob:
    """One job of a run or sweep: its overrides, folder, resolved config and status."""

    overrides: list[str]
    folder: Path
    config: dict
    settings: object = None
    memory: int = 0
    done: bool = False


def sweep_overrides(params, task: list[str]) -> list[list[str]]:
    """The overrides of every job of a multirun: the basic sweeper's expansion of the
    experiment's ``hydra.sweeper.params`` and the command line's ``task`` overrides."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    params = [f"{k}={v}" for k, v in (params or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + list(task))
    return BasicSweeper.split_arguments(parsed, None)[0]


def plan(study: Study, job_overrides: list[list[str]], multirun: bool,
         hydra_overrides: list[str] = (),
         composer: Callable[..., DictConfig] = compose) -> list[PlannedJob]:
    """Compose every job and check it before anything runs.

    Each job is validated by its study (the same ``ConfigError`` as the job would raise), its
    memory estimated against what the device has, and its folder checked: one holding this
    config's rows is ``done`` (resume), one holding another config's is a conflict.
    ``hydra_overrides`` (``hydra.sweep.dir=...``) place the jobs' folders.

    Raises
    ------
    ConfigError
        The first bad job, named by its overrides.
    """
    planned = []
    for overrides in job_overrides:
        cfg = composer(study.name, [*overrides, *hydra_overrides], return_hydra_config=True)
        where = cfg.hydra.sweep if multirun else cfg.hydra.run
        folder = Path(str(where.dir)) / (str(where.subdir) if multirun else "")
        config = job_config(cfg)
        label = ",".join(overrides) or "(defaults)"
        try:
            settings = study.check(config)
            done = check_folder(folder, config)
        except (ConfigError, FolderConflict) as err:
            raise ConfigError(f"job {label}: {err}" if multirun else str(err)) from None
        planned.append(PlannedJob(overrides, folder, config, settings,
                                  settings.estimate_memory(), done))
    return planned


def _within_app(config_name, overrides, return_hydra_config=False):
    """Compose inside a running Hydra app (its config search path is initialized)."""
    from hydra import compose as hydra_compose
    from hydra.errors import HydraException

    try:
        return hydra_compose(config_name, overrides=overrides,
                             return_hydra_config=return_hydra_config)
    except HydraException as err:
        raise ConfigError(hydra_error_line(err)) from None


class SweepConfigs:
    """Each job of a sweep composed once, by the :class:`Preflight`, and handed to the launcher.

    Hydra composes every job of a multirun twice (the basic sweeper's batch validation, then
    the launcher's ``load_sweep_config``), and the Preflight composes it a third time; each
    composition takes about 0.15 s, more than many jobs' work. The Preflight composes with the
    launcher's own ``load_sweep_config`` and keeps the result; the sweeper's validation then
    skips the jobs the Preflight composed, and the launcher takes each job's config from here
    (once: a second call composes afresh). Launchers that compose in other processes (joblib
    with several workers, SLURM) find nothing here and compose as before.
    """

    MAX_KEPT = 2000  # configs kept per sweep; a longer sweep's later jobs are composed again
    kept: dict = {}

    @classmethod
    def key(cls, master: DictConfig, overrides) -> tuple:
        return id(master), tuple(overrides)

    @classmethod
    def composer(cls, master: DictConfig) -> Callable[..., DictConfig]:
        """``composer(name, job overrides)`` for :func:`plan`: the launcher's composition."""
        from hydra.core.global_hydra import GlobalHydra
        from hydra.errors import HydraException

        loader = GlobalHydra.instance().config_loader()

        def compose_job(config_name, overrides, return_hydra_config=True):
            try:
                cfg = loader.load_sweep_config(master, list(overrides))
            except HydraException as err:
                raise ConfigError(hydra_error_line(err)) from None
            if len(cls.kept) < cls.MAX_KEPT:
                cls.kept[cls.key(master, overrides)] = cfg
            return cfg
        return compose_job

    @classmethod
    def install(cls) -> None:
        """Route Hydra's batch validation and ``load_sweep_config`` through :attr:`kept`."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.plugins.sweeper import Sweeper

        if getattr(ConfigLoaderImpl.load_sweep_config, "_rfattn", False):
            return
        load, validate = ConfigLoaderImpl.load_sweep_config, Sweeper.validate_batch_is_legal

        def load_sweep_config(self, master_config, sweep_overrides):
            cfg = cls.kept.pop(cls.key(master_config, sweep_overrides), None)
            return cfg if cfg is not None else load(self, master_config, sweep_overrides)

        def validate_batch_is_legal(self, batch):
            rest = [o for o in batch if cls.key(self.config, o) not in cls.kept]
            if rest:
                validate(self, rest)

        load_sweep_config._rfattn = True
        ConfigLoaderImpl.load_sweep_config = load_sweep_config
        Sweeper.validate_batch_is_legal = validate_batch_is_legal


def _fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


class Preflight(Callback):
    """Check every job of a run or sweep before Hydra writes its folders or ``multirun.yaml``.

    Configured in ``conf/hydra/default.yaml`` for every study. A bad job ends the command with
    one line (exit status 2) before any job runs; a multirun logs how many jobs are already
    done (they will be skipped) and, at its end, a summary.

    Parameters
    ----------
    collect : bool
        Also join the sweep's rows into ``results.parquet`` when it ends
        (``hydra.callbacks.preflight.collect=true``). Hydra skips end-of-sweep callbacks when a
        job fails: ``rfattn-collect`` stays the way to collect any sweep.
    """

    def __init__(self, collect: bool = False):
        self.collect = collect

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config, [list(config.hydra.overrides.task)], multirun=False)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.jobs = self._check(config, sweep_overrides(config.hydra.sweeper.params,
                                                         config.hydra.overrides.task),
                                multirun=True)
        done = sum(job.done for job in self.jobs)
        log.info("sweep of %d jobs checked: %d to run, %d already done (skipped)",
                 len(self.jobs), len(self.jobs) - done, done)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        jobs = getattr(self, "jobs", [])
        finished = [job for job in jobs if (job.folder / ROWS_FILE).exists()]
        skipped = sum(job.done for job in jobs)
        log.info("sweep done: %d jobs run, %d skipped (already done), %d without rows; "
                 "collect with: rfattn-collect %s", len(finished) - skipped, skipped,
                 len(jobs) - len(finished), config.hydra.sweep.dir)
        if self.collect and finished:
            from .collect import collect

            table = collect(config.hydra.sweep.dir)
            log.info("collected %d rows into %s", len(table), config.hydra.sweep.dir)

    @staticmethod
    def _check(config: DictConfig, job_overrides, multirun: bool) -> list[PlannedJob]:
        name = config.hydra.job.config_name
        if name not in REGISTERED:
            _fail(f"no study named {name!r} was given to rfattn.experiment.hydra_app.main "
                  "in this process; start studies with their entry points (rfattn-<study>)")
        if multirun:  # the launcher's own composition, kept for it (SweepConfigs)
            composer, hydra_overrides = SweepConfigs.composer(config), []
        else:
            composer, hydra_overrides = _within_app, list(config.hydra.overrides.hydra)
        try:
            return plan(REGISTERED[name], job_overrides, multirun, hydra_overrides, composer)
        except ConfigError as err:
            _fail(str(err))


def run_hydra_job(cfg: DictConfig, task: Callable[[dict], pd.DataFrame]) -> pd.DataFrame:
    """Run ``task`` on the job's resolved config inside the Hydra output folder (resumable).

    An error the user caused (a bad value, a folder of another config) ends in one line.
    """
    hydra_cfg = HydraConfig.get()
    context = {"overrides": list(hydra_cfg.overrides.task),
               "launcher": str(hydra_cfg.launcher.get("_target_", "")),
               "choices": dict(hydra_cfg.runtime.choices)}
    try:
        return run_job(hydra_cfg.runtime.output_dir, job_config(cfg), task, context)
    except (ConfigError, FolderConflict) as err:
        _fail(str(err))


class _Interrupt:
    """When Ctrl-C may interrupt a sweep that runs its jobs in this process.

    During a job's own work it interrupts at once. Between jobs, Hydra and OmegaConf change
    shared config state, and an exception there can leave it half-changed (the process then
    dies of an unrelated error); so there Ctrl-C is held until the next job would start. A
    second Ctrl-C, or one before any job ran here (another launcher's workers), interrupts at
    once.
    """

    pending = False
    in_job = False
    jobs_here = False

    @classmethod
    def handler(cls, signum, frame) -> None:
        if cls.in_job or cls.pending or not cls.jobs_here:
            raise KeyboardInterrupt
        cls.pending = True

    @classmethod
    def guard(cls, task: Callable[[dict], pd.DataFrame]) -> Callable[[dict], pd.DataFrame]:
        def run(cfg: dict) -> pd.DataFrame:
            cls.jobs_here = True
            if cls.pending:
                raise KeyboardInterrupt
            cls.in_job = True
            try:
                return task(cfg)
            finally:
                cls.in_job = False
        return run


def main(study: Study) -> None:
    """The entry point of a study: ``python -m sims.<study> [-m] [overrides]``.

    Parameters
    ----------
    study : Study
        The lens's study; its primary config is ``conf/<study.name>.yaml``.

    Ctrl-C ends in one line: finished jobs are kept, and the same command resumes. Between
    jobs it is held until the next job would start (:class:`_Interrupt`). A process that
    inherited SIGINT as ignored (a background launch without job control) handles it too, so
    that Ctrl-C reaches it.
    """
    import hydra

    REGISTERED[study.name] = study
    SweepConfigs.install()
    signal.signal(signal.SIGINT, _Interrupt.handler)
    task = _Interrupt.guard(study.run)

    @hydra.main(config_path=str(CONF_DIR), config_name=study.name, version_base="1.3")
    def app(cfg: DictConfig) -> None:
        run_hydra_job(cfg, task)

    try:
        app()
        if _Interrupt.pending:  # held after the last job
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("interrupted: finished jobs are kept (rows.csv in their folders); the same "
              "command resumes", file=sys.stderr)
        raise SystemExit(130) from None
