"""NTK study jobs at tiny sizes: every kind runs, is deterministic and validates its input."""

import pytest

from rfattn.core import ConfigError
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.ntk.study import STUDY, run_ntk_job

TINY = {"kernel_drift": ["width=16", "steps=5", "angles=9", "n=6"],
        "gaussian_limit": ["width=16", "steps=20", "angles=9"],
        "mode_decay": ["width=16", "steps=20", "n=40", "record_every=5"],
        "width_convergence": ["width=16", "n=6"],
        "random_features": ["m_grid=[16,64]"],
        "snnk_layer": ["m_grid=[16,64]", "n=6"],
        "snnk_bundled": ["dataset=diabetes", "hidden=[4]", "m_layer=4", "m_bundle=[8]",
                         "steps=20", "eval_every=10"],
        "attention_ntk": ["heads=8", "n=4"],
        "attention_training": ["heads=8", "n_grid=[4,8]", "n_test=8", "steps=5"]}
WALL_CLOCK = "fit_seconds"  # the only metric that is not a function of config and seed


def tiny(kind, *overrides):
    return job_config(compose("ntk", [f"kind={kind}", *TINY[kind], *overrides]))


@pytest.mark.parametrize("kind", STUDY.kinds)
def test_every_kind_runs_and_is_deterministic(kind):
    cfg = tiny(kind)
    a, b = run_ntk_job(cfg), run_ntk_job(cfg)
    assert len(a) and a.value.notna().all()
    a, b = (rows[rows.metric != WALL_CLOCK].reset_index(drop=True) for rows in (a, b))
    assert a.equals(b)


def test_mode_decay_error_follows_the_kernel_prediction():
    # gradient flow predicts 0.5 exp(-lambda_2 t); lr-1 steps decay like (1 - lambda_2)^t,
    # about 3% faster by t = 60, and finite width adds a few percent more
    rows = run_ntk_job(tiny("mode_decay", "width=1024", "steps=60", "n=64", "record_every=20"))
    along = rows[rows.phase == "along f2"].set_index("t").value
    theory = rows[rows.phase == "theory"].set_index("t").value
    assert ((along - theory).abs() / theory.abs()).max() < 0.1


def test_the_limit_follows_the_network_settings():
    # the limit drawn next to the networks is that of their activation and weight scale
    rows = run_ntk_job(tiny("kernel_drift", "activation=tanh", "w_std=2.0"))
    relu = run_ntk_job(tiny("kernel_drift"))
    limit = rows[rows.phase == "limit"].value.to_numpy()
    assert abs(limit - relu[relu.phase == "limit"].value.to_numpy()).max() > 0.1
    assert (rows.activation == "tanh").all() and (rows.w_std == 2.0).all()


@pytest.mark.parametrize("kind,override,param", [
    ("kernel_drift", "width=0", "width"), ("kernel_drift", "depth=0", "depth"),
    ("kernel_drift", "lr=-1.0", "lr"), ("random_features", "function=tanh", "function"),
    ("mode_decay", "n=100000", "n must lie in \\[1, 1797\\]"),
    ("gaussian_limit", "train_angles=[]", "train_angles"),
    ("width_convergence", "n=0", "n"), ("kernel_drift", "angles=0", "angles"),
    ("random_features", "n=0", "n"), ("attention_ntk", "d_key=0", "d_key"),
    ("attention_ntk", "scaling=sqrt", "no closed-form kernel under scaling=sqrt"),
    ("attention_training", "target_family=custom", "target_family")])
def test_bad_values_are_named(kind, override, param):
    with pytest.raises(ConfigError, match=param):
        run_ntk_job(tiny(kind, override))


def test_unknown_kind_and_keys_of_another_kind_are_refused():
    cfg = tiny("kernel_drift")
    with pytest.raises(ConfigError, match="kind must be one of"):
        run_ntk_job({**cfg, "kind": "fig4"})
    with pytest.raises(ConfigError, match="lr is not a setting"):
        run_ntk_job({**tiny("width_convergence"), "lr": -5.0})
