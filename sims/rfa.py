"""Random-feature attention study: ``python -m sims.rfa [-m] [overrides]`` (conf/rfa.yaml)."""

from rfattn.experiment.hydra_app import main
from rfattn.rfa.study import run_rfa_job

if __name__ == "__main__":
    main("rfa", run_rfa_job)
