r"""The theory study: learning-curve predictions for the lab's simulations.

:func:`run_theory_job` dispatches on ``cfg['kind']`` (settings in
:mod:`rfattn.theory.settings`) and returns tidy rows:

- ``rfa_curves``, ``double_descent``, ``rfa_validity``: predictions on the RFA data
  (:mod:`rfattn.theory.rfa_jobs`);
- ``sphere``: a dot-product kernel on the sphere, exact against sampled, and kernel
  regression (and wide networks) against the prediction (:mod:`rfattn.theory.sphere_jobs`);
- ``attention_kernel``: an attention model's infinite-head kernel against a Monte Carlo check
  and finite heads (:mod:`rfattn.theory.attention_jobs`).
"""

from __future__ import annotations

import pandas as pd

from ..core.study import Study
from .attention_jobs import AttentionKernelSettings, attention_kernel
from .rfa_jobs import double_descent, rfa_curves, rfa_validity
from .settings import SETTINGS
from .sphere_jobs import sphere

JOBS = {"rfa_curves": rfa_curves, "double_descent": double_descent,
        "rfa_validity": rfa_validity, "sphere": sphere, "attention_kernel": attention_kernel}


def theory_rows(s) -> pd.DataFrame:
    """The rows of one validated theory job: ``kind`` and ``seed``, then the kind's own."""
    return pd.DataFrame([{"kind": s.kind, "seed": s.seed, **row} for row in JOBS[s.kind](s)])


STUDY = Study("theory", {**SETTINGS, "attention_kernel": AttentionKernelSettings}, theory_rows)


def run_theory_job(cfg: dict) -> pd.DataFrame:
    """One theory job (module docstring).

    Parameters
    ----------
    cfg : dict
        A resolved config composed from ``conf/theory.yaml`` and its ``kind``.

    Returns
    -------
    DataFrame
        Tidy rows: ``kind``, ``seed``, the kind's own columns (analysis, model, activation,
        target_label, n, prediction, M, P, index, run), ``metric`` and ``value``.
    """
    return STUDY.run(cfg)
