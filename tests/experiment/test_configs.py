"""Every config composes into its lens's Settings; each entry point runs at a tiny size."""

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from rfattn.core import ConfigError
from rfattn.core.settings import RunSettings
from rfattn.experiment import collect
from rfattn.experiment.hydra_app import CONF_DIR, compose, job_config
from tests.studies import STUDIES

ROOT = Path(__file__).resolve().parents[2]
LENSES = STUDIES
GROUPS = {g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml"))
          for g in ("model", "target", "launcher", "experiment", "scale", "kind")}
CUSTOM_TARGET = "tests.plugins.user:oscillating"  # target=custom names the user's function
TINY = ["n_grid=[16,32]", "n_val=30", "n_test=40", "d=3", "N=3", "model.M=5", "ridge.num=4"]


def sweep_points(params) -> list[list]:
    """Every point of a sweep's parameters as parsed overrides (seeds: the first only; they do
    not change what is valid)."""
    parser = OverridesParser.create()
    axes = []
    for o in parser.parse_overrides([f"{k}={v}" for k, v in params.items()]):
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.value()]
        values = values[:1] if o.key_or_group == "seed" else values
        axes.append([parser.parse_override(f"{o.key_or_group}={v}") for v in values])
    return [list(point) for point in itertools.product(*axes)]


def configs():
    """(lens, config overrides, value overrides) of every config: every group option and every
    point of every experiment's sweep. Group choices need a composition; values are set on it."""
    plugin = OverridesParser.create().parse_override(f"target.fn={CUSTOM_TARGET}")
    for model, target in itertools.product(GROUPS["model"], GROUPS["target"]):
        yield "rfa", (f"model={model}", f"target={target}"), [plugin] * (target == "custom")
    for scale in GROUPS["scale"]:
        yield "rfa", (f"scale={scale}",), []
    for lens in ("svm", "lowrank", "ntk", "theory"):
        for kind in LENSES[lens].kinds:
            yield lens, (f"kind={kind}",), []
    for experiment in GROUPS["experiment"]:
        lens = experiment.split("_")[0]
        params = compose(lens, [f"+experiment={experiment}"],
                         return_hydra_config=True).hydra.sweeper.params
        assert params, f"{experiment} names no sweep"
        for point in sweep_points(params):
            groups = tuple(f"{o.key_or_group}={o.value()}" for o in point
                           if o.key_or_group in GROUPS)
            values = [o for o in point if o.key_or_group not in GROUPS]
            yield lens, (f"+experiment={experiment}", *groups), values


def test_every_config_builds_its_lens_settings():
    built, composed = {lens: 0 for lens in LENSES}, {}
    for lens, groups, values in configs():
        if (lens, groups) not in composed:
            composed[lens, groups] = compose(lens, list(groups))
        cfg = composed[lens, groups].copy()
        for o in values:
            OmegaConf.update(cfg, o.key_or_group, o.value())
        settings = LENSES[lens].validate(job_config(cfg))
        assert isinstance(settings, RunSettings), (lens, groups, values)
        built[lens] += 1
    assert set(GROUPS["kind"]) == {k for study in LENSES.values() for k in study.kinds}
    assert min(built.values()) >= 10, built


@pytest.mark.parametrize("lens", LENSES)
def test_missing_and_unknown_keys_are_named(lens):
    cfg = job_config(compose(lens))
    with pytest.raises(ConfigError, match="seed is missing"):
        LENSES[lens].validate({k: v for k, v in cfg.items() if k != "seed"})
    with pytest.raises(ConfigError, match="sead is not a setting"):
        LENSES[lens].validate({**cfg, "sead": 1})


def test_launcher_presets_select_their_launchers():
    targets = {name: compose("rfa", [f"launcher={name}"], return_hydra_config=True)
               .hydra.launcher._target_ for name in GROUPS["launcher"]}
    assert "BasicLauncher" in targets["local"]
    assert "JoblibLauncher" in targets["joblib"]
    assert "SlurmLauncher" in targets["slurm"]


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], cwd=cwd, check=True, capture_output=True,
                          text=True)


