"""Att-SVM study: ``python -m sims.svm [-m] [overrides]`` (conf/svm.yaml)."""

import hydra
from omegaconf import DictConfig

from rfattn.experiment.hydra_app import run_hydra_job
from rfattn.svm.study import run_svm_job


@hydra.main(config_path="../conf", config_name="svm", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_hydra_job(cfg, run_svm_job)


if __name__ == "__main__":
    main()
