"""Random-feature attention study: ``python -m sims.rfa [-m] [overrides]`` (conf/rfa.yaml)."""

import hydra
from omegaconf import DictConfig

from rfattn.experiment.hydra_app import run_hydra_job
from rfattn.rfa.study import run_rfa_job


@hydra.main(config_path="../conf", config_name="rfa", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_hydra_job(cfg, run_rfa_job)


if __name__ == "__main__":
    main()
