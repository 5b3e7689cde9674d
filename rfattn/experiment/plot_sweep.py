"""``rfattn-plot SWEEP_DIR [--theory THEORY_DIR]``: draw any collected sweep, with its theory.

Test error (or any ``--metric``) against ``--x`` (default n): the mean over seeds with a
+-1 standard-deviation band, coloured by one setting (``--hue``, default ``model``) and one
panel per value of another (``--col``, default ``target_label``). Given the output folder of a
theory sweep (``rfattn-theory kind=rfa_curves ...``), each simulated curve gets its prediction
dashed in the same colour: the model's prediction with its own M (``prediction = features``),
or for the infinite-head kernel (``family = kernel``, M = inf) the kernel prediction of the
theory model of the same name, else of the zero-mean ReLU model ``rfa`` (whose kernel the
closed-form ``kernel`` model is).

It writes the PNG and, beside it, the tidy table it drew (``.csv``: source simulation or
theory, the hue and panel values, x, mean, std, seeds). Heads are labelled ``M = inf`` for
the kernel, never 0.

    rfattn-plot outputs/my_sweep --theory outputs/my_theory --hue model --col target_label
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..core.checks import ConfigError
from .collect import collect
from .plotting import lines_over_seeds, save_figure
from .records import atomic_write_table

KERNEL_MODEL = "rfa"  # the theory model whose kernel prediction the closed-form kernel follows


def heads_label(rows: pd.DataFrame) -> pd.Series:
    """``M`` as text, ``inf`` for the infinite-head kernel (stored as M = 0)."""
    infinite = rows.get("family", pd.Series("", index=rows.index)).eq("kernel") | rows.M.eq(0)
    return rows.M.map(lambda m: "" if pd.isna(m) else str(int(m))).where(~infinite, "inf")


def simulation_table(rows: pd.DataFrame, metric: str, x: str, hue: str, col: str | None
                     ) -> pd.DataFrame:
    """The simulation rows of ``metric`` with display columns (``M`` as ``M = inf`` text)."""
    if "metric" not in rows or metric not in set(rows.metric):
        found = ", ".join(sorted(set(rows.get("metric", [])))) or "none"
        raise ConfigError(f"--metric {metric} is not in the sweep (its metrics: {found})")
    table = rows[rows.metric == metric].copy()
    for key in (x, hue, col):
        if key is not None and key not in table:
            raise ConfigError(f"{key} is not a column of the sweep's rows (columns: "
                              f"{', '.join(c for c in table.columns if c != 'value')})")
    if "M" in table:
        table["M"] = heads_label(table)
    return table


def theory_table(theory: pd.DataFrame, sims: pd.DataFrame, metric: str, x: str, hue: str,
                 col: str | None) -> pd.DataFrame:
    """The theory's predicted ``metric`` for every (hue, panel) curve of the simulations."""
    curves = theory[(theory.get("analysis") == "curve") & (theory.metric == metric)]
    if curves.empty:
        raise ConfigError(f"--theory holds no predicted {metric} (analysis = curve): run "
                          "rfattn-theory kind=rfa_curves for the sweep's models and targets")
    keys = [k for k in dict.fromkeys([hue, col]) if k is not None]
    by = list(dict.fromkeys([*keys, "model", "target_label"]))
    out = []
    for values, group in sims.groupby(by, dropna=False):
        setting = dict(zip(by, values))
        first = group.iloc[0]
        mine = curves[curves.target_label == setting["target_label"]]
        if first.get("family") == "kernel":
            pred = mine[(mine.prediction == "kernel") & (mine.model == setting["model"])]
            if pred.empty:
                pred = mine[(mine.prediction == "kernel") & (mine.model == KERNEL_MODEL)]
        else:
            pred = mine[(mine.prediction == "features") & (mine.model == setting["model"])
                        & (mine.M == float(first.M))]
        if not pred.empty:
            out.append(pred.assign(**{k: setting[k] for k in keys})[[*keys, x, "value"]])
    if not out:
        raise ConfigError("--theory predicts none of the sweep's curves (no theory row with "
                          "the sweep's models, targets and M)")
    return pd.concat(out, ignore_index=True)


