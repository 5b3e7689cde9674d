"""The lens contract in code: a :class:`Study` turns a config into validated settings and rows.

Every lens (and the theory) builds one ``Study`` from its settings classes and its job::

    STUDY = Study("rfa", RFASettings, rfa_rows)                     # one settings class
    STUDY = Study("ntk", {"kernel_drift": KernelDriftSettings, ...}, ntk_rows)   # by kind

and the harness (``rfattn.experiment``) handles every study the same way: ``validate`` before
anything runs, ``check`` (memory against the device) before a job is launched, the cost
estimates for ``rfattn-check``, and ``run`` inside the job's folder. The settings classes carry
their own cost model (:class:`JobSettings`), so nothing asks a settings object what it is.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import ClassVar

from .checks import choice, fits_in_memory
from .runtime import available_memory, get_logger
from .settings import RunSettings, settings_from

MEMORY_SHARE = 0.8  # a job plans on this share of the memory its device has available
log = get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class JobSettings(RunSettings):
    """Settings of one job: :class:`RunSettings` plus the job's cost model.

    Subclasses implement :meth:`estimate_memory` and :meth:`estimate_seconds`, name what to
    lower when a job does not fit (``memory_hint``), and put checks that need more than the
    values' ranges (a constant target, a user's plug-in called on a sample) in
    :meth:`check_values`, which :meth:`Study.validate` runs once the settings are built.

    Attributes
    ----------
    seed, device, dtype
        As :class:`~rfattn.core.settings.RunSettings`.
    memory_hint : str
        What to lower when the job does not fit (class attribute).
    """

    memory_hint: ClassVar[str] = "lower the sizes"

    def estimate_memory(self) -> int:
        """Peak bytes of the job's largest tensors."""
        raise NotImplementedError

    def estimate_seconds(self) -> float:
        """Rough run time on a 2-core CPU."""
        raise NotImplementedError

    @property
    def job_label(self) -> str:
        """How the memory check and the log name the job."""
        return "the job"

    def check_values(self) -> None:
        """Checks that need work beyond each value's range (none by default)."""

    def check_fits(self) -> None:
        """Refuse, before any work, a job whose memory estimate exceeds ``MEMORY_SHARE`` of
        what its device has available.

        Raises
        ------
        ConfigError
            Naming the estimate, the memory available and what to lower.
        """
        fits_in_memory(self.job_label, self.estimate_memory(),
                       MEMORY_SHARE * available_memory(self.torch_device), self.memory_hint)


@dataclasses.dataclass(frozen=True)
class KindSettings(JobSettings):
    """Settings of a study with several job kinds (``kind`` picks the settings class).

    Attributes
    ----------
    kind : str
        The job's kind, one of the study's (:attr:`Study.kinds`).
    """

    kind: str

    @property
    def job_label(self) -> str:
        return f"kind {self.kind}"


@dataclasses.dataclass(frozen=True)
class Study:
    """A lens's study: its settings (one class, or one per ``kind``) and its job.

    Parameters
    ----------
    name : str
        The study's name: its primary config ``conf/<name>.yaml`` and ``rfattn-<name>``.
    settings : type or Mapping[str, type]
        The :class:`JobSettings` subclass of a job, or one per value of the config's ``kind``.
    job : callable
        Validated settings -> tidy rows (a DataFrame with ``seed``, ``metric``, ``value``).
    """

    name: str
    settings: type | Mapping[str, type]
    job: Callable

    @property
    def kinds(self) -> tuple[str, ...]:
        """The study's job kinds (empty for a study with one settings class)."""
        return tuple(self.settings) if isinstance(self.settings, Mapping) else ()

    def settings_class(self, cfg: Mapping) -> type:
        """The settings class of a config (by its ``kind`` where the study has kinds)."""
        if not self.kinds:
            return self.settings
        return self.settings[choice("kind", cfg.get("kind"), self.kinds)]

    def validate(self, cfg: Mapping) -> JobSettings:
        """Check every value of a job config before any work.

        Parameters
        ----------
        cfg : Mapping
            A resolved config composed from ``conf/<name>.yaml``.

        Returns
        -------
        JobSettings
            The frozen settings of the job's kind.

        Raises
        ------
        ConfigError
            Naming the first bad key and its allowed values.
        """
        settings = settings_from(self.settings_class(cfg), cfg)
        settings.check_values()
        return settings

    def check(self, cfg: Mapping) -> JobSettings:
        """:meth:`validate`, then the memory check (:meth:`JobSettings.check_fits`)."""
        settings = self.validate(cfg)
        settings.check_fits()
        return settings

    def run(self, cfg: Mapping):
        """:meth:`check` the config, then run the job on its settings: its tidy rows (a
        DataFrame with ``seed``, ``metric``, ``value`` and the setting columns)."""
        settings = self.check(cfg)
        start = time.perf_counter()
        rows = self.job(settings)
        log.info("%s %s done in %.1fs: %d rows", self.name, settings.job_label,
                 time.perf_counter() - start, len(rows))
        return rows
