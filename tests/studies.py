"""Every study of the lab by name, as the console scripts see them (``sims.check``)."""

from sims.check import STUDIES

__all__ = ["STUDIES"]
