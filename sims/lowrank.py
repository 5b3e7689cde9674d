"""Low-rank and pruning study: ``python -m sims.lowrank [-m] [overrides]`` (conf/lowrank.yaml)."""

from rfattn.experiment.hydra_app import main
from rfattn.lowrank.study import run_lowrank_job

if __name__ == "__main__":
    main("lowrank", run_lowrank_job)
