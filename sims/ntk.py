"""NTK study: ``python -m sims.ntk [-m] [overrides]`` (conf/ntk.yaml).

Console script: ``rfattn-ntk``.
"""

from rfattn.experiment.hydra_app import main
from rfattn.ntk.study import STUDY


def cli() -> None:
    """``rfattn-ntk`` (the same as ``python -m sims.ntk``)."""
    main(STUDY)


if __name__ == "__main__":
    cli()
