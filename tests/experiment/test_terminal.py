"""What a user sees: one line per error, resumable interrupts, honest collect and report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from rfattn.experiment.collect import main as collect_main
from rfattn.experiment.claims import main as report_main
from rfattn.experiment.check import main as check_main
from rfattn.experiment.hydra_app import MAX_DIRNAME, compose, job_dirname
from tests.studies import STUDIES
from rfattn.experiment.records import ROWS_FILE, run_job

ROOT = Path(__file__).resolve().parents[2]
TINY = ["d=3", "N=3", "n_grid=[16,32]", "n_val=20", "n_test=30", "model.M=4", "ridge.num=3"]


def study(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "sims.rfa", *args], cwd=ROOT,
                          capture_output=True, text=True, **kwargs)


def one_line_error(out, code=2):
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    return errors[0]


def test_a_bad_value_is_one_line_before_any_folder(tmp_path):
    line = one_line_error(study("d=0", f"hydra.run.dir={tmp_path / 'run'}"))
    assert line == "error: d must be an integer >= 1 (got 0)"
    assert not (tmp_path / "run").exists()


def test_a_mistyped_key_added_with_plus_is_refused(tmp_path):
    line = one_line_error(study("+n_tset=5", f"hydra.run.dir={tmp_path / 'run'}"))
    assert "n_tset is not a setting" in line


def test_a_sweep_with_one_bad_point_runs_nothing(tmp_path):
    line = one_line_error(study("-m", *TINY[:-1], "ridge.num=3,0", f"hydra.sweep.dir={tmp_path}"))
    assert line.startswith("error: job ") and "ridge.num=0" in line and "ridge.num" in line
    assert not list(tmp_path.iterdir())  # not even multirun.yaml


def test_a_refused_rerun_leaves_the_folder_as_it_was(tmp_path):
    assert study("-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path}").returncode == 0
    run_json = next(tmp_path.glob("*seed=1/run.json"))
    run_json.write_text(run_json.read_text().replace('"config_digest": "', '"config_digest": "x'))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    line = one_line_error(study("-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path}"))
    assert "holds results of another config" in line
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_resuming_on_another_device_skips_the_finished_jobs(tmp_path):
    assert study("-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path}").returncode == 0
    out = study("-m", *TINY, "seed=0,1", "device=cpu", f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0 and "0 to run, 2 already done" in out.stdout + out.stderr
    assert "sweep done: 0 jobs run, 2 skipped" in out.stdout + out.stderr


def test_jobs_log_their_setting_time_and_headline(tmp_path):
    assert study(*TINY, f"hydra.run.dir={tmp_path}").returncode == 0
    text = (tmp_path / "rfa.log").read_text()
    assert "start " in text and "rfa on target query_key (d=3, N=3, M=4)" in text
    assert "test error" in text and "done in " in text


def test_long_override_lists_make_short_folder_names():
    overrides = [f"{key}={value}" for key, value in (
        ("d", 3), ("N", 3), ("n_val", 20), ("n_test", 30), ("model.M", 4), ("ridge.num", 3),
        ("ridge.log10_min", -7), ("ridge.log10_max", 0), ("ridge.selection", "loo"),
        ("noise_std", 0.1), ("tokens", "gaussian"), ("centred_target", True), ("seed", 12),
        ("model.qk_variance", 0.3), ("model.activation", "softmax"), ("target.degree", 3),
        ("n_grid", "[16,32,64,128,256,512,1024,2048]"))]
    name = compose("rfa", overrides, return_hydra_config=True).hydra.sweep.subdir
    assert len(overrides) == 17 and len(name.encode()) <= MAX_DIRNAME
    assert name == job_dirname(",".join(sorted(overrides)))  # deterministic: resumable
    assert name != job_dirname(",".join(sorted(overrides)) + "0")
    assert job_dirname("seed=0") == "seed=0"


def test_ctrl_c_keeps_finished_jobs_and_says_so_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "sims.rfa", "-m", *TINY[:-3], "model.M=64", "ridge.num=3",
           "n_grid=[256,2048]", "seed=range(0,40)", f"hydra.sweep.dir={tmp_path}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 120
    while not list(tmp_path.rglob(ROWS_FILE)) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1].startswith("interrupted: finished jobs are kept")
    assert 1 <= len(list(tmp_path.rglob(ROWS_FILE))) < 40


def test_collect_names_the_jobs_without_rows(tmp_path, capsys):
    def task(cfg):
        return pd.DataFrame({"seed": [cfg["seed"]], "metric": ["m"], "value": [1.0]})

    for seed in range(2):
        run_job(tmp_path / f"seed={seed}", {"seed": seed}, task)
    for seed in range(2, 4):  # failed jobs: a folder with a log and nothing else
        (tmp_path / f"seed={seed}").mkdir()
        (tmp_path / f"seed={seed}" / "rfa.log").write_text("error\n")
    assert collect_main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "collected 2 rows from 2 jobs" in out and "2 jobs have no rows" in out
    assert "seed=2" in out and "seed=3" in out
    assert collect_main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_report_on_a_folder_without_claims_creates_nothing(tmp_path, capsys):
    assert report_main([str(tmp_path / "nonexistent_dir")]) == 2
    assert "holds no claims" in capsys.readouterr().err
    assert not (tmp_path / "nonexistent_dir").exists()


def test_check_refuses_a_sweep_with_one_bad_point_before_anything(tmp_path, capsys):
    code = check_main(STUDIES, ["rfa", "-m", *TINY[:-1], "ridge.num=3,0", "seed=0,1",
                       f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    err = capsys.readouterr().err
    assert code == 2 and "ridge.num=0" in err and "ridge.num must be an integer >= 1" in err
    assert not (tmp_path / "sweep").exists()


def test_check_estimates_every_job_and_sees_the_finished_ones(tmp_path, capsys):
    assert study("-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path}").returncode == 0
    assert check_main(STUDIES, ["rfa", "-m", *TINY, "seed=0,1,2",
                                f"hydra.sweep.dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "3 jobs valid: 1 to run, 2 already done" in out
    status = [line.rsplit("  ", 1)[-1] for line in out.splitlines()[1:-1]]
    assert sorted(status) == ["done (skipped)", "done (skipped)", "to run"]
    assert check_main(STUDIES, ["rfa", "seed=0,1"]) == 2  # a sweep without -m
    assert "add -m" in capsys.readouterr().err


def test_the_scale_group_is_selected_without_plus():
    assert compose("rfa", ["scale=quick"]).d == 4
    assert compose("rfa", ["+experiment=rfa_quick", "scale=full"]).d == 8


def test_check_names_an_unknown_option_or_key_in_one_line(capsys):
    for argv, words in ((["rfa", "target=my_target"], "Could not find 'target/my_target'"),
                        (["rfa", "-m", "target=my_target,query_key"], "options: custom"),
                        (["rfa", "sead=1"], "Could not override 'sead'"),
                        (["theory", "kind=nope"], "Could not find 'kind/nope'")):
        assert check_main(STUDIES, argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rfattn-check: ") and words in err and "\n" not in err, err


def test_ctrl_c_between_jobs_is_held_until_the_next_job(monkeypatch):
    from rfattn.experiment.hydra_app import _Interrupt

    for name in ("pending", "in_job", "jobs_here"):
        monkeypatch.setattr(_Interrupt, name, False)
    seen = []

    def job(cfg):
        seen.append(cfg["seed"])
        with pytest.raises(KeyboardInterrupt):  # during a job's own work: at once
            _Interrupt.handler(signal.SIGINT, None)
        return pd.DataFrame()

    run = _Interrupt.guard(job)
    run({"seed": 0})
    _Interrupt.handler(signal.SIGINT, None)  # between jobs: held
    assert _Interrupt.pending and seen == [0]
    with pytest.raises(KeyboardInterrupt):  # the next job does not start
        run({"seed": 1})
    assert seen == [0]
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C: at once
        _Interrupt.handler(signal.SIGINT, None)


COUNT_COMPOSITIONS = """
import json, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from rfattn.experiment.hydra_app import main
from rfattn.rfa.study import STUDY
calls = []
load = ConfigLoaderImpl.load_configuration
def counted(self, config_name, overrides, run_mode, *args, **kwargs):
    calls.append(list(overrides))
    return load(self, config_name, overrides, run_mode, *args, **kwargs)
ConfigLoaderImpl.load_configuration = counted
try:
    main(STUDY)
finally:
    print("COMPOSED", json.dumps(calls))
"""


@pytest.mark.parametrize("launcher", ["joblib"])  # the main job's launcher
def test_a_sweep_composes_each_job_once_and_runs_the_config_it_checked(tmp_path, launcher):
    """Hydra would compose each job three times (Preflight, batch check, launcher): the
    Preflight's composition is the one the job runs, with the same resolved config."""
    out = subprocess.run([sys.executable, "-c", COUNT_COMPOSITIONS, "-m", *TINY, "seed=0,1,2",
                          f"launcher={launcher}", f"hydra.sweep.dir={tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    composed = json.loads(out.stdout.split("COMPOSED")[-1])
    per_job = [sum(f"seed={seed}" in overrides for overrides in composed) for seed in range(3)]
    assert per_job == [1, 1, 1]
    for seed in range(3):
        (folder,) = tmp_path.glob(f"*seed={seed}")
        ran = json.loads((folder / "run.json").read_text())["config"]
        fresh = compose("rfa", [*TINY, f"seed={seed}", f"launcher={launcher}"])
        assert ran == OmegaConf.to_container(fresh, resolve=True)
