"""Every threshold of the nuclear solver, derived from one relative duality gap."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.checks import ConfigError, real


@dataclass(frozen=True)
class Tolerances:
    """Every threshold of :func:`solve_nuclear`, in relative duality gap unless said.

    Build with :meth:`from_gap_tol`. The phase gaps (``newton_from``, ``endgame``) do not
    depend on ``gap_tol``; the others are multiples of ``aim = gap_tol / 10``.

    Attributes
    ----------
    gap_tol : float
        A solve is ``optimal`` when its certified gap is at most this.
    aim : float
        The gap the solver aims at, ``gap_tol / 10``: a candidate sequence stops there.
    certify_iterate : float
        Iterates are offered to the certificate from this gap (``10 aim``).
    full_step_iterate : float
        Full corrector steps are offered when their iterate's gap is at most this
        (``1e4 aim``) ...
    full_step : float
        ... and their own gap at most this (``100 aim``).
    newton_residual : float
        Newton points are certified only when their relative residual is at most this
        (``100 aim``): the gap tracks the residual to within about 3x.
    converged : float
        The path stops, uncertified, once its gap and infeasibility are both below this
        (``aim / 10``).
    newton_from : float
        Newton steps are first tried from this gap (1e-2) ...
    newton_every : float
        ... and again each time the gap has fallen by this factor (1e-2).
    endgame : float
        From this gap (1e-4) the working set grows by violated constraints, iterates are
        certified and clearly inactive constraints leave the interior-point system.
    """

    gap_tol: float
    aim: float
    certify_iterate: float
    full_step_iterate: float
    full_step: float
    newton_residual: float
    converged: float
    newton_from: float = 1e-2
    newton_every: float = 1e-2
    endgame: float = 1e-4

    @classmethod
    def from_gap_tol(cls, gap_tol: float) -> Tolerances:
        """The tolerances of a solve certified to relative gap ``gap_tol`` in (0, 1)."""
        gap_tol = real("gap_tol", gap_tol, low=0.0, high=1.0, low_open=True)
        if gap_tol == 1.0:
            raise ConfigError("gap_tol must lie in (0, 1) (got 1.0)")
        aim = 0.1 * gap_tol
        return cls(gap_tol=gap_tol, aim=aim, certify_iterate=10 * aim,
                   full_step_iterate=1e4 * aim, full_step=100 * aim,
                   newton_residual=100 * aim, converged=0.1 * aim)
