"""Att-SVM study jobs at tiny sizes: every kind runs and is deterministic."""

import pytest


@pytest.mark.parametrize("kind, extra", [
    ("trajectory", ["n=2", "N=3", "init=zero", "steps=300"]),
    ("convergence", ["runs=4", "n=3", "N=4", "d=6", "steps=300", "parameterization=KQ"]),
    ("nonlinear", ["runs=6", "n=3", "N=4", "d=4", "steps=400"]),
    ("rank", ["runs=5", "n=5", "N=5", "d=4"]),
])
def test_study_jobs_run_and_are_deterministic(kind, extra):
    pytest.importorskip("cvxpy")
    from rfattn.experiment.hydra_app import compose, job_config
    from rfattn.svm.study import run_svm_job

    cfg = job_config(compose("svm", [f"kind={kind}", *extra]))
    rows = run_svm_job(cfg)
    assert len(rows) and rows.value.notna().all()
    assert rows.equals(run_svm_job(cfg))
