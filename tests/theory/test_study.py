"""Theory study jobs at small sizes: predictions against simulations and exact values; every
bad setting named."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rfattn.core import ConfigError
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.rfa import make_target, rfa_relu_kernel, sample_tokens
from rfattn.theory import run_theory_job, sampled_spectrum
from rfattn.linalg import relu_arccos_kernel
from rfattn.theory.kernels import closed_form_kernel, mlp_input
from rfattn.theory.study import STUDY

validate = STUDY.validate


def job(*overrides):
    return run_theory_job(job_config(compose("theory", list(overrides))))


def test_rfa_target_power_is_the_exact_second_moment(gen):
    # Parseval on the RFA kernel's sampled eigenbasis: the power sums to the sample's mean of
    # f*^2, which estimates the exact E f*^2 = 1 + (E f / std f)^2 of the normalized target
    d, N, n = 4, 4, 1500
    x0, X = sample_tokens(n, N, d, gen("parseval"))
    gram = rfa_relu_kernel(x0, X, variance=1 / d)
    for name, degree, function in [("similarity", 1, "relu"), ("query_key", 2, "relu"),
                                   ("two_key", 1, "relu")]:
        t = make_target(name, d, N, degree=degree, function=function, centred=False)
        y = t(x0, X)
        s = sampled_spectrum(gram, {"f": y}, modes=n // 4)
        assert s.power["f"].sum() == pytest.approx(float((y * y).mean()), rel=1e-10)
        exact = 1 + (t.mean / t.std) ** 2
        se = float((y * y).std()) / math.sqrt(n)
        assert abs(s.power["f"].sum() - exact) < 4 * se, (name, s.power["f"].sum(), exact)


def test_rfa_curves_finite_heads_approach_the_kernel_prediction():
    rows = job("model=rfa", "d=3", "N=3", "n_grid=[16,32,64]", "n_sample=256",
               "heads_grid=[2,16,128,4096]", "theory_points=4", "ridge.num=7")
    curve = rows[(rows.analysis == "curve") & (rows.metric == "test_error")]
    assert set(curve.prediction) == {"kernel", "features", "heads"}
    assert set(curve[curve.prediction == "features"].P) == {m * 4.0 for m in (2, 16, 128,
                                                                              4096, 256)}
    kernel = curve[curve.prediction == "kernel"].set_index(["target_label", "n"]).value
    gaps = []
    for M in (2, 16, 128, 4096):
        finite = curve[(curve.prediction == "features") & (curve.M == M)]
        finite = finite.set_index(["target_label", "n"]).value
        gaps.append(float(((finite - kernel).abs() / np.maximum(kernel, 1e-3)).max()))
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.15, gaps
    learn = rows[rows.analysis == "learnability"]
    assert (learn[learn.metric == "modes_for_99pct_variance"].value.values
            >= learn[learn.metric == "modes_for_90pct_variance"].value.values).all()
    change = rows[rows.metric == "half_sample_change"].value
    assert np.isfinite(change).all()


@pytest.mark.parametrize("model, d, low, high", [
    ("rfa_biased", 3, 0.0, 0.0),  # closed form
    ("rfa_softmax", 3, 1e-9, 1e-4),  # the Hermite expansion: its truncation bound
    ("rfa_softmax", 6, 0.001, 0.5)])  # 8^6 Gauss-Hermite points: Monte Carlo, 64 heads
def test_each_kernel_carries_its_error(model, d, low, high):
    rows = job(f"model={model}", f"d={d}", "N=3", "n_grid=[16,32]", "n_sample=128",
               "mc_heads=64", "theory_points=2", "ridge.num=3",
               "targets=[{name: query_key, degree: 1}]")
    error = rows[rows.metric == "kernel_error"].value.iloc[0]
    assert low <= error <= high, error


def test_closed_form_gram_by_row_blocks_is_the_kernel_in_one_piece(gen):
    # the RFMLP's arc-cosine kernel and a user's kernel, built by row blocks (800 samples:
    # several blocks), against one evaluation on the whole sample
    x0, X = sample_tokens(800, 3, 4, gen("blocks"))
    settings = STUDY.check(job_config(compose("theory", ["model=rfmlp", "d=4", "N=3"])))
    z = mlp_input(x0, X)
    norms = (z * z).sum(1)
    whole = relu_arccos_kernel(z @ z.T, norms[:, None] * norms[None, :], 1 / 5)
    torch.testing.assert_close(closed_form_kernel(settings.model, x0, X), whole, rtol=1e-13,
                               atol=1e-14)
    torch.testing.assert_close(closed_form_kernel(settings.model, x0[:50], X[:50], x0, X),
                               whole[:50], rtol=1e-13, atol=1e-14)


PEAK = """
import sys
from pathlib import Path
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.theory.rfa_jobs import rfa_spectra
from rfattn.theory.study import STUDY

