"""rfattn as a library: the built wheel, installed into a fresh environment with no repository on
the path, runs every study from its packaged configs and collects the results.

Slow (a virtual environment and an install); ``.ci/run`` runs it after the default suite.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .helpers import sh

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "rfa": ["+experiment=rfa_quick", "model=rfa,rfmlp", "target=query_key", "target.degree=1",
            "seed=0", "n_grid=[16,32]", "n_val=20", "n_test=30", "model.M=4", "ridge.num=3"],
    "svm": ["kind=rank", "runs=2", "n=3", "N=3", "d=3", "official_sdp=false", "seed=0,1"],
    "lowrank": ["kind=adapter", "method=lora", "r=1", "d=8", "patterns=8", "n=64", "n_test=64",
                "m=8", "epochs=1", "seed=0,1"],
    "ntk": ["kind=width_convergence", "width=8,16", "depth=2", "n=5"],
    "theory": ["kind=sphere", "degrees=50", "quadrature_points=200", "n_sample=100",
               "n_grid=[8,16]", "n_test=50", "seeds=2", "seed=0,1"],
}


@pytest.mark.slow
def test_the_wheel_runs_every_study_outside_the_repository(tmp_path):
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
       tmp_path / "dist", ROOT)
    wheel = next((tmp_path / "dist").glob("rfattn-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    configs = sorted(p.relative_to(ROOT).as_posix()
                     for p in (ROOT / "rfattn" / "conf").rglob("*.yaml"))
    assert set(configs) <= set(names), "the wheel lacks configs"
    env_dir = tmp_path / "env"
    sh(sys.executable, "-m", "venv", env_dir)
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    sh("bash", ROOT / "tools" / "install-torch.sh", python)
    sh(python, "-m", "pip", "install", "-q", wheel)
    work = tmp_path / "elsewhere"  # no repository here, nor on the path
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    origin = sh(python, "-c", "import rfattn, sims; print(rfattn.__file__, sims.__file__)",
                cwd=work, env=env).stdout
    assert str(ROOT) not in origin
    for study, overrides in TINY.items():
        sweep = work / study
        launcher = "launcher=joblib" if study == "rfa" else "launcher=local"
        sh(bin_dir / f"rfattn-{study}", "-m", launcher, *overrides, f"hydra.sweep.dir={sweep}",
           cwd=work, env=env)
        out = sh(bin_dir / "rfattn-collect", sweep, cwd=work, env=env).stdout
        assert "collected" in out and (sweep / "results.parquet").exists()
    check = subprocess.run([bin_dir / "rfattn-check", "rfa", "-m", *TINY["rfa"][:-1],
                            "ridge.num=3,0"], capture_output=True, text=True, cwd=work, env=env)
    assert check.returncode == 2 and "ridge.num must be an integer >= 1" in check.stderr
