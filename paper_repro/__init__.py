"""One module per paper: its figures and its measured claims, from named configs."""

from . import attention, lowrank, ntk, rfa, snnk, svm, theory

STUDIES = {"rfa": rfa, "theory": theory, "ntk": ntk, "svm": svm, "lowrank": lowrank,
           "snnk": snnk, "attention": attention}
