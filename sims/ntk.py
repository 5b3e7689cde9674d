"""NTK study: ``python -m sims.ntk [-m] [overrides]`` (conf/ntk.yaml)."""

import hydra
from omegaconf import DictConfig

from rfattn.experiment.hydra_app import run_hydra_job
from rfattn.ntk.study import run_ntk_job


@hydra.main(config_path="../conf", config_name="ntk", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_hydra_job(cfg, run_ntk_job)


if __name__ == "__main__":
    main()