def draw(sweep_dirs: list[str], out: str | Path, theory_dir: str | None = None,
         metric: str = "test_error", x: str = "n", hue: str = "model",
         col: str | None = "target_label") -> tuple[Path, Path]:
    """Draw the collected sweeps (and the theory's predictions) and write PNG and table.

    Parameters
    ----------
    sweep_dirs : list of str
        Sweep folders (collected now, as ``rfattn-collect`` does).
    out : path
        The PNG; the drawn table is written beside it with the suffix ``.csv``.
    theory_dir : str, optional
        A theory sweep's folder whose ``rfa_curves`` rows are dashed over the curves.
    metric, x, hue, col : str
        What is drawn against what, coloured and faceted by which settings (``col`` None:
        one panel).

    Returns
    -------
    (Path, Path)
        The PNG and the table.

    Raises
    ------
    ConfigError
        A folder without rows, a metric or column the rows lack, a theory without matches.
    """
    tables = []
    for folder in sweep_dirs:
        if not Path(folder).is_dir():
            raise ConfigError(f"sweep folder {folder} does not exist")
        tables.append(collect(folder))
    rows = pd.concat(tables, ignore_index=True)
    sims = simulation_table(rows, metric, x, hue, col)
    theory = None
    if theory_dir is not None:
        if not Path(theory_dir).is_dir():
            raise ConfigError(f"--theory folder {theory_dir} does not exist")
        theory = theory_table(collect(theory_dir), sims, metric, x, hue, col)
    keys = [k for k in dict.fromkeys([hue, col]) if k is not None]
    order = sorted(sims[hue].astype(str).unique())
    sims[hue] = sims[hue].astype(str)
    grid = lines_over_seeds(sims, x=x, hue=hue, col=col, hue_order=order,
                            col_wrap=min(4, sims[col].nunique()) if col else None)
    colours = dict(zip(order, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10))
    if theory is not None:
        theory[hue] = theory[hue].astype(str)
        for value, group in theory.groupby(hue):
            for panel, curve in group.groupby(col) if col else [(None, group)]:
                ax = grid.axes_dict[panel] if col else grid.ax
                curve = curve.sort_values(x)
                ax.plot(curve[x], curve.value, ls="--", lw=1.2,
                        color=colours.get(value, "gray"))
        grid.figure.suptitle("dashed: theory", y=1.02, fontsize=9)
    grid.set_axis_labels(x, metric)
    stats = (sims.groupby(keys + [x]).value.agg(["mean", "std", "count"]).reset_index()
             .rename(columns={"count": "seeds"}).assign(source="simulation"))
    if theory is not None:
        stats = pd.concat([stats, theory.rename(columns={"value": "mean"})
                           .assign(std=np.nan, seeds=0, source="theory")], ignore_index=True)
    if pd.api.types.is_numeric_dtype(stats[x]) and (stats[x] % 1 == 0).all():
        stats[x] = stats[x].astype(int)
    png = save_figure(grid, out)
    table = atomic_write_table(stats[["source", *keys, x, "mean", "std", "seeds"]],
                               Path(out).with_suffix(".csv"))
    return png, table


def main(argv: list[str] | None = None) -> int:
    """``rfattn-plot`` (module docstring).

    Parameters
    ----------
    argv : list of str, optional
        The command line (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when the figure was written, 2 on bad input (one line).
    """
    parser = argparse.ArgumentParser(prog="rfattn-plot", description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", help="sweep folders (their rows are collected)")
    parser.add_argument("--theory", help="a theory sweep folder (kind rfa_curves)")
    parser.add_argument("--metric", default="test_error")
    parser.add_argument("--x", default="n")
    parser.add_argument("--hue", default="model", help="setting that colours the curves")
    parser.add_argument("--col", default="target_label",
                        help="setting with one panel per value ('none': one panel)")
    parser.add_argument("--out", help="the PNG (default: <first sweep>/plot_<metric>.png)")
    args = parser.parse_args(argv)
    out = args.out or str(Path(args.sweeps[0]) / f"plot_{args.metric}.png")
    try:
        png, table = draw(args.sweeps, out, args.theory, args.metric, args.x, args.hue,
                          None if args.col == "none" else args.col)
    except ConfigError as err:
        print(f"rfattn-plot: {err}", file=sys.stderr)
        return 2
    print(f"wrote {png} and {table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
