"""Learning-curve theory: ``python -m sims.theory [-m] [overrides]`` (conf/theory.yaml).

Console script: ``rfattn-theory``.
"""

from rfattn.experiment.hydra_app import main
from rfattn.theory.study import STUDY


def cli() -> None:
    """``rfattn-theory`` (the same as ``python -m sims.theory``)."""
    main(STUDY)


if __name__ == "__main__":
    cli()
