"""Random-feature attention study: ``python -m sims.rfa [-m] [overrides]`` (conf/rfa.yaml).

Console script: ``rfattn-rfa``.
"""

from rfattn.experiment.hydra_app import main
from rfattn.rfa.study import STUDY


def cli() -> None:
    """``rfattn-rfa`` (the same as ``python -m sims.rfa``)."""
    main(STUDY)


if __name__ == "__main__":
    cli()
