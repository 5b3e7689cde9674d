"""Att-SVM study: ``python -m sims.svm [-m] [overrides]`` (conf/svm.yaml).

Console script: ``rfattn-svm``.
"""

from rfattn.experiment.hydra_app import main
from rfattn.svm.study import STUDY


def cli() -> None:
    """``rfattn-svm`` (the same as ``python -m sims.svm``)."""
    main(STUDY)


if __name__ == "__main__":
    cli()
