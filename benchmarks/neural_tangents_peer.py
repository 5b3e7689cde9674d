"""The attention kernels of neural-tangents 0.6.5, recorded for :mod:`rfattn.ntk.attention_kernels`.

neural-tangents needs JAX, which rfattn does not depend on, so its kernels are computed once
by this script in its own environment and stored with their inputs; the test
``tests/ntk/test_attention_kernels.py::test_matches_neural_tangents`` recomputes each case with
rfattn and compares (relative error < 1e-6). Run from the repository root:

    python -m venv /tmp/ntvenv
    /tmp/ntvenv/bin/pip install neural-tangents==0.6.5 jax==0.4.30 jaxlib==0.4.30 tf2jax==0.3.6
    /tmp/ntvenv/bin/python benchmarks/neural_tangents_peer.py

Output: ``tests/data/neural_tangents_attention.npz`` (inputs ``x1`` (6, 5, 4) and ``x2``
(4, 5, 4) from numpy seed 0, then ``nngp_<case>``/``ntk_<case>`` for each case of
:data:`CASES`, and ``cases`` as JSON).
"""

import json
import sys
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
from neural_tangents import stax  # noqa: E402  (after enabling float64)

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "neural_tangents_attention.npz"

#: name -> (mechanism, scaling, hidden_layers, activation, qk_std, ov_std, w_std, b_std)
CASES = {
    "softmax": ("softmax", "linear", 0, "relu", 1.0, 1.0, 1.0, 0.0),
    "softmax_scaled": ("softmax", "linear", 1, "relu", 1.7, 0.8, 1.3, 0.2),
    "relu": ("relu", "linear", 0, "relu", 1.0, 1.0, 1.0, 0.1),
    "identity": ("identity", "linear", 0, "relu", 0.9, 1.1, 1.0, 0.1),
    "abs": ("abs", "linear", 1, "relu", 1.2, 1.0, 0.9, 0.0),
    "identity_sqrt": ("identity", "sqrt", 0, "relu", 1.0, 1.0, 1.0, 0.1),
    "identity_sqrt_deep": ("identity", "sqrt", 1, "relu", 0.8, 1.2, 1.1, 0.3),
    "softmax_no_activation": ("softmax", "linear", 0, "identity", 1.0, 1.0, 1.0, 0.1),
}


def network(mechanism, scaling, hidden_layers, activation, qk_std, ov_std, w_std, b_std):
    act = [stax.Relu()] if activation == "relu" else []
    layers = [stax.GlobalSelfAttention(8, 8, 8, 2, linear_scaling=scaling == "linear",
                                       W_query_std=qk_std, W_key_std=1.0, W_value_std=ov_std,
                                       W_out_std=1.0, b_std=None,
                                       attention_mechanism=mechanism.upper())]
    for _ in range(hidden_layers):
        layers += act + [stax.Dense(8, W_std=w_std, b_std=b_std)]
    layers += act + [stax.GlobalAvgPool(), stax.Dense(1, W_std=w_std, b_std=b_std)]
    return stax.serial(*layers)[2]


def main() -> None:
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((6, 5, 4)), rng.standard_normal((4, 5, 4))
    out = {"x1": x1, "x2": x2, "cases": json.dumps(CASES)}
    for name, case in CASES.items():
        kernel = network(*case)(x1, x2, ("nngp", "ntk"))
        out[f"nngp_{name}"], out[f"ntk_{name}"] = np.asarray(kernel[0]), np.asarray(kernel[1])
    np.savez(OUT, **out)
    print(f"wrote {OUT} ({len(CASES)} cases); neural-tangents with jax {jax.__version__}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
