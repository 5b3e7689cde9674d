r"""Nuclear-norm KQ-SVM by a primal-dual interior-point method, certified by a duality gap.

The (K, Q)-parameterized attention converges in direction to the KQ-SVM
:math:`\min \|W\|_*` s.t. :math:`\langle A_j, W\rangle \ge 1` (Tarzanagh, Li, Thrampoulidis,
Oymak 2023, arXiv 2308.16898, Theorem 5). Its semidefinite form (Fazel, Hindi, Boyd 2001;
Recht, Fazel, Parrilo 2010) is solved by infeasible-start path following; every result is
certified by rigorous bounds on both sides of the optimum.

Modules, in the order a solve uses them:

- :mod:`.solve`: :func:`solve_nuclear`, the driver (working set, phases, statuses);
- :mod:`.tolerances`: its :class:`Tolerances`, all derived from ``gap_tol``;
- :mod:`.interior_point`: the HKM predictor-corrector path and its Schur complement;
- :mod:`.certificate`: :func:`nuclear_bounds`, the candidates that tighten them, and the
  :class:`Certificate` that keeps the best bounds of a solve;
- :mod:`.newton`: Newton steps on the rank and support an iterate reveals;
- :mod:`.dense`: small dense linear algebra through LAPACK.
"""

from .certificate import Certificate, nuclear_bounds
from .solve import solve_nuclear
from .tolerances import Tolerances

__all__ = ["Certificate", "Tolerances", "nuclear_bounds", "solve_nuclear"]
