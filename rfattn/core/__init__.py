"""The foundation floor: input validation, device and dtype, seeded random streams.

Every lens and :mod:`rfattn.linalg` build on this package; it imports nothing else of
rfattn. Public surface::

    ConfigError                                   # bad input, named before any work
    resolve_device, resolve_dtype, generator      # runtime choices every study shares
    Study, JobSettings, KindSettings              # the lens contract: settings -> job -> rows
    load_plugin                                   # a user's ``module:function``
"""

from .checks import ConfigError
from .plugins import load_plugin
from .runtime import generator, resolve_device, resolve_dtype
from .study import JobSettings, KindSettings, Study

__all__ = ["ConfigError", "JobSettings", "KindSettings", "Study", "generator", "load_plugin",
           "resolve_device", "resolve_dtype"]