def test_single_run_entry_point(tmp_path):
    run("-m", "sims.rfa", *TINY, f"hydra.run.dir={tmp_path}")
    assert (tmp_path / "rows.csv").exists() and (tmp_path / "run.json").exists()


@pytest.mark.parametrize("launcher", ["launcher=joblib", "hydra/launcher=submitit_local"])
def test_tiny_multirun(tmp_path, launcher):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher" if "submitit" in launcher
                        else "hydra_plugins.hydra_joblib_launcher")
    run("-m", "sims.rfa", "-m", launcher, "model=rfa,rfmlp", "seed=0,1", *TINY,
        f"hydra.sweep.dir={tmp_path}")
    table = collect(tmp_path)
    assert table.job.nunique() == 4
    first = sorted(table.job.unique())[0].split(",")
    assert "model=rfa" in first and "seed=0" in first  # the folder is named by the setting


def test_collect_console_command(tmp_path):
    run("-m", "sims.rfa", "-m", "seed=0,1", *TINY, f"hydra.sweep.dir={tmp_path}")
    out = run("-m", "rfattn.experiment.collect", str(tmp_path))
    assert "from 2 jobs" in out.stdout


def main_job(tmp_path, study, launcher, *overrides):
    """``python -m paper_repro --studies STUDY [STUDY ...]`` at a tiny size: figure names
    (each starts with its study), report text."""
    studies = study.split()
    out = run("-m", "paper_repro", "--studies", *studies, "--launcher", launcher,
              "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "fig"), *overrides)
    assert "report:" in out.stdout
    figs = {p.name for p in (tmp_path / "fig").glob("*.png")}
    assert all(name.startswith(tuple(f"{s}_" for s in studies)) for name in figs)
    return figs, (tmp_path / "fig" / "REPORT.md").read_text()


@pytest.mark.slow  # make test-main-job (CI runs it)
def test_main_job_at_tiny_size_rfa_and_theory(tmp_path):
    # the theory study reuses the rfa study's simulations and predictions (finished jobs)
    figs, report = main_job(tmp_path, "rfa theory", "joblib", "n_grid=[32,64,128]",
                            "n_val=40", "n_test=60", "ridge.num=5", "d=3", "N=3", "model.M=8",
                            "seed=0", "n_sample=512", "mc_heads=64", "seeds=2",
                            "network_width=256", "network_steps=50", "network_seeds=1")
    rfa_figs = {f for f in figs if f.startswith("rfa_")}
    assert len(rfa_figs) == 5 and "rfa_bias_scan_d3_N3_M8.png" in figs
    assert "rfa-beats-rfmlp" in report and "heads-approach-kernel" in report
    assert {"theory_predicted_vs_measured_d3_N3_M8.png", "theory_learnability_d3_N3_M8.png",
            "theory_double_descent_d3_N3_M8.png", "theory_ntk_sphere_D3_depth3.png",
            "theory_ntk_networks_sphere_D3_depth2.png"} <= figs
    assert "theory-matches-kernel" in report and "double-descent-peak-at-p" in report
    assert "ntk-trained-networks-match-kernel-regression" in report


@pytest.mark.slow  # make test-main-job (CI runs it)
def test_main_job_at_tiny_size_ntk(tmp_path):
    figs, report = main_job(tmp_path, "ntk", "local", "width=8,16", "seed=0,1", "steps=10",
                            "record_every=5", "n=24", "angles=9", "m_grid=[16,64,256]")
    assert len(figs) == 5
    assert "empirical-ntk-converges" in report and "fig3-decay-rate" in report


@pytest.mark.slow  # make test-main-job (CI runs it)
def test_main_job_at_tiny_size_snnk(tmp_path):
    # n and d are the layer job's pairs and the transformer's samples and token dimension
    figs, report = main_job(tmp_path, "snnk", "joblib", "seed=0,1", "n=200", "n_test=200",
                            "d=16", "patterns=16", "m=16", "epochs=3", "m_grid=[16,64,256]",
                            "hidden=[8,16]", "m_bundle=[16,64]", "steps=60", "eval_every=20")
    assert len(figs) == 3
    for claim in ("snnk-layer-unbiased", "snnk-gerf-lower-error",
                  "snnk-bundled-closed-form-matches-gd", "snnk-adapter-parameter-reduction"):
        assert claim in report


@pytest.mark.slow  # make test-main-job (CI runs it)
def test_main_job_at_tiny_size_attention(tmp_path):
    figs, report = main_job(tmp_path, "attention", "joblib", "seed=0", "n_sample=64",
                            "heads_grid=[16,64]", "draws=3", "check_heads=512", "heads=8,16",
                            "n=6", "n_grid=[8,16]", "n_test=16", "steps=10")
    assert figs == {"attention_finite_heads_error_vs_heads_n_sample64_d4_N4.png",
                    "attention_ntk_vs_heads_n6_N5_d4.png",
                    "attention_kernel_regime_training_N5_d4.png"}
    for claim in ("attention-kernel-matches-monte-carlo", "finite-heads-error-1-over-M",
                  "softmax-control-variate-error", "softmax-hermite-kernel-equal-cost",
                  "attention-ntk-converges-heads-1-2",
                  "attention-ntk-query-key-share-vanishes",
                  "attention-ntk-matches-neural-tangents",
                  "attention-training-matches-ntk-regression"):
        assert claim in report


def test_ntk_entry_point(tmp_path):
    run("-m", "sims.ntk", "kind=width_convergence", "width=16", "depth=2", "n=5",
        f"hydra.run.dir={tmp_path}")
    assert "relative_error" in (tmp_path / "rows.csv").read_text()


@pytest.mark.slow  # make test-main-job (CI runs it)
def test_main_job_at_tiny_size_lowrank(tmp_path):
    figs, report = main_job(tmp_path, "lowrank", "joblib", "d=16", "patterns=16", "n=200",
                            "n_test=200", "m=16", "epochs=3", "probe=64", "seed=0,1",
                            "prune_rates=[0.0,0.5]", "r_grid=[0,1,2,4,6,16]")
    assert len(figs) == 7
    assert "kq-update-rank-equals-patterns" in report and "lora-rank-2K-matches-full" in report


def test_lowrank_entry_point(tmp_path):
    run("-m", "sims.lowrank", "kind=adapter", "method=svfit", "r=1", "d=8", "patterns=8",
        "n=64", "n_test=64", "m=8", "epochs=1", f"hydra.run.dir={tmp_path}")
    assert "test_error" in (tmp_path / "rows.csv").read_text()


def test_main_job_refuses_an_override_no_sweep_uses(tmp_path):
    out = subprocess.run([sys.executable, "-m", "paper_repro", "--studies", "svm", "--out",
                          str(tmp_path), "stepz=3"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "'stepz=3' sets a key that no sweep of svm has" in out.stderr


@pytest.mark.slow  # make test-main-job (CI runs it)
def test_main_job_at_tiny_size_svm(tmp_path):
    pytest.importorskip("cvxpy")
    figs, report = main_job(tmp_path, "svm", "joblib", "runs=6", "steps=300",
                            "record_every=100")
    assert len(figs) == 5
    assert "e3-kq-converges-to-nuclear-svm" in report and "e5-nuclear-rank-below" in report


def test_svm_entry_point(tmp_path):
    run("-m", "sims.svm", "kind=rank", "runs=3", "n=3", "N=3", "d=3", "official_sdp=false",
        f"hydra.run.dir={tmp_path}")
    assert "frobenius_rank" in (tmp_path / "rows.csv").read_text()
