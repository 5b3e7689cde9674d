"""Hydra glue: the only module of the library that imports Hydra.

``sims/<study>.py`` entry points are thin: they call :func:`run_hydra_job` with the study's task
function from ``rfattn``, so joblib, submitit and Ray workers can import it. Resolvers are
registered on import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .records import run_job

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _pow2(lo: int, hi: int) -> list[int]:
    """``${rfattn.pow2:6,10}`` -> [64, 128, 256, 512, 1024]."""
    return [2**k for k in range(int(lo), int(hi) + 1)]


if not OmegaConf.has_resolver("rfattn.pow2"):
    OmegaConf.register_new_resolver("rfattn.pow2", _pow2)


def job_config(cfg: DictConfig) -> dict:
    """The resolved job config as plain containers (the Hydra node excluded)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


def run_hydra_job(cfg: DictConfig, task: Callable[[dict], pd.DataFrame]) -> pd.DataFrame:
    """Run ``task`` on the job's resolved config inside the Hydra output folder (resumable)."""
    return run_job(HydraConfig.get().runtime.output_dir, job_config(cfg), task)


def compose(config_name: str, overrides: list[str] | None = None,
            return_hydra_config: bool = False) -> DictConfig:
    """Compose a config from ``conf/`` outside a Hydra app (tests, notebooks, paper_repro)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides or [],
                             return_hydra_config=return_hydra_config)