def high_water_kb():  # this process's peak resident memory (ru_maxrss keeps the parent's)
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])

s = STUDY.check(job_config(compose("theory", [f"model={sys.argv[1]}", "n_sample=4096",
                                              "n_grid=[32,64]", "device=cpu", "mc_heads=1024"])))
before = high_water_kb()
rfa_spectra(s)
print((high_water_kb() - before) * 1024, s.estimate_memory())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
@pytest.mark.parametrize("model", ["rfa", "rfa_softmax"])
def test_rfa_spectra_peak_memory_stays_within_the_estimate(model):
    # 4096 samples (Gram matrix 134 MB), measured 2.6 (closed form) and 3.0 (Monte Carlo)
    # Gram matrices above the start, estimated 3.25 and 4.2: for the closed form a second
    # (n, n) matrix would exceed the estimate
    out = subprocess.run([sys.executable, "-c", PEAK, model], capture_output=True, text=True,
                         check=True)
    peak, estimate = map(int, out.stdout.split()[-2:])
    gram = 8 * 4096**2
    assert peak <= estimate, (peak / gram, estimate / gram)
    assert peak >= gram, peak / gram  # the Gram matrix itself was measured


def test_double_descent_peaks_at_the_number_of_features():
    rows = job("kind=double_descent", "model.M=4", "n_grid=[8,12,16,20,24,28,40,80]",
               "n_sample=256", "n_test=300", "seeds=8")
    P = 4 * 5
    sim = rows[rows.analysis == "simulation"].groupby("n").value.mean()
    theory = rows[(rows.analysis == "theory") & (rows.prediction == "features")]
    theory = theory.set_index("n").value
    assert sim.idxmax() == P and theory.reindex(sim.index).idxmax() == P
    # past the peak the prediction holds (before it, P = 20 is far from asymptotic)
    far = [n for n in sim.index if n >= 2 * P]
    np.testing.assert_allclose(theory.reindex(far), sim.loc[far], rtol=0.2)


def test_rfmlp_at_d8_n8_runs_with_a_slow_tail():
    # the RFMLP's sampled spectrum at d = 8, N = 8 decays like i^-0.44 over the fit range: no
    # trace-class power law, but the trace fixes the tail's mass and the job runs
    rows = job("model=rfmlp", "d=8", "N=8", "n_sample=4096", "n_grid=[32,128,512,2048]",
               "targets=[{name: query_key, degree: 2}]", "theory_points=8")
    alpha = rows[(rows.analysis == "tail") & (rows.metric == "alpha")].value.iloc[0]
    assert 0 < alpha < 1
    curve = rows[rows.analysis == "curve"]
    error = curve[curve.metric == "test_error"].value
    assert np.isfinite(error).all() and (error > 0).all()
    for metric in ("half_sample_change", "tail_change", "ridge_over_crossover"):
        values = curve[curve.metric == metric].value
        assert len(values) and np.isfinite(values).all() and (values >= 0).all()


def by_ridge_and_n(rows):
    """Seed-mean simulated test error, seed-mean GCV and the prediction, by (ridge, n)."""
    simulated = rows[rows.analysis == "simulation"]
    sim = simulated[simulated.metric == "test_error"].groupby(["ridge", "n"]).value.mean()
    gcv = simulated[simulated.metric == "gcv"].groupby(["ridge", "n"]).value.mean()
    return sim, gcv, rows[rows.analysis == "theory"].set_index(["ridge", "n"]).value


def test_rfa_validity_prediction_holds_with_a_ridge_and_names_bad_models():
    rows = job("kind=rfa_validity", "d=5", "n_sample=1024", "n_grid=[32,128,256]",
               "ridges=[0.0,0.01]", "seeds=4", "n_test=1000")
    sim, gcv, theory = by_ridge_and_n(rows)
    assert theory[(0.01, 256)] == pytest.approx(sim[(0.01, 256)], rel=0.05)
    assert gcv[(0.01, 256)] == pytest.approx(sim[(0.01, 256)], rel=0.15)
    with pytest.raises(ConfigError, match="model must have a closed-form kernel"):
        validate(job_config(compose("theory", ["kind=rfa_validity", "model=rfa_softmax"])))


