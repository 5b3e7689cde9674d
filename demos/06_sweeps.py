# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Sweeps: a Hydra multirun, checked, resumed, collected and drawn
#
# Every study of rfattn is a Hydra application (`python -m sims.rfa`, `sims.svm`,
# `sims.lowrank`, `sims.ntk`, `sims.theory`, or the console scripts `rfattn-rfa`, ...). One
# job is one setting and one seed; it writes tidy rows (`rows.csv`: the setting columns, `n`,
# `seed`, `metric`, `value`) and a run record (`run.json`) into its own folder. A **sweep**
# (`-m`) is the product of comma-separated values:
#
# ```bash
# rfattn-check rfa -m model=rfa,rfmlp,kernel target.degree=1,2 seed=0,1   # check first
# rfattn-rfa -m model=rfa,rfmlp,kernel target.degree=1,2 seed=0,1 launcher=joblib
# rfattn-collect outputs/rfa/multirun/<time>                              # one table
# ```
#
# `launcher=joblib` runs jobs in parallel on one machine, `launcher=slurm` submits each job to
# a SLURM cluster, `device=cuda` (or the default `auto`) puts the heavy linear algebra on a
# GPU. This demo runs a small sweep of the RFA study (Fu, Guo, Bai, Mei 2023, arXiv 2307.11353)
# from Python, the same way. Hydra: Yadan (2019), https://hydra.cc.
#
# **Knob**: `SEEDS` (2 seeds, 12 jobs, run in about 25 s on 2 CPU cores; more seeds give
# tighter bands; add `"launcher=joblib"` to `OVERRIDES` to use every core).

# %%
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from rfattn.experiment import collect

SEEDS = 2          # <- the knob
sweep_dir = Path(tempfile.mkdtemp(prefix="rfattn-sweep-"))
OVERRIDES = ["scale=quick", "model=rfa,rfmlp,kernel", "target.degree=1,2",
             "seed=" + ",".join(map(str, range(SEEDS))), "n_grid=[32,64,128,256,512]",
             f"hydra.sweep.dir={sweep_dir}"]


def run(*command):
    """Run a command of the lab; return its output (stdout and stderr) as text."""
    done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return done.stdout + done.stderr

# %% [markdown]
# ## Check, then run
#
# `rfattn-check` (`python -m sims.check`) composes every job of the sweep, validates its
# settings and estimates its memory and time, before anything runs: a bad value is named in
# one line.

# %%
print(run("sims.check", "rfa", "-m", "--quiet", *OVERRIDES).strip())
log = run("sims.rfa", "-m", *OVERRIDES)
print(log.strip().splitlines()[-1])
jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
print(len(jobs), "job folders, for example", jobs[0])
assert len(jobs) == 3 * 2 * SEEDS

# %% [markdown]
# ## Resume
#
# A sweep that was interrupted is resumed by running the same command with the same
# `hydra.sweep.dir`: finished jobs are skipped, unfinished ones run. Here one job's folder is
# removed, as if the machine had stopped during it.

# %%
shutil.rmtree(sweep_dir / jobs[0])
log = run("sims.rfa", "-m", *OVERRIDES)
summary = log.strip().splitlines()[-1]
print(summary)
ran, skipped = map(int, re.search(r"(\d+) jobs run, (\d+) skipped", summary).groups())
assert (ran, skipped) == (1, len(jobs) - 1)

# %% [markdown]
# ## Collect and draw
#
# `collect` joins every job's rows into one tidy table (and writes `results.parquet` into the
# sweep folder); seaborn draws it with one line, the band over seeds included.

# %%
table = collect(sweep_dir)
print(table.shape, "columns:", ", ".join(table.columns[:12]), "...")
errors = table[table.metric == "test_error"]
grid = sns.relplot(data=errors, x="n", y="value", hue="model", col="degree", kind="line",
                   marker="o", height=3.2)
grid.set(xscale="log", yscale="log", ylabel="normalized test MSE")
plt.show()
at_512 = errors[errors.n == 512].groupby(["degree", "model"]).value.mean().unstack()
print(at_512.round(3))
# the teaching point of the RFA paper, from the table: kernel < RFA < RFMLP at degree 2
assert at_512.loc[2, "kernel"] < at_512.loc[2, "rfa"] < at_512.loc[2, "rfmlp"]
shutil.rmtree(sweep_dir)

# %% [markdown]
# ## Exercises
#
# 1. Add `launcher=joblib` to the overrides and time the sweep. Why does the speed-up stay
#    below the number of cores when BLAS already uses several threads per job?
# 2. Sweep `model.M=16,64,256` for `model=rfa` only and draw the error at n = 512 against M.
#    Where does it meet the kernel's?
# 3. Give `seed=-1` to the check. What does it say, and when did it say it?
