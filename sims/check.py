"""``rfattn-check STUDY [-m] [OVERRIDES]``: check a run or a sweep before launching anything
(:mod:`rfattn.experiment.check`), for every study of the lab."""

from rfattn.experiment.check import main

from . import lowrank, ntk, rfa, svm, theory

STUDIES = {module.STUDY.name: module.STUDY for module in (rfa, svm, lowrank, ntk, theory)}


def cli() -> None:
    """``rfattn-check`` (the same as ``python -m sims.check``)."""
    raise SystemExit(main(STUDIES))


if __name__ == "__main__":
    cli()
