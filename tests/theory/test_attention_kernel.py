"""Kind attention_kernel: infinite-head kernels against Monte Carlo checks and finite heads."""

import numpy as np
import pytest

from rfattn.core import ConfigError
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.rfa import rfa_relu_kernel
from rfattn.theory import attention_jobs  # noqa: F401  (patched below)
from rfattn.theory.study import STUDY

TINY = ["+experiment=theory_attention_kernels_quick", "n_sample=64", "heads_grid=[16,64,256]",
        "draws=6", "check_heads=1024"]
WALL_CLOCK = "seconds"  # the only metric that is not a function of config and seed


def config(*overrides):
    return job_config(compose("theory", [*TINY, *overrides]))


def slope(rows):
    finite = rows[rows.analysis == "finite_heads"].groupby("M").value.mean()
    return np.polyfit(np.log(finite.index.values.astype(float)), np.log(finite.values), 1)[0]


@pytest.mark.parametrize("overrides, estimators", [
    (["model=rfa_biased"], None),  # zero-mean ReLU: tests/rfa
    (["model=rfa_softmax"], {"plain", "control_variate", "hermite"}),
    # the control variate expands around zero-mean scores: none for biased heads
    (["model=rfa_biased", "model.activation=softmax"], {"plain", "hermite"})])
def test_kernels_pass_the_checks_and_finite_heads_converge_at_one_over_m(overrides, estimators):
    rows = STUDY.run(config(*overrides))
    z = rows[rows.metric == "z"].value
    assert len(z) == 4 and z.abs().max() < 4.0
    assert slope(rows) == pytest.approx(-1.0, abs=0.15)
    if estimators:
        est = rows[rows.analysis == "estimator"].pivot_table(index="estimator", columns="metric",
                                                              values="value")
        assert set(est.index) == estimators
        if "control_variate" in estimators:
            assert est.relative_stderr["plain"] > 2.0 * est.relative_stderr["control_variate"]
        # the expansion against one of degree + 4: within its bound, far below Monte Carlo
        bound = rows[rows.analysis == "reference"].value.iloc[0]
        assert 0 < est.relative_error["hermite"] < bound < 1e-5
        assert bound < 1e-3 * est.relative_stderr["plain"]


def test_the_check_catches_a_wrong_kernel(monkeypatch):
    """The biased model checked against the zero-mean kernel: the z-scores leave the normal."""
    def zero_mean(x0, X, variance, c):
        return rfa_relu_kernel(x0, X, variance=variance, c=0.0)

    monkeypatch.setattr(attention_jobs, "rfa_relu_kernel", zero_mean)
    rows = STUDY.run(config("model=rfa_biased"))
    z = rows[rows.metric == "z"].value
    assert (z**2).mean() > 10.0  # about 1 with the right kernel


def test_same_config_and_seed_give_the_same_numbers():
    first, second = (STUDY.run(config("model=rfa_softmax", "check_heads=512"))
                     for _ in range(2))
    keep = first.metric != WALL_CLOCK
    assert first[keep].equals(second[keep])


@pytest.mark.parametrize("override, message", [
    ("heads_grid=[64]", "heads_grid needs at least two"),
    ("check_heads=100", "check_heads must be >= 512"),
    ("model=rfmlp", "no infinite-head kernel here"),
    ("nodes=7", "nodes must be >= degree \\+ 2 = 8"),
    ("nodes=17", "^nodes\\*\\*d must be <= 65536"),
    ("nodes=13", "\\(nodes \\+ 4\\)\\*\\*d must be <= 65536"),
    ("draws=0", "draws"),
])
def test_bad_settings_are_one_line(override, message):
    extra = ["model=rfa_softmax"] if override.startswith("nodes") else []
    with pytest.raises(ConfigError, match=message):
        STUDY.validate(config(*extra, override))
