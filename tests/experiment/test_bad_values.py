"""Every key of every study, tried with the bad values of its type: a ConfigError that names the
key, before any work (or, for a value that is allowed, a clean pass)."""

import copy
import dataclasses
import math
import time
import typing

import pytest

from rfattn.core import ConfigError
from rfattn.experiment.hydra_app import compose, job_config
from tests.studies import STUDIES

#: base configs: every rfa model family, every kind of the other studies
BASES = [("rfa", ["model=rfa"]), ("rfa", ["model=rfa_biased"]), ("rfa", ["model=rfmlp"]),
         ("rfa", ["model=kernel"]), ("rfa", ["target=similarity"]),
         *[(lens, [f"kind={kind}"]) for lens in ("svm", "lowrank", "ntk")
           for kind in STUDIES[lens].kinds]]
HUGE = 10**12
#: bad values by type; "never" values must always be refused, the others may be allowed
NEVER = {"nan": math.nan, "inf": math.inf, "string": "abc", "empty": []}
MAYBE = {"zero": 0, "negative": -1, "huge": HUGE}
LABELS = {"model.name"}  # free text


def leaves(cls, prefix=""):
    """(key path, type) of every setting of a Settings class, nested ones and list elements
    included."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        path = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(kind):
            yield from leaves(kind, f"{path}.")
            continue
        yield path, kind
        args = typing.get_args(kind)
        if typing.get_origin(kind) is tuple and args:
            yield f"{path}[0]", args[0]


def set_value(cfg, path, value):
    cfg = copy.deepcopy(cfg)
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node[key]
    if last.endswith("[0]"):
        node[last[:-3]] = [value, *list(node[last[:-3]])[1:]]
    else:
        node[last] = value
    return cfg


def candidates(kind, free_text=False):
    """Bad values for a setting of type ``kind``, with whether they must be refused."""
    base = typing.get_args(kind) or (kind,)
    if bool in base:
        return {**{k: (v, True) for k, v in {**NEVER, **MAYBE}.items()}, "int 1": (1, True)}
    out = {k: (v, True) for k, v in NEVER.items()}
    out.update({k: (v, False) for k, v in MAYBE.items()})
    if str in base:
        out.update({"zero": (0, True), "negative": (-1, True), "huge": (HUGE, True)})
        if free_text:  # a label: any non-empty string
            out["string"] = ("abc", False)
    if int in base:
        out.update({"float": (2.5, True), "negative": (-1, True)})
    if dict in base:
        out = {k: (v, True) for k, v in {**NEVER, **MAYBE}.items() if k != "empty"}
    return out


@pytest.mark.parametrize("lens,overrides", BASES, ids=lambda x: x if isinstance(x, str)
                         else ",".join(x))
def test_every_key_refuses_its_bad_values_by_name(lens, overrides):
    study = STUDIES[lens]
    cfg = job_config(compose(lens, overrides))
    settings_class = type(study.validate(cfg))
    tried, problems = 0, []
    for path, kind in leaves(settings_class):
        if path.split(".")[-1] in ("device",):  # resolved against this machine's devices
            continue
        for label, (value, must_refuse) in candidates(kind, path in LABELS).items():
            bad = set_value(cfg, path, value)
            start = time.perf_counter()
            try:
                study.check(bad)
                refused = None
            except ConfigError as err:
                refused = str(err)
            except Exception as err:  # a raw error is a defect
                problems.append(f"{path}={value!r} ({label}): {type(err).__name__}: {err}")
                continue
            seconds = time.perf_counter() - start
            tried += 1
            key = path.split(".")[-1].replace("[0]", "")
            if refused is None and must_refuse:
                problems.append(f"{path}={value!r} ({label}) was accepted")
            elif refused is not None and key not in refused:
                problems.append(f"{path}={value!r} ({label}): the error does not name {key}: "
                                f"{refused}")
            elif seconds > 1.0:
                problems.append(f"{path}={value!r} ({label}) took {seconds:.1f}s to check")
    assert tried > 20 and not problems, "\n".join(problems)
