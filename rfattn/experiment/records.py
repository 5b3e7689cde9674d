"""Run records: one job's tidy rows, written atomically next to its config and provenance.

Layout of a job folder (a Hydra output folder, or any folder)::

    run.json   resolved config, its digest, package version, git revision, device, timing
    rows.csv   tidy long-format rows: setting columns, seed, metric, value

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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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
    """Write a table atomically: parquet for ``*.parquet`` paths, CSV otherwise."""
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


def config_digest(config: dict) -> str:
    """A stable digest of a plain config (the identity of a job)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


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


def run_job(job_dir: str | os.PathLike, config: dict,
            task: Callable[[dict], pd.DataFrame]) -> pd.DataFrame:
    """Run ``task(config)`` once in ``job_dir``, or return the rows it stored there before.

    A folder that holds the rows of a *different* config is an error rather than a silent mix.
    """
    job_dir = Path(job_dir)
    rows_path, run_path = job_dir / ROWS_FILE, job_dir / RUN_FILE
    digest = config_digest(config)
    if rows_path.exists():
        stored = json.loads(run_path.read_text()) if run_path.exists() else {}
        if stored.get("config_digest") != digest:
            raise RuntimeError(f"{job_dir} holds results of another config "
                               f"(digest {stored.get('config_digest')} != {digest}); "
                               "use a fresh output folder")
        log.info("skipping %s: results exist", job_dir)
        return pd.read_csv(rows_path)
    start = time.perf_counter()
    rows = check_rows(task(config))
    meta = {
        "config": config,
        "config_digest": digest,
        "rfattn_version": __version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "seconds": round(time.perf_counter() - start, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_rows": len(rows),
    }
    atomic_write_json(run_path, meta)
    atomic_write_table(rows, rows_path)
    return rows
