"""Low-rank and pruning study: ``python -m sims.lowrank [-m] [overrides]`` (conf/lowrank.yaml)."""

import hydra
from omegaconf import DictConfig

from rfattn.experiment.hydra_app import run_hydra_job
from rfattn.lowrank.study import run_lowrank_job


@hydra.main(config_path="../conf", config_name="lowrank", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_hydra_job(cfg, run_lowrank_job)


if __name__ == "__main__":
    main()
