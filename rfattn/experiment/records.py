"""Run records: one job's tidy rows, written atomically next to its config and provenance.

Layout of a job folder (a Hydra output folder, or any folder)::

    run.json   resolved config, its digest, package version, git revision, the environment
               (device actually used, threads, CPU kernels, library versions), timing, and
               the constants a job derived from its config (``provenance``: for example a
               custom target's normalization)
    rows.csv   tidy long-format rows: setting columns, seed, metric, value

The digest identifies a job by what changes its numbers: the config without ``device`` (a
finished sweep resumes on another device; the device used is recorded). Files follow the umask.

``rows.csv`` is written last and atomically (temporary file + rename), so it exists exactly
when the job finished. :func:`run_job` skips a job whose ``rows.csv`` exists and returns the
stored rows: re-running an interrupted sweep resumes it, nothing is lost or counted twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..core.runtime import get_logger

ROWS_FILE = "rows.csv"
RUN_FILE = "run.json"
REQUIRED_COLUMNS = ("seed", "metric", "value")

log = get_logger(__name__)


def _file_mode() -> int:
    """The mode a new file gets under the current umask (mkstemp would give 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table atomically (a temporary file renamed into place): parquet for ``*.parquet``
    paths, CSV otherwise.

    Parameters
    ----------
    df : DataFrame
    path : path

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return atomic_write_bytes(path, buf.getvalue())
    return atomic_write_text(path, df.to_csv(index=False))


def git_revision(cwd: str | os.PathLike | None = None) -> str:
    """The git commit of the source tree (with ``-dirty`` if modified), or ``unknown``."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: config keys that do not change a job's numbers (left out of its digest, kept in run.json)
NEUTRAL_KEYS = ("device",)


def config_digest(config: dict) -> str:
    """A stable digest of what changes a job's numbers: its config without ``NEUTRAL_KEYS``."""
    identity = {k: v for k, v in config.items() if k not in NEUTRAL_KEYS}
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def environment(config: dict) -> dict:
    """Where and how a job ran: the device actually used (``auto`` resolved), threads, torch's
    CPU kernels and the library versions."""
    import scipy
    import torch

    from ..core.runtime import resolve_device

    try:
        device = str(resolve_device(config.get("device", "auto")))
    except ValueError:
        device = str(config.get("device"))
    return {"device": device, "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            "host": socket.gethostname()}


def check_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Tidy rows must carry seed, metric and a finite value in every row."""
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing}; tidy rows need {REQUIRED_COLUMNS}")
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} rows have a non-finite value, e.g.\n"
                         f"{rows[bad].head(3).to_string()}")
    return rows


class FolderConflict(ValueError):
    """A job folder holds the results of another config."""


def stored_digest(job_dir: str | os.PathLike) -> str | None:
    """The config digest of the rows stored in ``job_dir`` (None when it holds none)."""
    job_dir = Path(job_dir)
    if not (job_dir / ROWS_FILE).exists():
        return None
    run_path = job_dir / RUN_FILE
    return json.loads(run_path.read_text()).get("config_digest", "") if run_path.exists() else ""


def check_folder(job_dir: str | os.PathLike, config: dict) -> bool:
    """Whether ``job_dir`` already holds this config's rows (a finished job, to skip).

    Raises
    ------
    FolderConflict
        It holds the rows of another config: a silent mix of results is refused.
    """
    stored = stored_digest(job_dir)
    if stored is None:
        return False
    digest = config_digest(config)
    if stored != digest:
        raise FolderConflict(f"{job_dir} holds results of another config (digest {stored} != "
                             f"{digest}); use a fresh output folder")
    return True


def run_job(job_dir: str | os.PathLike, config: dict,
            task: Callable[[dict], pd.DataFrame], context: dict | None = None) -> pd.DataFrame:
    """Run ``task(config)`` once in ``job_dir``, or return the rows it stored there before.

    Parameters
    ----------
    job_dir : path
        The job's folder (created if needed).
    config : dict
        The resolved config, the task's only input.
    task : callable
        config -> tidy rows (seed, metric, value and setting columns).
    context : dict, optional
        How the job was launched (overrides, launcher), kept in run.json.

    Returns
    -------
    DataFrame
        The rows, computed now or read back.

    Raises
    ------
    FolderConflict
        ``job_dir`` holds the rows of a different config (a silent mix is refused).
    """
    job_dir = Path(job_dir)
    rows_path, run_path = job_dir / ROWS_FILE, job_dir / RUN_FILE
    if check_folder(job_dir, config):
        log.info("skipping %s: results exist", job_dir)
        return pd.read_csv(rows_path)
    overrides = (context or {}).get("overrides")
    log.info("start %s", " ".join(overrides) if overrides else job_dir)
    start = time.perf_counter()
    rows = check_rows(task(config))
    seconds = time.perf_counter() - start
    meta = {
        "config": config,
        "config_digest": config_digest(config),
        "rfattn_version": __version__,
        "git_revision": git_revision(),
        "environment": environment(config),
        "context": context or {},
        "seconds": round(seconds, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_rows": len(rows),
    }
    if rows.attrs.get("provenance"):
        meta["provenance"] = rows.attrs["provenance"]
    atomic_write_json(run_path, meta)
    atomic_write_table(rows, rows_path)
    log.info("done in %.1fs: %d rows in %s", seconds, len(rows), rows_path)
    return rows
