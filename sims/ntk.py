"""NTK study: ``python -m sims.ntk [-m] [overrides]`` (conf/ntk.yaml)."""

from rfattn.experiment.hydra_app import main
from rfattn.ntk.study import run_ntk_job

if __name__ == "__main__":
    main("ntk", run_ntk_job)
