"""Kernel spectra and learning-curve predictions drawn over the simulations.

- :mod:`~rfattn.theory.curves`: the eigenlearning equations of kernel ridge regression and
  the deterministic equivalent of random-feature ridge regression, on a :class:`Spectrum`;
- :mod:`~rfattn.theory.spectra`: spectra estimated from a Gram matrix, with a power-law tail;
- :mod:`~rfattn.theory.sphere`: exact spectra of dot-product kernels on a sphere;
- :mod:`~rfattn.theory.kernels`: the infinite-width kernel of every RFA model;
- :mod:`~rfattn.theory.settings`, :mod:`~rfattn.theory.rfa_jobs`,
  :mod:`~rfattn.theory.sphere_jobs`, :mod:`~rfattn.theory.study`: the study (settings, jobs;
  ``python -m sims.theory``).
"""

from .curves import (Curve, Spectrum, effective_regularization, learnability,
                     learning_curve)
from .spectra import compress, power_law_fit, sampled_spectrum, with_tail
from .sphere import funk_hecke, legendre, legendre_series, multiplicity, sphere_spectrum
from .study import STUDY, run_theory_job

__all__ = ["STUDY", "Curve", "Spectrum", "compress", "effective_regularization", "funk_hecke",
           "learnability", "learning_curve", "legendre", "legendre_series", "multiplicity",
           "power_law_fit", "run_theory_job", "sampled_spectrum", "sphere_spectrum", "with_tail"]