def test_sphere_exact_spectrum_and_ridge_learning_curve():
    rows = job("kind=sphere", "degrees=300", "quadrature_points=1200", "n_sample=600",
               "n_grid=[64,256]", "n_test=500", "seeds=4", "ridges=[0.0,0.001]")
    exact = rows[(rows.analysis == "exact") & (rows.metric == "eigenvalue")].value.values
    sampled = rows[rows.analysis == "sampled"].value.values
    np.testing.assert_allclose(sampled[:4].mean(), exact[:4].mean(), rtol=0.03)
    assert rows[rows.metric == "trace_share"].value.iloc[0] == pytest.approx(1, abs=2e-3)
    sim, gcv, theory = by_ridge_and_n(rows)
    # GCV from the training data alone tracks the error with a ridge
    assert gcv[(0.001, 256)] == pytest.approx(sim[(0.001, 256)], rel=0.15)
    # with a ridge, theory and simulation agree at n = 256; ridgeless, the theory
    # under-predicts on the low-dimensional sphere (reported by the claim theory-sphere-*)
    assert theory[(0.001, 256)] == pytest.approx(sim[(0.001, 256)], rel=0.15)
    assert theory[(0.0, 256)] < sim[(0.0, 256)]


def test_wide_trained_networks_reach_kernel_regression_with_their_ntk():
    # one hidden layer on S^2, target of degrees 1 and 2: the centred network trained to
    # t = 8000 is ridgeless kernel regression with the analytic NTK on the same samples
    rows = job("kind=sphere", "depth=2", "degrees=60", "quadrature_points=240", "n_sample=300",
               "n_grid=[8,16]", "n_test=400", "seeds=2", "ridges=[0.0]",
               "target_power=[0.0,0.6,0.4]", "network_width=8192", "network_steps=2000",
               "network_lr=4.0", "network_n_max=16", "network_seeds=2")
    nets = rows[rows.analysis == "network"]
    kernel = rows[(rows.analysis == "simulation") & (rows.metric == "test_error_sampled")]
    assert len(nets) == 4 and len(kernel) == 4
    ratio = nets.groupby("n").value.mean() / kernel.groupby("n").value.mean()
    assert ((ratio - 1).abs() < 0.15).all(), ratio.to_dict()


@pytest.mark.parametrize("override,message", [
    ("kind=spectra", "kind must be one of"),
    ("n_sample=100", "n_sample must be >= 2 max"),
    ("mc_heads=4", "mc_heads must be >= 8"),
    ("heads_grid=[0]", r"heads_grid\[0\] must be"),
    ("targets=[]", "targets must be a non-empty list"),
    ("targets=[{name: query_key, degre: 2}]", r"targets\[0\].degre is not a setting"),
    ("tail.fit=[0.25,0.1]", "tail.fit must have start < stop"),
    ("tail.shape=flat", "tail.shape must be one of"),
    ("tail.keep=0.95", r"tail.keep must lie in \(0, 0.9\]"),
    ("tail.fit=[0.1,0.1001]", "tail.fit must span >= 4 modes"),
])
def test_bad_rfa_curve_settings_are_named(override, message):
    cfg = job_config(compose("theory", [] if override.startswith("kind") else [override]))
    if override.startswith("kind"):
        cfg["kind"] = "spectra"
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


@pytest.mark.parametrize("override,message", [
    ("quadrature_points=100", "quadrature_points must be >= 2 degrees"),
    ("ridges=[]", "ridges must list at least one"),
    ("D=1", "D must be >= 2"),
    ("target_power=[0.1,-1]", r"target_power\[1\] must"),
    ("network_width=-1", "network_width must be"),
    ("network_lr=0", r"network_lr must lie in \(0, 100\]"),
    ("network_seeds=-1", "network_seeds must be"),
])
def test_bad_sphere_settings_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        validate(job_config(compose("theory", ["kind=sphere", override])))


def test_network_seeds_matter_only_with_networks():
    validate(job_config(compose("theory", ["kind=sphere", "seeds=2"])))  # width 0: no networks
    with pytest.raises(ConfigError, match="network_seeds must be <= seeds = 2"):
        validate(job_config(compose("theory", ["kind=sphere", "seeds=2", "network_width=64"])))


def test_gram_and_targets_are_float64_theory_checks():
    cfg = job_config(compose("theory", ["dtype=float32"]))
    assert validate(cfg).torch_dtype == torch.float32  # allowed for speed, float64 default
    assert validate(job_config(compose("theory"))).torch_dtype == torch.float64
