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
# # Your own question: a target and an activation of your own, swept, predicted and drawn
#
# The lab's studies take a researcher's own functions without any edit of the package. A
# setting whose value has the form `module:function` (the form of Python entry points) names
# a function of your own module, found on `PYTHONPATH`:
#
# ```bash
# export PYTHONPATH=$PWD                       # the folder of mymodule.py
# rfattn-check rfa -m target=custom target.fn=mymodule:f model=rfa,rfmlp seed=0,1
# rfattn-rfa -m target=custom target.fn=mymodule:f model=rfa,rfmlp seed=0,1 hydra.sweep.dir=out/sim
# rfattn-rfa -m target=custom target.fn=mymodule:f model.activation=mymodule:g \
#     model.name=rfa_g seed=0,1 hydra.sweep.dir=out/sim
# rfattn-theory -m kind=rfa_curves model=rfa,rfmlp 'targets=[{name: custom, fn: "mymodule:f"}]' \
#     hydra.sweep.dir=out/theory
# rfattn-plot out/sim --theory out/theory
# ```
#
# The question here: random-feature attention (Fu, Guo, Bai, Mei 2023, arXiv 2307.11353) is
# built for targets that are averages over keys of a function of the query-key pair. Does that
# hold for a target of our own, an oscillating similarity
# $f(x_0, X) = \frac1N\sum_i \sin(3\langle x_0, x_i\rangle)$, and does a smooth activation
# (GELU in place of ReLU in the attention scores) change the answer? The learning-curve theory
# (eigenlearning: Simon, Dickens, Karkada, DeWeese 2023) predicts each curve from the kernel's
# spectrum; for GELU heads that kernel has no closed form and is a Monte Carlo average over
# heads, whose error the theory's rows record.
#
# **Knob**: `N_MAX` (512: about 40 s on 2 CPU cores; 2048 shows the curves flatten toward
# their noise-free limits).

# %%
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from rfattn.experiment import collect
from rfattn.experiment.plot_sweep import draw

N_MAX = 512        # <- the knob
SEEDS = "0,1"

# %% [markdown]
# ## The question as code
#
# A target takes the queries `x0` (n, d) and the keys `X` (n, N, d) and returns (n,) values;
# the lab normalizes it to unit variance from a seeded sample and records the constants in
# each job's `run.json`. An activation maps the attention scores elementwise (the heads keep
# the 1/N normalization of ReLU attention).


# %%
def oscillating_similarity(x0, X):
    """(1/N) sum_i sin(3 <x0, x_i>)."""
    return torch.sin(3.0 * torch.einsum("nd,nid->ni", x0, X)).mean(1)


def gelu(scores):
    """GELU, x Phi(x), elementwise."""
    return torch.nn.functional.gelu(scores)


# %% [markdown]
# The studies run in their own processes (and, with `launcher=joblib` or `launcher=slurm`, on
# other workers), so the functions live in a module of their own: here written from the cells
# above into a temporary folder put on `PYTHONPATH`.

# %%
folder = Path(tempfile.mkdtemp(prefix="rfattn_question_"))
(folder / "my_question.py").write_text(
    "import torch\n\n\n" + inspect.getsource(oscillating_similarity) + "\n\n"
    + inspect.getsource(gelu))
env = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])}
TARGET = ["target=custom", "target.fn=my_question:oscillating_similarity"]
SIZES = ["d=4", "N=4", f"n_grid=[32,64,128,256,{N_MAX}]", "model.M=64"]


def run(*command):
    """Run a command of the lab with the question's module on PYTHONPATH; return its output."""
    done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True,
                          env=env, cwd=folder)
    if done.returncode:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return done.stdout + done.stderr


# %% [markdown]
# ## A bad plug-in is named before anything runs
#
# A misspelt function, a wrong output shape, NaN values or a constant target: one line that
# names the setting, from `rfattn-check` and from the study itself.

# %%
bad = subprocess.run([sys.executable, "-m", "sims.check", "rfa", "target=custom",
                      "target.fn=my_question:oscilating_similarity"],
                     capture_output=True, text=True, env=env, cwd=folder)
print(bad.stderr.strip())
assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
assert "target.fn=my_question:oscilating_similarity" in bad.stderr

# %% [markdown]
# ## Simulate: ReLU attention, GELU attention and the parameter-matched MLP

# %%
sim_dir, theory_dir = folder / "sim", folder / "theory"
sweep = [*TARGET, *SIZES, f"seed={SEEDS}", f"hydra.sweep.dir={sim_dir}",
         "ridge.num=10", "n_val=300", "n_test=600"]
run("sims.rfa", "-m", "model=rfa,rfmlp", *sweep)
run("sims.rfa", "-m", "model.activation=my_question:gelu", "model.name=rfa_gelu", *sweep)
rows = collect(sim_dir)
print(rows.groupby(["model", "activation"], dropna=False).job.nunique())

# %% [markdown]
# ## Predict: the theory on the same target, for each model's kernel

# %%
theory = ["kind=rfa_curves", "d=4", "N=4", f"n_grid=[32,{N_MAX}]", "model.M=64",
          f"n_sample={2 * N_MAX}", "mc_heads=256", "theory_points=12",
          'targets=[{name: custom, fn: "my_question:oscillating_similarity"}]',
          f"hydra.sweep.dir={theory_dir}"]
run("sims.theory", "-m", "model=rfa,rfmlp", *theory)
run("sims.theory", "-m", "model=rfa", "model.activation=my_question:gelu",
    "model.name=rfa_gelu", *theory)
predictions = collect(theory_dir)
print(predictions[predictions.metric == "kernel_error"][["model", "activation", "value"]])

# %% [markdown]
# ## Draw with rfattn-plot: the simulations, the theory dashed

# %%
png, table = draw([str(sim_dir)], folder / "question.png", str(theory_dir))
plt.imshow(plt.imread(png))
plt.axis("off")
plt.show()
drawn = pd.read_csv(table)
last = drawn[drawn.n == N_MAX].pivot_table(index="model", columns="source", values="mean")
print(last.round(3))

# %% [markdown]
# The answer, measured and predicted: attention's features fit the key-averaged target with
# far fewer samples than the MLP with as many trainable weights, and the theory says so too;
# whether GELU or ReLU scores is the smaller change.

# %%
sim, pred = last["simulation"], last["theory"]
assert sim["rfa"] < sim["rfmlp"] and sim["rfa_gelu"] < sim["rfmlp"]
assert pred["rfa"] < pred["rfmlp"] and pred["rfa_gelu"] < pred["rfmlp"]
assert abs(sim["rfa"] - sim["rfa_gelu"]) < sim["rfmlp"] - sim["rfa"]

# %% [markdown]
# ## Exercises
#
# 1. Replace the target by one that couples two keys, for example
#    $\frac1{N^2}\sum_{i,j}\langle x_i, x_j\rangle^2$. Which model learns it now, and what does
#    the theory's learnability say?
# 2. Write a kernel of your own on samples, `k(x0, X, y0, Y) -> (n, m)`, and run it as
#    `model=kernel model.kernel=my_question:k`, in the simulation and the theory.
# 3. Put your configs in a folder of your own (`hydra.searchpath=[file://myconf]`, see the
#    page *Extend the lab*) and make this question an experiment file: `+experiment=question`.
