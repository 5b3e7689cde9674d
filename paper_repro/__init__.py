"""One module per paper: its figures and its measured claims, from named configs."""

from . import lowrank, ntk, rfa

STUDIES = {"rfa": rfa, "ntk": ntk, "lowrank": lowrank}
