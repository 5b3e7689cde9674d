"""Infinite-width kernels of multi-head attention: against neural-tangents, against Monte Carlo
over finite networks (exact at every width where the expectation is), and their convergence."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.ntk import EmpiricalNTK
from rfattn.ntk.attention_kernels import (AttentionArchitecture, attention_kernels,
                                          sinusoidal_positions)
from rfattn.ntk.attention_network import AttentionNetwork
from rfattn.ntk.attention_study import AttentionTrainingSettings, attention_training_rows

PEER = Path(__file__).resolve().parents[1] / "data" / "neural_tangents_attention.npz"


def sequences(n, tokens=4, d=3, stream="x"):
    return torch.randn(n, tokens, d, generator=generator(0, stream), dtype=torch.float64)


def test_matches_neural_tangents():
    """Every recorded case of benchmarks/neural_tangents_peer.py, NNGP and NTK, x1 against x2."""
    peer = np.load(PEER)
    x1, x2 = torch.from_numpy(peer["x1"]), torch.from_numpy(peer["x2"])
    cases = json.loads(str(peer["cases"]))
    assert {c[0] for c in cases.values()} == {"softmax", "relu", "identity", "abs"}
    for case, spec in cases.items():
        ours = attention_kernels(x1, x2, AttentionArchitecture(*spec))
        for kernel in ("nngp", "ntk"):
            ref = torch.from_numpy(peer[f"{kernel}_{case}"])
            err = float((getattr(ours, kernel) - ref).abs().max() / ref.abs().max())
            assert err < 1e-10, (case, kernel, err)


def test_symmetric_call_equals_cross_call_and_blocks_and_is_psd():
    x = sequences(7)
    arch = AttentionArchitecture("softmax", hidden_layers=1, b_std=0.2,
                                 positions=sinusoidal_positions(4, 3), positional_values=True)
    alone, cross = attention_kernels(x, arch=arch), attention_kernels(x, x, arch)
    blocked = attention_kernels(x, arch=arch, block_bytes=1)  # one sequence per block
    for a, b, c in ((alone.nngp, cross.nngp, blocked.nngp), (alone.ntk, cross.ntk, blocked.ntk)):
        torch.testing.assert_close(c, b, rtol=1e-13, atol=1e-14)
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
        assert torch.linalg.eigvalsh(a).min() > -1e-12 * a.diagonal().max()


def test_identity_sqrt_kernels_are_exact_means_at_every_width():
    """Identity attention under 1/sqrt(d_key), no activation, positions on queries, keys and
    values: the output is multilinear in independent Gaussian weights, so E[f f'] is the NNGP
    and E[empirical NTK] the NTK at any width. Checked with small networks by z-scores, which
    reject half the kernel (an NTK without its query-key terms)."""
    x = sequences(3, tokens=3, d=2)
    arch = AttentionArchitecture("identity", "sqrt", activation="identity", b_std=0.3,
                                 positions=sinusoidal_positions(3, 2), positional_values=True)
    exact = attention_kernels(x, arch=arch)
    outer, ntks = [], []
    for k in range(2000):
        net = AttentionNetwork(2, 2, 2, 1, 2, arch, generator(k, "attention-mc"))
        with torch.no_grad():
            f = net(x)[:, 0]
        outer.append(torch.outer(f, f))
        if k < 300:
            ntks.append(EmpiricalNTK(net)(x, method="jacobian"))
    for samples, reference in ((torch.stack(outer), exact.nngp),
                               (torch.stack(ntks), exact.ntk)):
        mean, se = samples.mean(0), samples.std(0) / len(samples) ** 0.5
        assert ((mean - reference) / se).abs().max() < 4.5, (mean, reference)
        assert ((mean - 0.5 * reference) / se).abs().max() > 4.5


def test_empirical_ntk_converges_like_heads_to_the_minus_half():
    x = sequences(6, tokens=4, d=3)
    arch = AttentionArchitecture("softmax", b_std=0.1)
    exact = attention_kernels(x, arch=arch).ntk
    rms = []
    for heads in (16, 128):
        errs = [float((EmpiricalNTK(AttentionNetwork(3, heads, heads, 1, heads, arch,
                                                     generator(s, "conv")))(
            x, method="jacobian") - exact).norm() / exact.norm()) for s in range(4)]
        rms.append(float(np.sqrt(np.mean(np.square(errs)))))
    slope = np.log(rms[1] / rms[0]) / np.log(8)
    assert -0.75 < slope < -0.3, (rms, slope)


def test_ntks_of_a_parameter_partition_add_up_to_the_ntk():
    x = sequences(5)
    net = AttentionNetwork(3, 4, 4, 2, 4, AttentionArchitecture("relu"),
                           generator(0, "partition"))
    names = [k for k, _ in net.named_parameters()]
    rest = [k for k in names if k not in net.query_key_parameters]
    full = EmpiricalNTK(net)(x, method="jacobian")
    parts = [EmpiricalNTK(net, parameters=p)(x, method="jacobian")
             for p in (net.query_key_parameters, rest)]
    torch.testing.assert_close(parts[0] + parts[1], full, rtol=1e-12, atol=1e-13)
    assert float(parts[0].norm()) > 1e-6 * float(full.norm())
    with pytest.raises(ConfigError, match="parameters: nope not among"):
        EmpiricalNTK(net, parameters=["nope"])


def test_linear_scaling_attention_weights_tend_to_the_kernel_weights():
    """Tied query-key weights at 1/d_key: G_h -> zeta(qk_std S_Z), each head, as d_key grows."""
    x = sequences(2, tokens=4, d=3)
    arch = AttentionArchitecture("softmax", qk_std=1.5)
    limit = torch.softmax(1.5 * x @ x.transpose(1, 2) / 3, dim=-1)
    with torch.no_grad():
        errs = [float((AttentionNetwork(3, 2, dk, 1, 2, arch, generator(0, "g"))
                       .attention_weights(x) - limit[:, None]).abs().max())
                for dk in (100, 10000)]
    assert errs[1] < errs[0] / 4 and errs[1] < 0.02, errs


def test_kernel_regime_training_agrees_with_ntk_regression():
    s = AttentionTrainingSettings(
        seed=0, device="cpu", dtype="float64", kind="attention_training", N=3, d=3, heads=128,
        d_key=None, d_value=1, channels=None, mechanism="softmax", scaling="linear",
        hidden_layers=0, activation="relu", qk_std=1.0, ov_std=1.0, w_std=1.0, b_std=0.1,
        positional="none", positional_values=False, target_family="single_key", degree=2,
        n_grid=(12,), n_test=64, steps=40, lr=2.0)
    rows = attention_training_rows(s)
    mse = {r["model"]: r["value"] for r in rows if r["metric"] == "test_mse"}
    diff = next(r["value"] for r in rows if r["metric"] == "relative_difference")
    assert diff == pytest.approx(abs(mse["network"] - mse["kernel"]) / mse["kernel"])
    assert diff < 0.1, mse


@pytest.mark.parametrize("kwargs, message", [
    ({"mechanism": "softmax", "scaling": "sqrt"}, "no closed-form kernel under scaling=sqrt"),
    ({"mechanism": "gelu"}, "mechanism"),
    ({"hidden_layers": -1}, "hidden_layers must be an integer >= 0"),
    ({"qk_std": -1.0}, "qk_std"),
])
def test_bad_architecture_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        AttentionArchitecture(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_inputs_one_line():
    arch = AttentionArchitecture(positions=sinusoidal_positions(4, 3))
    for x1, x2, message in ((sequences(2)[0], None, r"sequences \(n, N, d\)"),
                            (sequences(2), sequences(2, d=5), "tokens of dimension 5"),
                            (sequences(2, tokens=5), None, "do not match positions")):
        with pytest.raises(ConfigError, match=message):
            attention_kernels(x1, x2, arch)
    with pytest.raises(ConfigError, match="d_key must be an integer >= 1"):
        AttentionNetwork(3, 4, 0, 1, 4, arch)
