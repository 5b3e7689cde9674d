"""One module per paper: its figures and its measured claims, from named configs."""

from . import lowrank, ntk, rfa, svm

STUDIES = {"rfa": rfa, "ntk": ntk, "svm": svm, "lowrank": lowrank}
