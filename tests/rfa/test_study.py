"""The RFA study job: validation before work, determinism, sensible errors."""

import copy

import pytest

from rfattn.core import ConfigError
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.rfa.study import run_rfa_job

TINY = ["n_grid=[16,48]", "n_val=40", "n_test=60", "d=3", "N=3", "model.M=6", "ridge.num=5"]


def tiny(*overrides):
    return job_config(compose("rfa", TINY + list(overrides)))


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b = run_rfa_job(tiny()), run_rfa_job(tiny())
    assert a.equals(b)
    c = run_rfa_job(tiny("seed=1"))
    assert not a["value"].equals(c["value"])
    assert set(a.metric) == {"test_error", "val_error", "train_error", "gcv_error", "lambda"}
    assert (a.value >= 0).all()


@pytest.mark.parametrize("model", ["rfa", "rfa_biased", "rfa_softmax", "rfmlp", "kernel"])
def test_every_model_runs_and_learns_a_linear_single_key_target(model):
    rows = run_rfa_job(tiny(f"model={model}", "target=single_key", "target.degree=1",
                            "n_grid=[400]", "n_test=300",
                            "model.M=40", "ridge.num=10"))
    err = rows[rows.metric == "test_error"].value.iloc[0]
    assert 0 <= err < 0.8, f"{model} did not learn a degree-1 target: {err}"


def test_two_key_control_is_not_learned_by_relu_attention():
    rows = run_rfa_job(tiny("target=two_key", "n_grid=[600]", "model.M=60", "ridge.num=10"))
    assert rows[rows.metric == "test_error"].value.iloc[0] > 0.9


@pytest.mark.parametrize("key,value,param", [
    ("n_grid", [0, 16], "n_grid"), ("n_grid", [-3], "n_grid"), ("d", 0, "d"), ("N", 0, "N"),
    ("n_test", 0, "n_test"), ("seed", -1, "seed"), ("device", "tpu", "device"),
    ("dtype", "float16", "dtype"), ("noise_std", -1.0, "noise_std"),
    ("ridge.log10_min", float("nan"), "ridge.log10_min"), ("ridge.num", 0, "ridge.num"),
    ("model.M", 0, "model.M"), ("model.qk_variance", -0.1, "model.qk_variance"),
    ("model.activation", "gelu", "model.activation"), ("model.family", "lstm", "model.family"),
    ("model.qk_mean", "shifted", "model.qk_mean"), ("target.name", "cubic", "target"),
    ("ridge.selection", "cv", "ridge.selection")])
def test_bad_config_fails_before_work_naming_the_parameter(key, value, param):
    cfg = copy.deepcopy(tiny())
    node = cfg
    *path, last = key.split(".")
    for k in path:
        node = node[k]
    node[last] = value
    with pytest.raises(ConfigError, match=param.replace(".", r"\.")):
        run_rfa_job(cfg)


def test_a_size_that_does_not_fit_in_memory_is_refused():
    cfg = tiny("model=kernel", "n_grid=[10000000]")
    with pytest.raises(ConfigError, match="GiB"):
        run_rfa_job(cfg)


def test_leave_one_out_selection_runs():
    rows = run_rfa_job(tiny("ridge.selection=loo"))
    assert rows.value.notna().all()
