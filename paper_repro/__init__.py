"""One module per paper: its figures and its measured claims, from named configs."""

from . import rfa

STUDIES = {"rfa": rfa}
