"""Experiment layer: run records, collect, plotting, claims, runtime (Hydra only in hydra_app).

Public surface::

    run_job, atomic_write_table, collect          # records and sweeps
    Claim, save_study_claims, write_report        # claims and the report
    resolve_device, resolve_dtype, generator      # runtime
    ConfigError                                   # bad input
"""

from .checks import ConfigError
from .claims import Claim, load_claims, save_study_claims, write_report
from .collect import collect
from .records import atomic_write_table, run_job
from .runtime import generator, resolve_device, resolve_dtype

__all__ = [
    "Claim", "ConfigError", "atomic_write_table", "collect", "generator", "load_claims",
    "resolve_device", "resolve_dtype", "run_job", "save_study_claims", "write_report",
]
