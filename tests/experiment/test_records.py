"""Experiment layer: atomic records, resume, collect, claims and report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rfattn.experiment import Claim, collect, load_claims, run_job, save_study_claims, write_report
from rfattn.experiment.records import ROWS_FILE, RUN_FILE, FolderConflict, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def task(cfg):
    return pd.DataFrame({"seed": [cfg["seed"]] * 2, "metric": ["a", "b"], "value": [1.0, 2.0]})


def test_run_job_writes_once_and_skips(tmp_path):
    calls = []

    def counted(cfg):
        calls.append(cfg)
        return task(cfg)

    first = run_job(tmp_path, {"seed": 3, "device": "cpu"}, counted)
    again = run_job(tmp_path, {"seed": 3, "device": "auto"}, counted)  # another device resumes
    assert len(calls) == 1 and first.equals(again)
    meta = json.loads((tmp_path / RUN_FILE).read_text())
    assert meta["config"] == {"seed": 3, "device": "cpu"}
    assert meta["rfattn_version"] and meta["git_revision"]
    env = meta["environment"]
    assert env["device"] == "cpu" and env["torch_threads"] >= 1 and env["torch"]
    assert env["cpu_capability"]  # torch's CPU kernels (the lab pins AVX2 on x86-64)
    with pytest.raises(FolderConflict, match="another config"):
        run_job(tmp_path, {"seed": 4}, counted)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        run_job(tmp_path, {"seed": 0}, task)
    finally:
        os.umask(old)
    for name in (ROWS_FILE, RUN_FILE):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_rows_with_nan_are_refused(tmp_path):
    with pytest.raises(ValueError, match="non-finite"):
        run_job(tmp_path, {"seed": 0},
                lambda c: pd.DataFrame({"seed": [0], "metric": ["a"], "value": [float("nan")]}))
    assert not (tmp_path / ROWS_FILE).exists()


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")

    class Boom(str):
        def encode(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, Boom("new"))
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_collect_joins_jobs(tmp_path):
    for s in range(3):
        run_job(tmp_path / f"seed={s}", {"seed": s}, task)
    table = collect(tmp_path)
    assert len(table) == 6 and sorted(table.seed.unique()) == [0, 1, 2]
    assert (tmp_path / "results.parquet").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no rows.csv"):
        collect(empty)


def test_claims_verdicts_origins_and_report(tmp_path):
    lesson = "x is not small here"
    claims = [Claim("a", "s", "P", "x small", 0.1, 0.5, "<=", "f.png", "d", origin="paper"),
              Claim("b", "s", "P", "x large", 0.1, 0.5, ">=", None, "d", origin="paper"),
              Claim("c", "s", "P", "not measured", None, 0.5, ">=", None, "no data",
                    origin="paper"),
              Claim("e", "s", "P", "|x| tiny", 0.1, 0.01, "<=", None, "d", origin="lab",
                    lesson=lesson)]
    assert [c.verdict for c in claims] == ["pass", "fail", "not run", "fail"]
    with pytest.raises(ValueError, match="details"):
        Claim("d", "s", "P", "no reason", float("nan"), 1.0, ">=", origin="paper")
    with pytest.raises(ValueError, match="origin must be one of paper, lab"):
        Claim("f", "s", "P", "x", 1.0, 1.0, ">=")
    with pytest.raises(ValueError, match="a lab claim needs a lesson"):
        Claim("g", "s", "P", "x", 1.0, 1.0, ">=", origin="lab")
    save_study_claims("s", claims, tmp_path)
    md, js = write_report(tmp_path)
    assert [c.verdict for c in load_claims(tmp_path)] == ["pass", "fail", "not run", "fail"]
    data = json.loads(js.read_text())
    assert {"id", "paper", "statement", "value", "threshold", "verdict", "origin"} <= set(data[0])
    text = md.read_text()
    assert "**3 paper claims**: 1 pass, 1 fail, 1 not run; **1 lab claim**: 0 pass, 1 refuted" \
        in text and "![f.png](f.png)" in text
    assert "| e | lab | \\|x\\| tiny |" in text and "**refuted**" in text
    assert f"*Learned:* {lesson}" in text


SWEEP = ["-m", "model=rfa,rfmlp", "seed=0,1,2", "n_grid=[32,64]", "n_val=40", "n_test=60",
         "d=3", "N=3", "model.M=8", "ridge.num=4"]


def sweep(sweep_dir, *extra, wait=True):
    cmd = [sys.executable, "-m", "sims.rfa", *SWEEP, f"hydra.sweep.dir={sweep_dir}", *extra]
    env = dict(os.environ, HYDRA_FULL_ERROR="1")
    if wait:
        return subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _table(d):
    t = collect(d, write=False)
    return t.sort_values(["job", "metric", "n"]).reset_index(drop=True)


def test_interrupted_sweep_resumes_to_the_same_table(tmp_path):
    sweep(tmp_path / "whole")
    proc = sweep(tmp_path / "cut", wait=False)
    deadline = time.time() + 120
    while not list((tmp_path / "cut").rglob(ROWS_FILE)) and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((tmp_path / "cut").rglob(ROWS_FILE)))
    assert 1 <= done < 6, f"the sweep was not cut mid-way ({done} of 6 jobs done)"
    out = sweep(tmp_path / "cut")
    assert out.stderr.count("skipping") + out.stdout.count("skipping") == done
    pd.testing.assert_frame_equal(_table(tmp_path / "whole"), _table(tmp_path / "cut"))
