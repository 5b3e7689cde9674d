"""NTK study jobs at tiny sizes: every kind runs, is deterministic and validates its input."""

import pytest

from rfattn.core import ConfigError
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.ntk.study import KINDS, run_ntk_job

TINY = {"fig1": ["width=16", "steps=5", "angles=9", "n_train=6"],
        "fig2": ["width=16", "steps=20", "angles=9"],
        "fig3": ["width=16", "steps=20", "n_train=40", "record_every=5"],
        "convergence": ["width=16", "n_inputs=6"],
        "random_features": ["m_grid=[16,64]"]}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_runs_and_is_deterministic(kind):
    cfg = job_config(compose("ntk", [f"kind={kind}", *TINY[kind]]))
    a, b = run_ntk_job(cfg), run_ntk_job(cfg)
    assert len(a) and a.equals(b)
    assert a.value.notna().all()


def test_fig3_error_follows_the_kernel_prediction():
    # gradient flow predicts 0.5 exp(-lambda_2 t); lr-1 steps decay like (1 - lambda_2)^t,
    # about 3% faster by t = 60, and finite width adds a few percent more
    rows = run_ntk_job(job_config(compose("ntk", ["kind=fig3", "width=1024", "steps=60",
                                                  "n_train=64", "record_every=20"])))
    along = rows[rows.phase == "along f2"].set_index("t").value
    theory = rows[rows.phase == "theory"].set_index("t").value
    assert ((along - theory).abs() / theory.abs()).max() < 0.1


@pytest.mark.parametrize("override,param", [("kind=fig4", "kind"), ("width=0", "width"),
                                            ("depth=0", "depth"), ("lr=-1.0", "lr"),
                                            ("function=tanh", "function")])
def test_bad_values_are_named(override, param):
    kind = "random_features" if param == "function" else "fig1"
    cfg = job_config(compose("ntk", [f"kind={kind}", *TINY["fig1"], override]))
    with pytest.raises(ConfigError, match=param):
        run_ntk_job(cfg)
