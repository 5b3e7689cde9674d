"""SNNK study jobs: the layer-error job against the layer itself, the splits, early stopping,
and the bundled job's closed form against gradient descent."""

import math

import pandas as pd
import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.ntk import STUDY
from rfattn.ntk.snnk import SNNKLayer, exact_layer
from rfattn.ntk.snnk_study import (SPLIT, _pairs, adam_early_stopped, load_dataset,
                                   squared_error)


def job(*overrides):
    return STUDY.run(job_config(compose("ntk", [*overrides, "device=cpu"])))


def test_layer_job_measures_what_the_layer_computes():
    rows = job("kind=snnk_layer", "features=[cos,gerf]", "norms=[0.5]", "n=6", "d=3",
               "m_grid=[64]")
    s = STUDY.validate(job_config(compose("ntk", ["kind=snnk_layer", "features=[cos,gerf]",
                                                  "norms=[0.5]", "n=6", "d=3", "m_grid=[64]",
                                                  "device=cpu"])))
    x, W, b = _pairs(s, 0.5)
    assert torch.allclose(x.norm(dim=1), torch.full((6,), 0.5, dtype=torch.float64))
    # the layer with normalize=none, drawn from the job's stream, gives the job's error
    layer = SNNKLayer(W, b, 64, "cos", generator(0, "snnk", "cos", 64), normalize="none")
    with torch.no_grad():
        err = layer(x) - exact_layer("cos", x, W, b)
    measured = rows[(rows.feature == "cos") & (rows.metric == "mse")].value.item()
    assert measured == pytest.approx(float((err ** 2).mean()), rel=1e-12)
    mean_error = rows[(rows.feature == "cos") & (rows.metric == "mean_error")].value.item()
    assert mean_error == pytest.approx(float(err.mean()), rel=1e-12, abs=1e-15)
    rel = rows[rows.metric == "relative_mse"].set_index("feature").value
    assert (rel < 0.2).all() and (rel > 0).all()


def test_layer_job_error_is_unbiased_and_falls_like_one_over_m():
    frames = [job("kind=snnk_layer", "features=[sin]", "norms=[0.5]", "n=8", "d=4",
                  "m_grid=[16,256]", f"seed={seed}") for seed in range(40)]
    rows = pd.concat(frames)
    mse = rows[rows.metric == "mse"].groupby("m").value.mean()
    assert math.log(mse[256] / mse[16]) / math.log(16) == pytest.approx(-1, abs=0.25)
    signed = rows[rows.metric == "mean_error"].groupby("m").value
    z = signed.mean() / (signed.std() / math.sqrt(40))
    assert z.abs().max() < 4


def test_splits_are_seeded_disjoint_and_standardized():
    first = load_dataset("diabetes", 3)
    again = load_dataset("diabetes", 3)
    other = load_dataset("diabetes", 4)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])
    xtr, ytr, xva, yva, xte, yte = first
    assert [len(xtr), len(xva), len(xte)] == [round(SPLIT[0] * 442), round(SPLIT[1] * 442),
                                              442 - round(SPLIT[0] * 442)
                                              - round(SPLIT[1] * 442)]
    assert torch.allclose(xtr.mean(0), torch.zeros(10, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(xtr.std(0), torch.ones(10, dtype=torch.float64))
    assert float(ytr.std()) == pytest.approx(1.0)
    rows = {tuple(r.tolist()) for r in torch.cat([xtr, xva, xte])}
    assert len(rows) == 442  # no sample in two splits
    digits = load_dataset("digits", 0)
    assert digits[1].shape[1] == 10 and torch.equal(digits[1].sum(1),
                                                    torch.ones(len(digits[1]),
                                                               dtype=torch.float64))
    with pytest.raises(ConfigError, match="dataset must be one of diabetes, digits"):
        load_dataset("iris", 0)


def test_early_stopping_keeps_the_best_validation_step():
    gen = generator(0, "early")
    x = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    y = x[:, :1] + 0.5 * torch.randn(30, 1, generator=gen, dtype=torch.float64)
    x_val = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    y_val = x_val[:, :1]
    model = torch.nn.Linear(3, 1, dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    best_step, _ = adam_early_stopped(model, model, x, y, x_val, y_val, lr=0.05, steps=60,
                                      eval_every=5)
    replay = torch.nn.Linear(3, 1, dtype=torch.float64)
    torch.nn.init.zeros_(replay.weight)
    torch.nn.init.zeros_(replay.bias)
    opt = torch.optim.Adam(replay.parameters(), lr=0.05)
    errors = {}
    for step in range(1, 61):  # the same run by hand: validation error every 5 steps
        opt.zero_grad()
        ((replay(x) - y) ** 2).sum(1).mean().backward()
        opt.step()
        if step % 5 == 0:
            with torch.no_grad():
                errors[step] = squared_error(replay(x_val), y_val)
                if step == best_step:
                    kept = replay.weight.clone()
    assert best_step == min(errors, key=errors.get)
    assert torch.allclose(model.weight, kept, rtol=0, atol=1e-14)


def test_bundled_job_closed_form_is_the_minimum_gradient_descent_approaches():
    rows = job("kind=snnk_bundled", "dataset=diabetes", "hidden=[8]", "m_layer=4",
               "m_bundle=[16,32]", "ridges=[1e-3]", "steps=400", "eval_every=400")
    table = rows.pivot_table(index=["model", "size"], columns="metric", values="value")
    closed = table.loc[("bundled_closed_form", 32)]
    gd = table.loc[("bundled_gd", 32)]
    assert closed.train_objective <= gd.train_objective + 1e-12
    assert gd.train_objective == pytest.approx(closed.train_objective, rel=0.05)
    assert closed.parameters == 2 * 32 + 1  # M (1 x 2m) and c
    assert table.loc[("mlp", 8)].parameters == 10 * 8 + 8 + 8 + 1
    assert table.loc[("snnk_mlp", 8)].parameters == 8 * 8 + 8 + 1  # M (8 x 2m) and readout
    assert set(table.index.get_level_values("model")) == {"mlp", "snnk_mlp",
                                                          "bundled_closed_form", "bundled_gd"}
    assert (table.test_mse > 0).all() and (table.test_mse < 1.5).all()
