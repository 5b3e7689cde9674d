"""Learning-curve theory: ``python -m sims.theory [-m] [overrides]`` (conf/theory.yaml).

Console script: ``rfattn-theory``.
"""

from rfattn.experiment.hydra_app import main
from rfattn.theory.study import run_theory_job


def cli() -> None:
    """``rfattn-theory`` (the same as ``python -m sims.theory``)."""
    main("theory", run_theory_job)


if __name__ == "__main__":
    cli()
