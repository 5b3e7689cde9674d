"""Figures straight from tidy tables: seaborn, log axes, mean and spread over seeds."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import matplotlib

if "MPLBACKEND" not in os.environ and "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # figures are files; a notebook keeps its inline backend
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .records import atomic_write_bytes  # noqa: E402


def figure_name(study: str, what: str, suffix: str = "png", **setting) -> str:
    """A figure's file name that encodes its setting: ``<study>_<what>_<key><value>...``.

    Parameters
    ----------
    study : str
        The study (``rfa``, ``svm``, ``lowrank``, ``ntk``, ...).
    what : str
        What the figure shows (``error_vs_n``).
    suffix : str
        File type.
    **setting
        The setting, in the order given (``d=4, N=4, M=256`` gives ``_d4_N4_M256``); a value
        that varies inside the figure is left out by the caller.

    Returns
    -------
    str
    """
    parts = [study, what] + [f"{key}{value:g}" if isinstance(value, float) else f"{key}{value}"
                             for key, value in setting.items()]
    return "_".join(parts) + f".{suffix}"


def figure_name_for(rows: pd.DataFrame, study: str, what: str, *keys: str, **setting) -> str:
    """:func:`figure_name` with the setting ``keys`` read from the figure's rows (which share
    them), then ``setting``."""
    first = rows.iloc[0]
    shared = {key: int(first[key]) if float(first[key]).is_integer() else float(first[key])
              for key in keys}
    return figure_name(study, what, **shared, **setting)


def set_style() -> None:
    """The lab's plotting style (seaborn whitegrid, paper context)."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def lines_over_seeds(df: pd.DataFrame, x: str, y: str = "value", hue: str | None = None,
                     col: str | None = None, style: str | None = None, logx: bool = True,
                     logy: bool = True, col_wrap: int | None = None, height: float = 3.2,
                     sharey: bool = True, **kwargs) -> sns.FacetGrid:
    """Mean over seeds with a +-1 standard-deviation band, one panel per ``col`` value."""
    set_style()
    grid = sns.relplot(data=df, x=x, y=y, hue=hue, col=col, style=style, kind="line",
                       errorbar="sd", marker="o", markersize=4, height=height, aspect=1.15,
                       col_wrap=col_wrap, facet_kws={"sharey": sharey}, **kwargs)
    for ax in grid.axes.flat:
        if logx:
            ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
    return grid


def heatmap(df: pd.DataFrame, index: str, columns: str, values: str = "value",
            ax: plt.Axes | None = None, log_values: bool = True, **kwargs) -> plt.Axes:
    """Seed-averaged heatmap of ``values`` over (``index``, ``columns``)."""
    import numpy as np
    from matplotlib.colors import LogNorm

    set_style()
    table = df.pivot_table(index=index, columns=columns, values=values, aggfunc="mean")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * table.shape[1], 0.9 + 0.6 * table.shape[0]))
    norm = LogNorm(vmin=max(float(np.nanmin(table.values)), 1e-6),
                   vmax=float(np.nanmax(table.values))) if log_values else None
    sns.heatmap(table, ax=ax, annot=True, fmt=".2g", cmap="viridis_r", norm=norm,
                cbar_kws={"label": values}, **kwargs)
    return ax


def save_figure(fig, path: str | Path, dpi: int = 130) -> Path:
    """Save a matplotlib figure (or seaborn grid) atomically and close it."""
    fig = getattr(fig, "figure", fig)
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi,
                bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
