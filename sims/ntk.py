"""NTK study: ``python -m sims.ntk [-m] [overrides]`` (conf/ntk.yaml).

Console script: ``rfattn-ntk``.
"""

from rfattn.experiment.hydra_app import main
from rfattn.ntk.study import run_ntk_job


def cli() -> None:
    """``rfattn-ntk`` (the same as ``python -m sims.ntk``)."""
    main("ntk", run_ntk_job)


if __name__ == "__main__":
    cli()
