"""The foundation floor: input validation, device and dtype, seeded random streams.

Every lens and :mod:`rfattn.linalg` build on this package; it imports nothing else of
rfattn. Public surface::

    ConfigError                                   # bad input, named before any work
    resolve_device, resolve_dtype, generator      # runtime choices every study shares
"""

from .checks import ConfigError
from .runtime import generator, resolve_device, resolve_dtype

__all__ = ["ConfigError", "generator", "resolve_device", "resolve_dtype"]
