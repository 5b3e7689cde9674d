"""The lower bounds of the dependencies where they matter: SciPy's nnls (the Frobenius solver),
LAPACK wrappers and quadrature (the nuclear solver, the targets), with the oldest NumPy and
pandas the package admits. Slow (a virtual environment and an install); ``.ci/run`` runs it."""

import re
import sys
from pathlib import Path

import pytest

from .helpers import sh

ROOT = Path(__file__).resolve().parents[2]
TESTS = ["tests/svm/test_frobenius.py", "tests/svm/test_nuclear.py", "tests/rfa/test_targets.py",
         "tests/linalg/test_ridge.py"]


def lower_bound(package: str) -> str:
    """The ``>=`` bound of ``package`` in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(rf'"{package}>=([0-9.]+)', text).group(1)


@pytest.mark.slow
def test_the_solvers_and_targets_pass_at_the_lowest_versions(tmp_path):
    pins = [f"scipy=={lower_bound('scipy')}.*", "numpy<2", f"pandas=={lower_bound('pandas')}.*"]
    python = tmp_path / "env" / "bin" / "python"
    sh(sys.executable, "-m", "venv", tmp_path / "env")
    sh("bash", ROOT / "tools" / "install-torch.sh", python)
    sh(python, "-m", "pip", "install", "-q", "pytest", *pins, "-e", ROOT)
    versions = sh(python, "-c", "import scipy, numpy, pandas; print(scipy.__version__, "
                  "numpy.__version__, pandas.__version__)").stdout.split()
    assert versions[0].startswith(lower_bound("scipy"))
    out = sh(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS, cwd=ROOT)
    assert " passed" in out.stdout
