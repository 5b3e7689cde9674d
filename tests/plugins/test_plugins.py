"""A researcher's own target, activation and kernels as ``module:function`` settings: each
agrees with the built-in it reimplements (the same numbers, or Monte Carlo within its error),
and every bad plug-in is refused in one line that names the setting, before any work."""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rfattn.core import ConfigError
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.rfa import (STUDY, ModelSettings, RandomFeatureAttention, make_target,
                        rfa_relu_kernel, sample_tokens)
from rfattn.theory import run_theory_job
from rfattn.theory.kernels import model_gram

USER = "tests.plugins.user"
TINY = ["d=3", "N=3", "n_grid=[16,64]", "n_val=60", "n_test=80", "model.M=8", "ridge.num=5",
        "device=cpu"]


def rfa_job(*overrides):
    return STUDY.run(job_config(compose("rfa", [*TINY, *overrides])))


def test_custom_target_is_normalized_from_its_seeded_sample_like_the_exact_builtin():
    exact = make_target("similarity", 4, 4, function="relu")
    custom = make_target("custom", 4, 4, fn=f"{USER}:similarity_relu")
    # 2^17 samples of the key average: relative errors of order 1/sqrt(2^17) = 0.003
    assert custom.mean == pytest.approx(exact.mean, rel=0.01)
    assert custom.std == pytest.approx(exact.std, rel=0.02)
    assert custom.constants["normalization"].startswith("monte carlo, 131072 samples")
    again = make_target("custom", 4, 4, fn=f"{USER}:similarity_relu")
    assert (again.mean, again.std) == (custom.mean, custom.std)  # seeded: same constants
    x0, X = sample_tokens(50, 4, 4, torch.Generator().manual_seed(1))
    torch.testing.assert_close(custom(x0, X) * custom.std, exact(x0, X) * exact.std)


def test_custom_target_job_matches_the_builtin_job_and_records_its_constants():
    builtin = rfa_job("target=similarity")
    custom = rfa_job("target=custom", f"target.fn={USER}:similarity_relu")
    assert set(custom.function) == {f"{USER}:similarity_relu"}
    assert set(custom.target_label) == {f"custom {USER}:similarity_relu"}
    a = builtin[builtin.metric == "test_error"].value.to_numpy()
    b = custom[custom.metric == "test_error"].value.to_numpy()
    assert b == pytest.approx(a, rel=0.03)  # the same function up to its normalization
    assert custom.attrs["provenance"]["target"]["std"] > 0


def test_activation_plugin_gives_the_builtin_features_exactly(gen):
    x0, X = sample_tokens(30, 5, 4, gen("tokens"))
    builtin = RandomFeatureAttention.sample(6, 4, gen("W"))
    for spec in (f"{USER}:relu", f"{USER}:numpy_relu"):
        mine = RandomFeatureAttention.sample(6, 4, gen("W"), activation=spec)
        torch.testing.assert_close(mine.features(x0, X), builtin.features(x0, X), rtol=0,
                                   atol=0)
    rows = rfa_job("target=query_key", f"model.activation={USER}:relu")
    reference = rfa_job("target=query_key")
    assert set(rows.activation) == {f"{USER}:relu"}
    assert rows.value.tolist() == reference.value.tolist()


def test_kernel_of_a_plugin_activation_is_monte_carlo_within_its_recorded_error(gen):
    x0, X = sample_tokens(40, 3, 3, gen("tokens"))
    exact = rfa_relu_kernel(x0, X, variance=0.25)
    model = ModelSettings("mine", "attention", 8, f"{USER}:relu", "zero", 0.25, 0.0)
    assert not model.closed_form
    gram, stderr = model_gram(model, 3, x0, X, seed=0, mc_heads=4096)
    error = float((gram - exact).norm() / exact.norm())
    assert 0 < stderr < 0.05 and error < 4 * stderr, (error, stderr)


def test_user_kernel_on_samples_reproduces_the_kernel_model():
    builtin = rfa_job("model=kernel")
    mine = rfa_job("model=kernel", f"model.kernel={USER}:rfa_kernel", "model.name=mine")
    assert set(mine.kernel) == {f"{USER}:rfa_kernel"}
    assert mine.value.to_numpy() == pytest.approx(builtin.value.to_numpy(), rel=1e-10)


