"""The lens contract: a study's config becomes a frozen, validated ``Settings`` dataclass.

Every lens exposes ``validate(cfg) -> Settings`` and ``run_<lens>_job(cfg) -> DataFrame``.
Defaults live once, in the YAML configs: a Settings field has no default unless the field is
optional for some variant of the study (then its default is None: "not used here").
:func:`settings_from` builds a dataclass from a plain config mapping, refusing missing and
unknown keys with a :class:`~rfattn.core.checks.ConfigError` that names the key; each lens
then checks the values. :class:`RunSettings` holds what every job shares (seed, device,
dtype) and resolves the device and dtype the same way for all of them.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping

import torch

from .checks import ConfigError, choice, seed_value
from .runtime import DTYPES, resolve_device, resolve_dtype


def settings_from(cls, cfg, where: str = ""):
    """Build the dataclass ``cls`` from the mapping ``cfg``.

    Parameters
    ----------
    cls : type
        A dataclass. Fields whose type is itself a dataclass are built recursively from the
        nested mapping of the same name.
    cfg : Mapping
        The (resolved) config.
    where : str
        Prefix of the keys in error messages (``"model."`` for a nested node).

    Returns
    -------
    cls
        The settings, with every field taken from ``cfg``.

    Raises
    ------
    ConfigError
        A required key is missing, a key is not a field of ``cls`` (a mistyped or unused key),
        or a nested node is not a mapping.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where.rstrip('.') or 'config'} must be a mapping of settings "
                          f"(got {cfg!r})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        raise ConfigError(f"{where}{unknown[0]} is not a setting of {describe(cls)}; its "
                          f"settings are {', '.join(where + name for name in fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name not in cfg:
            if field.default is dataclasses.MISSING:
                raise ConfigError(f"{where}{name} is missing from the config")
            continue
        value = cfg[name]
        if dataclasses.is_dataclass(hints[name]):
            value = settings_from(hints[name], value, f"{where}{name}.")
        values[name] = value
    return cls(**values)


def describe(cls) -> str:
    """The first line of a settings class's docstring, without its final period."""
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip(".")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What every job shares: its seed, where it runs and in which precision.

    Attributes
    ----------
    seed : int
        The job's seed (>= 0); every random stream is named ``(seed, purpose)``.
    device : str
        ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:K``.
    dtype : str
        ``float64`` (theory checks) or ``float32``.
    """

    seed: int
    device: str
    dtype: str

    def __post_init__(self):
        seed_value("seed", self.seed)
        choice("dtype", self.dtype, list(DTYPES))
        resolve_device(self.device)  # an unknown or absent device is named before any work

    @functools.cached_property
    def torch_device(self) -> torch.device:
        """The device the job runs on (``auto`` resolved)."""
        return resolve_device(self.device)

    @functools.cached_property
    def torch_dtype(self) -> torch.dtype:
        return resolve_dtype(self.dtype)
