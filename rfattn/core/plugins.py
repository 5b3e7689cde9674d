"""A user's own function, named in a config as ``module:function`` (the form of entry points).

``target.fn=mymodule:f`` or ``model.activation=mymodule:g`` name a function of the user's own
module, found on ``PYTHONPATH`` (or the working folder of ``python -m``): no file of the package
changes. :func:`load_plugin` imports it and :func:`call_plugin` calls it on a small sample,
so that a missing module or attribute, a wrong signature, a wrong output shape or non-finite
values end in one line that names the setting, before any job runs.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

import torch

from .checks import ConfigError

SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_plugin(value) -> bool:
    """Whether a setting's value has the form ``module:function``."""
    return isinstance(value, str) and bool(SPEC.match(value))


def load_plugin(setting: str, spec: str) -> Callable:
    """The callable ``spec`` = ``module:function`` names (``function`` may be dotted).

    Parameters
    ----------
    setting : str
        The config key, for the error message (``target.fn``).
    spec : str
        ``package.module:function`` or ``module:Class.method``.

    Returns
    -------
    callable

    Raises
    ------
    ConfigError
        The spec is malformed, the module cannot be imported, the attribute is missing or is
        not callable.
    """
    if not is_plugin(spec):
        raise ConfigError(f"{setting} must have the form module:function (got {spec!r})")
    module_name, attribute = spec.split(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{setting}={spec}: cannot import module {module_name!r} ({err}); "
                          "is its folder on PYTHONPATH?") from None
    except Exception as err:  # the user's module itself failed while importing
        raise ConfigError(f"{setting}={spec}: importing {module_name!r} raised "
                          f"{type(err).__name__}: {err}") from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{setting}={spec}: module {module_name!r} has no attribute "
                              f"{attribute!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{setting}={spec}: {attribute!r} is not callable")
    return obj


def call_plugin(setting: str, spec: str, fn: Callable, *args, shape: tuple[int, ...],
                signature: str) -> torch.Tensor:
    """Call a user's function on a sample and check its output.

    Parameters
    ----------
    setting, spec : str
        The config key and its value, for the error message.
    fn : callable
        The loaded function.
    *args
        Its arguments (float64 tensors).
    shape : tuple of int
        The output shape it must return.
    signature : str
        What it should take and return, for the error message (``f(x0 (n, d), X (n, N, d))
        -> (n,)``).

    Returns
    -------
    Tensor
        The output as a float64 tensor on the arguments' device.

    Raises
    ------
    ConfigError
        The call raised, or its output is not a real array of ``shape`` with finite values.
    """
    try:
        out = fn(*args)
    except Exception as err:
        raise ConfigError(f"{setting}={spec}: calling it as {signature} raised "
                          f"{type(err).__name__}: {err}") from None
    try:
        out = torch.as_tensor(out, dtype=torch.float64, device=args[0].device)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"{setting}={spec}: it must return an array of numbers, as "
                          f"{signature} (got {type(out).__name__})") from None
    if tuple(out.shape) != tuple(shape):
        raise ConfigError(f"{setting}={spec}: it must return shape {tuple(shape)}, as "
                          f"{signature} (got {tuple(out.shape)})")
    if not bool(torch.isfinite(out).all()):
        raise ConfigError(f"{setting}={spec}: it returned NaN or inf on a sample of inputs")
    return out
