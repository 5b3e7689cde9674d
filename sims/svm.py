"""Att-SVM study: ``python -m sims.svm [-m] [overrides]`` (conf/svm.yaml)."""

from rfattn.experiment.hydra_app import main
from rfattn.svm.study import run_svm_job

if __name__ == "__main__":
    main("svm", run_svm_job)
