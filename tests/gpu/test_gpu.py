"""CUDA checks: the same numbers on the GPU as on the CPU (run with ``pytest -m gpu``)."""

import pytest
import torch

from rfattn.experiment.hydra_app import compose, job_config
from rfattn.rfa import RandomFeatureAttention, rfa_relu_kernel, sample_tokens
from rfattn.rfa.study import run_rfa_job

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_features_and_kernel_match_cpu(gen):
    x0, X = sample_tokens(300, 6, 5, gen("tok"))
    rfa = RandomFeatureAttention.sample(64, 5, gen("W"))
    gpu = RandomFeatureAttention(rfa.W.cuda())
    torch.testing.assert_close(gpu.features(x0.cuda(), X.cuda()).cpu(), rfa.features(x0, X),
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rfa_relu_kernel(x0.cuda(), X.cuda()).cpu(), rfa_relu_kernel(x0, X),
                               rtol=1e-10, atol=1e-12)


def test_softmax_hermite_kernel_matches_cpu(gen):
    from rfattn.rfa import hermite_softmax_kernel

    x0, X = sample_tokens(300, 4, 4, gen("hermite"))
    for c in (0.0, 1.0):
        cpu, cpu_bound = hermite_softmax_kernel(x0, X, c=c)
        gpu, gpu_bound = hermite_softmax_kernel(x0.cuda(), X.cuda(), c=c)
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=1e-12)
        assert gpu_bound == pytest.approx(cpu_bound, rel=1e-8)


@pytest.mark.parametrize("model", ["rfa", "kernel"])
def test_study_job_matches_cpu(model):
    over = ["n_grid=[64,256]", "n_val=100", "n_test=200", "model.M=32", f"model={model}"]
    cpu = run_rfa_job(job_config(compose("rfa", over + ["device=cpu"])))
    gpu = run_rfa_job(job_config(compose("rfa", over + ["device=cuda"])))
    err = cpu.metric == "test_error"
    assert (cpu[err].value.values - gpu[err].value.values).__abs__().max() < 1e-6


def test_ntk_kernels_match_cpu(gen):
    from rfattn.ntk import FullyConnected, empirical_ntk, fc_kernels

    x = torch.randn(50, 3, generator=gen("x"))
    for activation in ("relu", "erf", "tanh"):
        cpu = fc_kernels(x, depth=4, activation=activation)
        gpu = fc_kernels(x.cuda(), depth=4, activation=activation)
        # equal inputs (the diagonal) sit at cos = 1, where arccos turns the devices' 1e-16
        # rounding differences into ~1e-8
        torch.testing.assert_close(gpu.ntk.cpu(), cpu.ntk, rtol=1e-7, atol=1e-9)
    net = FullyConnected(3, 64, 3, generator=gen("net"))
    torch.testing.assert_close(empirical_ntk(net.cuda(), x.cuda()).cpu(),
                               empirical_ntk(net.cpu(), x), rtol=1e-10, atol=1e-12)


def test_attention_gd_and_lowrank_training_match_cpu():
    from rfattn.lowrank.study import run_lowrank_job
    from rfattn.svm.study import run_svm_job

    over = ["kind=convergence", "runs=8", "n=3", "N=4", "d=6", "steps=200", "nuclear=false"]
    cpu = run_svm_job(job_config(compose("svm", over + ["device=cpu"])))
    gpu = run_svm_job(job_config(compose("svm", over + ["device=cuda"])))
    assert (cpu.value.values - gpu.value.values).__abs__().max() < 1e-6
    over = ["d=16", "patterns=16", "n=256", "n_test=256", "m=16", "epochs=3", "seed=1"]
    cpu = run_lowrank_job(job_config(compose("lowrank", over + ["device=cpu"])))
    gpu = run_lowrank_job(job_config(compose("lowrank", over + ["device=cuda"])))
    final = cpu.analysis == "final"
    assert (cpu[final].value.values - gpu[final].value.values).__abs__().max() < 1e-6


@pytest.mark.parametrize("model", ["rfa_biased", "rfa_softmax"])  # quadrature, Monte Carlo
def test_theory_spectrum_and_curves_match_cpu(model):
    from rfattn.theory import run_theory_job
    over = [f"model={model}", "d=3", "N=3", "n_grid=[32,64]", "n_sample=512", "mc_heads=64",
            "theory_points=2"]
    cpu = run_theory_job(job_config(compose("theory", over + ["device=cpu"])))
    gpu = run_theory_job(job_config(compose("theory", over + ["device=cuda"])))
    err = cpu.metric == "test_error"
    rel = (cpu[err].value.values / gpu[err].value.values - 1).__abs__().max()
    assert rel < 1e-6, rel
