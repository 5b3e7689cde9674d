"""Input validation with messages that name the parameter and the allowed values.

Every public entry point validates its arguments before any work, in the style of
scikit-learn's ``check_*`` helpers: a bad value raises :class:`ConfigError` (a ``ValueError``)
whose message starts with the parameter's name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real


class ConfigError(ValueError):
    """A configuration value or argument outside its allowed range.

    Raised before any work, with one line that names the parameter, its allowed range and the
    value given (for example ``n must be an integer >= 1 (got 0)``). The study entry points print
    that line and exit with status 2.
    """


class DivergenceError(ConfigError, FloatingPointError):
    """Training diverged: the step size (named in the message) is too large for the problem."""


def positive_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1 (got {value!r})")
    return int(value)


def nonnegative_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0 (got {value!r})")
    return int(value)


def seed_value(name: str, value) -> int:
    """A seed: an integer >= 0."""
    return nonnegative_int(name, value)


def boolean(name: str, value) -> bool:
    """``True`` or ``False`` exactly (not a string such as ``maybe``, not 0 or 1)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false (got {value!r})")
    return value


def positive_ints(name: str, values) -> list[int]:
    """A non-empty sequence of integers >= 1, returned sorted ascending without duplicates."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"{name} must be a non-empty list of integers >= 1 (got {values!r})")
    out = [positive_int(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if not out:
        raise ConfigError(f"{name} must be a non-empty list of integers >= 1 (got [])")
    return sorted(set(out))


def sequence(name: str, values, check_item, allow_empty: bool = False) -> list:
    """A list whose items pass ``check_item(f"{name}[i]", item)``; returns the checked items."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"{name} must be a list (got {values!r})")
    out = [check_item(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if not out and not allow_empty:
        raise ConfigError(f"{name} must be a non-empty list (got [])")
    return out


def text(name: str, value) -> str:
    """A non-empty string (a label)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string (got {value!r})")
    return value


def real(name: str, value, *, low: float | None = None, high: float | None = None,
         low_open: bool = False) -> float:
    """A finite real number in [low, high] (or (low, high] when ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number (got {value!r})")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        left = "(" if low_open else "["
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(f"{name} must lie in {left}{lo}, {hi}] (got {value!r})")
    return value


def nonnegative(name: str, value) -> float:
    """A finite real number >= 0."""
    return real(name, value, low=0.0)


def positive(name: str, value) -> float:
    """A finite real number > 0."""
    return real(name, value, low=0.0, low_open=True)


def choice(name: str, value, allowed: Sequence[str]) -> str:
    """One of the ``allowed`` strings."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))} (got {value!r})")
    return value


def fits_in_memory(what: str, nbytes: float, available: float, hint: str) -> None:
    """Raise before any work when an allocation of ``nbytes`` would not fit in ``available``."""
    if nbytes > available:
        raise ConfigError(
            f"{what} needs {nbytes / 2**30:.2f} GiB but only {available / 2**30:.2f} GiB "
            f"is available; {hint}"
        )


def finite_array(name: str, value):
    """A tensor (or array, converted to a float64 tensor) without NaN or inf entries."""
    import torch

    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ConfigError(f"{name} must be an array of numbers ({err})") from None
    if value.is_floating_point():
        rows = max(1, 2**24 // max(1, math.prod(value.shape[1:]))) if value.ndim else 1
        chunks = value.split(rows) if value.ndim else (value,)  # no n x n bool temporary
        if not all(bool(torch.isfinite(chunk).all()) for chunk in chunks):
            raise ConfigError(f"{name} holds NaN or inf entries")
    return value
