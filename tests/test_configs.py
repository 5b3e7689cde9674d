"""Every config composes; each entry point runs at a tiny size (joblib, submitit local)."""

import subprocess
import sys
from pathlib import Path

import pytest

from rfattn.experiment import collect
from rfattn.experiment.hydra_app import CONF_DIR, compose, job_config
from rfattn.lowrank.study import validate as validate_lowrank
from rfattn.ntk.study import KINDS
from rfattn.rfa.study import validate
from rfattn.svm.study import validate as validate_svm

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml"))
          for g in ("model", "target", "launcher", "experiment", "scale")}
TINY = ["n_grid=[16,32]", "n_val=30", "n_test=40", "d=3", "N=3", "model.M=5", "ridge.num=4"]


@pytest.mark.parametrize("group", ["model", "target", "launcher"])
def test_every_group_option_composes_and_validates(group):
    for option in GROUPS[group]:
        cfg = compose("rfa", [f"{group}={option}"], return_hydra_config=True)
        validate(job_config(compose("rfa", [f"{group}={option}"])))
        assert cfg.hydra.launcher._target_.startswith("hydra")


@pytest.mark.parametrize("experiment", GROUPS["experiment"])
def test_every_experiment_composes_with_its_sweep(experiment):
    primary = experiment.split("_")[0]  # rfa_* -> conf/rfa.yaml, ntk_* -> conf/ntk.yaml, ...
    cfg = compose(primary, [f"+experiment={experiment}"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params, "an experiment names its sweep"
    if primary == "rfa":
        validate(job_config(compose(primary, [f"+experiment={experiment}"])))
    elif primary == "svm":
        validate_svm(job_config(compose(primary, [f"+experiment={experiment}"])))
    elif primary == "lowrank":
        for key, values in cfg.hydra.sweeper.params.items():  # every swept value validates
            for value in str(values).split(","):
                validate_lowrank(job_config(compose(primary, [f"+experiment={experiment}",
                                                              f"{key}={value}"])))
    else:
        assert job_config(compose(primary, [f"+experiment={experiment}"]))["kind"] in KINDS


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
    """``python -m paper_repro --studies STUDY`` at a tiny size: figure names, report text."""
    out = run("-m", "paper_repro", "--studies", study, "--launcher", launcher,
              "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "fig"), *overrides)
    assert "report:" in out.stdout
    figs = {p.name for p in (tmp_path / "fig").glob("*.png")}
    assert all(name.startswith(f"{study}_") for name in figs)
    return figs, (tmp_path / "fig" / "REPORT.md").read_text()


def test_main_job_at_tiny_size_rfa(tmp_path):
    figs, report = main_job(tmp_path, "rfa", "local", "n_grid=[32,64,128]", "n_val=40",
                            "n_test=60", "ridge.num=5", "d=3", "N=3", "model.M=8")
    assert len(figs) == 4
    assert "rfa-beats-rfmlp" in report and "heads-approach-kernel" in report


def test_main_job_at_tiny_size_ntk(tmp_path):
    figs, report = main_job(tmp_path, "ntk", "local", "width=8,16", "seed=0,1", "steps=10",
                            "record_every=5", "n_train=24", "angles=9", "m_grid=[16,64,256]")
    assert len(figs) == 5
    assert "empirical-ntk-converges" in report and "fig3-decay-rate" in report


def test_ntk_entry_point(tmp_path):
    run("-m", "sims.ntk", "kind=convergence", "width=16", "depth=2", "n_inputs=5",
        f"hydra.run.dir={tmp_path}")
    assert "relative_error" in (tmp_path / "rows.csv").read_text()


def test_main_job_at_tiny_size_lowrank(tmp_path):
    figs, report = main_job(tmp_path, "lowrank", "joblib", "d=16", "M=16", "n_train=200",
                            "n_test=200", "m=16", "epochs=3", "probe=64", "seeds=[0,1]",
                            "prune_rates=[0.0,0.5]")
    assert len(figs) == 7
    assert "kq-update-rank-equals-patterns" in report and "lora-rank-2K-matches-full" in report


def test_lowrank_entry_point(tmp_path):
    run("-m", "sims.lowrank", "kind=adapter", "method=svfit", "r=1", "seeds=[0]", "d=8", "M=8",
        "n_train=64", "n_test=64", "m=8", "epochs=1", f"hydra.run.dir={tmp_path}")
    assert "test_error" in (tmp_path / "rows.csv").read_text()


def test_main_job_at_tiny_size_svm(tmp_path):
    pytest.importorskip("cvxpy")
    figs, report = main_job(tmp_path, "svm", "joblib", "runs=6", "steps=300",
                            "record_every=100")
    assert len(figs) == 5
    assert "e3-kq-converges-to-nuclear-svm" in report and "e5-nuclear-rank-below" in report


def test_svm_entry_point(tmp_path):
    run("-m", "sims.svm", "kind=rank", "runs=3", "n=3", "T=3", "d=3", "official_sdp=false",
        f"hydra.run.dir={tmp_path}")
    assert "frobenius_rank" in (tmp_path / "rows.csv").read_text()
