"""The experiment harness: run records, collect, plotting, claims (Hydra only in hydra_app).

Public surface::

    run_job, atomic_write_table, collect          # records and sweeps
    Claim, save_study_claims, write_report        # claims and the report
"""

from .claims import Claim, load_claims, save_study_claims, write_report
from .collect import collect
from .records import atomic_write_table, run_job

__all__ = ["Claim", "atomic_write_table", "collect", "load_claims", "run_job",
           "save_study_claims", "write_report"]
