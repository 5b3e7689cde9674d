"""rfattn-plot draws any collected sweep with its theory dashed, and the table it writes is the
seed mean of the rows and the theory's own predictions."""

import pandas as pd
import pytest

from rfattn.experiment.hydra_app import compose, job_config
from rfattn.experiment.plot_sweep import main as plot_main
from rfattn.experiment.records import run_job
from rfattn.rfa import STUDY
from rfattn.theory.study import STUDY as THEORY

SIZES = ["d=3", "N=3", "n_grid=[16,32,64]", "model.M=8", "device=cpu"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("plot")
    for model in ("rfa", "kernel"):
        for seed in (0, 1):
            cfg = job_config(compose("rfa", [*SIZES, f"model={model}", f"seed={seed}",
                                             "target=similarity", "n_val=50", "n_test=60",
                                             "ridge.num=4"]))
            run_job(root / "sim" / f"{model}-{seed}", cfg, STUDY.run)
    cfg = job_config(compose("theory", [*SIZES, "model=rfa", "n_sample=256", "theory_points=4",
                                        "targets=[{name: similarity, function: relu}]"]))
    run_job(root / "theory" / "rfa", cfg, THEORY.run)
    return root


def test_the_drawn_table_is_the_seed_mean_and_the_theory(sweep, capsys):
    out = sweep / "figure.png"
    assert plot_main([str(sweep / "sim"), "--theory", str(sweep / "theory"),
                      "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and "wrote" in capsys.readouterr().out
    table = pd.read_csv(out.with_suffix(".csv"))
    rows = pd.concat([pd.read_csv(p) for p in (sweep / "sim").rglob("rows.csv")])
    errors = rows[rows.metric == "test_error"]
    expected = errors.groupby(["model", "n"]).value.agg(["mean", "std"])
    sims = table[table.source == "simulation"].set_index(["model", "n"])
    pd.testing.assert_series_equal(sims["mean"].sort_index(), expected["mean"].sort_index(),
                                   check_names=False)
    assert (sims.seeds == 2).all()
    theory = pd.read_csv(next((sweep / "theory").rglob("rows.csv")))
    curves = theory[(theory.analysis == "curve") & (theory.metric == "test_error")]
    for model, prediction in (("rfa", "features"), ("kernel", "kernel")):
        drawn = table[(table.source == "theory") & (table.model == model)].sort_values("n")
        mine = curves[curves.prediction == prediction].sort_values("n")
        assert drawn["mean"].tolist() == pytest.approx(mine.value.tolist(), rel=1e-12)


def test_the_infinite_head_kernel_is_labelled_inf_and_bad_input_is_one_line(sweep, capsys):
    out = sweep / "by_heads.png"
    assert plot_main([str(sweep / "sim"), "--hue", "M", "--col", "none",
                      "--out", str(out)]) == 0
    assert set(pd.read_csv(out.with_suffix(".csv"), dtype={"M": str}).M) == {"8", "inf"}
    capsys.readouterr()
    for argv, words in ((["--metric", "nope"], "--metric nope is not in the sweep"),
                        (["--hue", "colour"], "colour is not a column"),
                        (["--theory", str(sweep / "missing")], "does not exist")):
        assert plot_main([str(sweep / "sim"), *argv, "--out", str(sweep / "x.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rfattn-plot: ") and words in err and "\n" not in err