def test_sphere_theory_takes_a_dot_product_kernel_and_its_exact_trace():
    rows = run_theory_job(job_config(compose("theory", [
        "kind=sphere", f"kernel={USER}:exp_dot", "degrees=40", "quadrature_points=200",
        "n_sample=300", "n_grid=[8,32]", "seeds=2", "n_test=200", "device=cpu"])))
    assert set(rows.kernel) == {f"{USER}:exp_dot"}
    # Funk-Hecke: sum of eigenvalues x multiplicities = k(1) = e; 40 degrees of exp(t) on S^2
    trace = rows[(rows.analysis == "exact") & (rows.metric == "trace_share")].value.item()
    assert trace == pytest.approx(1.0, abs=1e-9)
    sampled = rows[(rows.analysis == "sampled") & (rows["index"] == 1)].value.item()
    top = rows[(rows.analysis == "exact") & (rows["index"] == 1)].value.item()
    assert sampled == pytest.approx(top, rel=0.2)


@pytest.mark.parametrize("overrides,setting,words", [
    (["target=custom", "target.fn=no_such_module:f"], "target.fn", "cannot import module"),
    (["target=custom", f"target.fn={USER}:nope"], "target.fn", "has no attribute"),
    (["target=custom", f"target.fn={USER}:NOT_CALLABLE"], "target.fn", "is not callable"),
    (["target=custom", f"target.fn={USER}:wrong_shape"], "target.fn", "must return shape"),
    (["target=custom", f"target.fn={USER}:with_nan"], "target.fn", "NaN or inf"),
    (["target=custom", f"target.fn={USER}:constant"], "target.fn", "is constant"),
    (["target=custom", f"target.fn={USER}:raises"], "target.fn", "RuntimeError: no"),
    (["target=custom", f"target.fn={USER}:one_argument"], "target.fn", "TypeError"),
    (["target=custom", "target.fn=justaname"], "target.fn", "module:function"),
    (["target=custom"], "target.fn", "is missing"),
    ([f"model.activation={USER}:not_elementwise"], "model.activation", "elementwise"),
    (["model=kernel", f"model.kernel={USER}:asymmetric_kernel"], "model.kernel", "symmetric"),
    (["model=kernel", f"model.kernel={USER}:relu"], "model.kernel", "TypeError"),
])
def test_a_bad_plugin_is_named_in_one_line_before_any_work(overrides, setting, words):
    with pytest.raises(ConfigError) as err:
        STUDY.validate(job_config(compose("rfa", [*TINY, *overrides])))
    message = str(err.value)
    assert message.startswith(setting) and words in message and "\n" not in message


def test_theory_targets_take_the_same_plugin_and_refuse_a_bad_one():
    from rfattn.theory.study import STUDY as THEORY

    good = THEORY.validate(job_config(compose("theory", [
        f'targets=[{{name: custom, fn: "{USER}:oscillating"}}]'])))
    assert good.build_target(good.targets[0]).label == f"custom {USER}:oscillating"
    with pytest.raises(ConfigError, match=r"^target.fn=.*:constant: the target is constant"):
        THEORY.validate(job_config(compose("theory", [
            f'targets=[{{name: custom, fn: "{USER}:constant"}}]'])))
    with pytest.raises(ConfigError, match="^network_width must be 0 with a user's kernel"):
        THEORY.validate(job_config(compose("theory", [
            "kind=sphere", f"kernel={USER}:exp_dot", "network_width=64"])))


def test_from_outside_the_repository_a_bad_plugin_gets_one_line_fast(tmp_path):
    (tmp_path / "mymodule.py").write_text(Path(__file__).with_name("user.py").read_text())
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for entry in (["sims.check", "rfa"], ["sims.rfa"]):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", *entry, "target=custom",
                              "target.fn=mymodule:nope", f"hydra.run.dir={tmp_path / 'run'}"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        seconds = time.perf_counter() - start
        assert out.returncode == 2, out.stderr[-2000:]
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "target.fn=mymodule:nope" in lines[0], out.stderr
        assert "Traceback" not in out.stderr and seconds < 20
    assert not (tmp_path / "run").exists()


def test_leave_one_out_is_refused_where_it_means_nothing():
    with pytest.raises(ConfigError, match="^ridge.selection=loo needs every n of n_grid >= 2"):
        STUDY.validate(job_config(compose("rfa", [*TINY, "ridge.selection=loo",
                                                  "n_grid=[1,16]"])))
    from rfattn.linalg import SpectralRidge

    ridge = SpectralRidge.from_gram(torch.ones(1, 1, dtype=torch.float64),
                                    torch.ones(1, dtype=torch.float64))
    with pytest.raises(ConfigError, match="leave-one-out needs n >= 2"):
        ridge.loo_mse([1e-3])
    assert math.isfinite(float(rfa_job("ridge.selection=loo").value.sum()))
