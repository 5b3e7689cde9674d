"""Join the tidy rows of every finished job below a sweep folder into one table.

Console: ``rfattn-collect SWEEP_DIR`` (or ``python -m rfattn.experiment.collect SWEEP_DIR``)
writes ``SWEEP_DIR/results.parquet`` (``results.csv`` where parquet is unavailable).
Standalone by design: a sweep with failed jobs is still collected (Hydra skips end-of-sweep
callbacks when a job fails).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from .records import ROWS_FILE, atomic_write_table


def collect(sweep_dir: str | os.PathLike, write: bool = True) -> pd.DataFrame:
    """Concatenate every ``rows.csv`` below ``sweep_dir``; add the job folder as ``job``."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep_dir {sweep_dir} is not a folder")
    files = sorted(sweep_dir.rglob(ROWS_FILE))
    if not files:
        raise FileNotFoundError(f"no {ROWS_FILE} below {sweep_dir}: no job has finished there")
    tables = []
    for f in files:
        df = pd.read_csv(f)
        df["job"] = str(f.parent.relative_to(sweep_dir))
        tables.append(df)
    table = pd.concat(tables, ignore_index=True)
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
    table = collect(args.sweep_dir)
    jobs = table["job"].nunique()
    print(f"collected {len(table)} rows from {jobs} jobs into {args.sweep_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
