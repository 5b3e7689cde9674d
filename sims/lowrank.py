"""Low-rank and pruning study: ``python -m sims.lowrank [-m] [overrides]`` (conf/lowrank.yaml).

Console script: ``rfattn-lowrank``.
"""

from rfattn.experiment.hydra_app import main
from rfattn.lowrank.study import STUDY


def cli() -> None:
    """``rfattn-lowrank`` (the same as ``python -m sims.lowrank``)."""
    main(STUDY)


if __name__ == "__main__":
    cli()
