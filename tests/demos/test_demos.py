"""Every demo runs as a script and its teaching points hold (each demo asserts them itself);
each is a well-formed jupytext notebook: a title, one knob, exercises, a round trip to .ipynb
that keeps every cell. ``make docs`` executes them as notebooks."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

DEMOS = sorted((Path(__file__).parents[2] / "demos").glob("[0-9][0-9]_*.py"))


def test_there_is_a_demo_for_every_lens_and_the_bridges():
    names = [p.stem for p in DEMOS]
    assert len(names) >= 6, names
    for word in ("random_feature_attention", "svm", "transformer", "neural_tangent", "across",
                 "sweeps"):
        assert any(word in n for n in names), word


@pytest.mark.slow  # make test-demos (CI runs it)
@pytest.mark.parametrize("path", DEMOS, ids=[p.stem for p in DEMOS])
def test_demo_runs_as_a_script(path, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": os.environ.get(
        "OMP_NUM_THREADS", "2")}
    out = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.parametrize("path", DEMOS, ids=[p.stem for p in DEMOS])
def test_demo_is_a_notebook_with_a_knob_and_exercises(path):
    text = path.read_text()
    notebook = jupytext.reads(text, fmt="py:percent")
    kinds = [c.cell_type for c in notebook.cells]
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3
    assert notebook.cells[0].source.startswith("# "), "the first cell is the demo's title"
    assert re.search(r"\*\*Knob\*\*", text) and "# <- the knob" in text
    assert "## Exercises" in notebook.cells[-1].source
    assert len(re.findall(r"^\d\. ", notebook.cells[-1].source, flags=re.M)) >= 2
    assert re.search(r"\(\d{4}\)|\d{4}[,)]", notebook.cells[0].source), "cite the paper"
    assert "assert " in text, "a demo checks its teaching point"
    again = jupytext.reads(jupytext.writes(notebook, fmt="ipynb"), fmt="ipynb")
    assert [c.source for c in again.cells] == [c.source for c in notebook.cells]
