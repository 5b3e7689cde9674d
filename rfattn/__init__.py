"""rfattn: a theory-and-simulation lab for attention and random features.

Lenses (each a subpackage with a small public surface):

- :mod:`rfattn.rfa`  random-feature attention (Fu, Guo, Bai, Mei 2023, arXiv 2307.11353)
- :mod:`rfattn.linalg`  shared numerics: ridge paths from one eigendecomposition
- :mod:`rfattn.experiment`  run records, collect, plots, claims, Hydra glue
"""

__version__ = "0.1.0"
