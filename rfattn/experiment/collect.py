"""Join the tidy rows of every finished job below a sweep folder into one table.

Console: ``rfattn-collect SWEEP_DIR`` (or ``python -m rfattn.experiment.collect SWEEP_DIR``)
writes ``SWEEP_DIR/results.parquet`` (``results.csv`` where parquet is unavailable).
Standalone by design: a sweep with failed jobs is still collected (Hydra skips end-of-sweep
callbacks when a job fails); the command names the jobs without rows and then exits with 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from .records import ROWS_FILE, RUN_FILE, atomic_write_table


def job_folders(sweep_dir: Path) -> list[Path]:
    """Folders below ``sweep_dir`` that hold a job: its rows, its run record or its log."""
    marks = [*sweep_dir.rglob(ROWS_FILE), *sweep_dir.rglob(RUN_FILE), *sweep_dir.rglob("*.log")]
    return sorted({m.parent for m in marks if m.parent != sweep_dir})


def collect(sweep_dir: str | os.PathLike, write: bool = True) -> pd.DataFrame:
    """Concatenate every ``rows.csv`` below ``sweep_dir``; add the job folder as ``job``.

    Parameters
    ----------
    sweep_dir : path
        A Hydra multirun folder, or any folder of job folders.
    write : bool
        Also write ``results.parquet`` (``results.csv`` without pyarrow) into ``sweep_dir``.

    Returns
    -------
    DataFrame
        The rows of every finished job. ``table.attrs["unfinished"]`` lists the job folders
        without rows (failed, interrupted or still running).

    Raises
    ------
    FileNotFoundError
        ``sweep_dir`` is not a folder, or no job below it has finished.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep_dir {sweep_dir} is not a folder")
    files = sorted(sweep_dir.rglob(ROWS_FILE))
    unfinished = [str(f.relative_to(sweep_dir)) for f in job_folders(sweep_dir)
                  if not (f / ROWS_FILE).exists()]
    if not files:
        raise FileNotFoundError(f"no {ROWS_FILE} below {sweep_dir}: no job has finished there")
    tables = []
    for f in files:
        df = pd.read_csv(f)
        df["job"] = str(f.parent.relative_to(sweep_dir))
        tables.append(df)
    table = pd.concat(tables, ignore_index=True)
    table.attrs["unfinished"] = unfinished
    if write:
        try:
            atomic_write_table(table, sweep_dir / "results.parquet")
        except ImportError:
            atomic_write_table(table, sweep_dir / "results.csv")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rfattn-collect", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a Hydra multirun folder (or any folder of jobs)")
    args = parser.parse_args(argv)
    try:
        table = collect(args.sweep_dir)
    except FileNotFoundError as err:
        print(f"rfattn-collect: {err}", file=sys.stderr)
        return 2
    jobs, unfinished = table["job"].nunique(), table.attrs["unfinished"]
    print(f"collected {len(table)} rows from {jobs} jobs into {args.sweep_dir}"
          + (f"; {len(unfinished)} jobs have no rows (failed, interrupted or running): "
             + ", ".join(unfinished) if unfinished else ""))
    return 1 if unfinished else 0


if __name__ == "__main__":
    raise SystemExit(main())
