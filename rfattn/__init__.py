"""rfattn: a theory-and-simulation lab for attention and random features.

Floors, imported one way (lenses -> linalg -> core; the harness calls lenses through their
task functions):

- :mod:`rfattn.core`  the foundation: validation (ConfigError), device, dtype, seeded streams,
  and the lens contract (Settings)
- :mod:`rfattn.linalg`  shared numerics: ridge paths from one eigendecomposition, arc-cosine
  kernel formulas, block sizing, Monte Carlo means

Lenses (each a subpackage with a small public surface and a study job ``run_<lens>_job``):

- :mod:`rfattn.rfa`  random-feature attention (Fu, Guo, Bai, Mei 2023, arXiv 2307.11353)
- :mod:`rfattn.svm`  attention as an SVM (Tarzanagh, Li, Thrampoulidis, Oymak 2023,
  arXiv 2308.16898)
- :mod:`rfattn.lowrank`  the one-layer transformer's low-rank updates and pruning (Li, Wang,
  Zhang, Liu, Chen 2024, arXiv 2406.17167)
- :mod:`rfattn.ntk`  neural tangent kernels, empirical and analytic (Jacot, Gabriel, Hongler
  2018), and universal random features (Sehanobish et al. 2024)

The harness:

- :mod:`rfattn.experiment`  run records, collect, plotting, claims and the report, Hydra glue
"""

import os
import platform

__version__ = "0.1.0"

# Same config and seed, same numbers on every x86-64 CPU: torch picks its vectorized CPU kernels
# by the machine (AVX2 or AVX-512), and their summation orders differ in the last bits, which
# long gradient-descent runs amplify (E3's mean correlation moved by 2e-6). The lab pins AVX2
# kernels unless ATEN_CPU_CAPABILITY is set; it takes effect when torch has run no kernel yet,
# and run records keep the capability actually used. BLAS (matrix products) is not affected.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
