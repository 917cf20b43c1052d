r"""The study's own summary: the runner's table after every run (NOTE [Table cells] in
:mod:`spectrumkit.study.tables`).

Over the collected results (:func:`spectrumkit.study.collect`), labels as in the TOML, one table
per declared metric (``tables/summary*.{md,tex,csv}``, ``summary*_long.csv``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import write_text_atomic
from ..errors import fail
from ._table_text import cell_stats, github_table
from .report_spec import TableReport
from .values import INFINITE, UNDEFINED, count_note, metric_value, split_values

__all__ = ["NONE_LABEL", "format_cell", "markdown_table", "summarize", "write_tables"]


#: The label of a missing value (a setting the trial's method ignores) in a summary.
NONE_LABEL = "–"


def _label(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NONE_LABEL
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_cell(mean: float, std: float, n: int, diverged: int = 0, failed: int = 0,
                fmt: str = ".2f", *, n_inf: int = 0, n_undefined: int = 0) -> str:
    """A summary cell ``mean ± std (n=…[, k ∞][, k —][, k diverged][, k failed])``.

    Without a finite value the cell is ``∞`` when every ok value is ∞, else ``—`` (NOTE
    [Undefined values] in :mod:`spectrumkit.study.values`).

    >>> format_cell(1.456, 0.049, 2)
    '1.46 ± 0.05 (n=2)'
    >>> format_cell(float("nan"), float("nan"), 0, diverged=2)
    '— (2 diverged)'
    >>> format_cell(float("nan"), float("nan"), 0, n_inf=1)
    '∞ (1 ∞)'
    """
    note = count_note(n, n_inf, n_undefined, diverged, failed)
    if not n:
        note = note.removeprefix("n=0").removeprefix(", ")
        text = INFINITE if n_inf and not n_undefined else UNDEFINED
    else:
        text = f"{mean:{fmt}}" + (f" ± {std:{fmt}}" if n > 1 else "")
    return f"{text} ({note})" if note else text


def _summary_cells(df: pd.DataFrame, fields: list[str], metric: str,
                   order: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """One record per combination of ``fields`` in ``df``: labels and the cell's statistics."""
    lab = pd.DataFrame({f: df[f].map(_label) for f in fields}) if len(df) else pd.DataFrame(
        columns=fields)

    def rank(f: str, label: str) -> tuple[int, str]:
        labels = [_label(v) for v in order.get(f, [])]
        return (labels.index(label) if label in labels else len(labels), label)

    combos = sorted({tuple(r) for r in lab[fields].itertuples(index=False)},
                    key=lambda c: [rank(f, v) for f, v in zip(fields, c)])
    out = []
    for combo in combos:
        sel = df[(lab[fields] == pd.Series(combo, index=fields)).all(axis=1)]
        ok = sel[sel["status"] == "ok"]
        finite, n_inf, n_undef = split_values(  # NOTE [Undefined values]
            metric_value(r, metric) for r in ok.to_dict(orient="records"))
        mean, std, n = cell_stats(finite)
        out.append({**dict(zip(fields, combo)), "mean": mean, "std": std, "n": n,
                    "n_inf": n_inf, "n_undefined": n_undef,
                    "diverged": int((sel["status"] == "diverged").sum()),
                    "failed": int((sel["status"] == "failed").sum())})
    return out


def summarize(df: pd.DataFrame, table: TableReport,
              order: Mapping[str, Sequence[Any]] | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Summarize collected results (:func:`spectrumkit.study.collect`) as ``table`` declares.

    For every combination of the ``rows`` and ``cols`` fields of ``[report.table]`` the cell is
    the mean ± std (ddof=1) of the metric over the n trials with status ``ok`` (NOTE [Table
    cells]), written by :func:`format_cell`. Returns ``(long, pivot)``: ``long`` has one row per
    cell with the row/col labels and numeric ``mean, std, n, diverged, failed``; ``pivot`` holds
    the formatted text cells, rows × cols. ``order`` (field → values, e.g. the study's grid)
    orders rows and columns; other values follow.
    """
    fn = "summarize"
    rows, cols = table.row_fields(), table.col_fields()
    fields = rows + cols
    missing = [f for f in fields + ["status"] if f not in df.columns]
    if missing and len(df):
        raise fail(fn, f"result columns {fields}", f"missing {missing}")
    if len(df) and (df["status"] == "ok").any() and table.metric not in df.columns:
        raise fail(fn, f"metric {table.metric!r} among the result columns",
                   sorted(c for c in df.columns))
    out = _summary_cells(df, fields, table.metric, order or {})
    long = pd.DataFrame(out, columns=fields + ["mean", "std", "n", "diverged", "failed", "n_inf",
                                              "n_undefined"])
    long["text"] = [format_cell(r["mean"], r["std"], r["n"], r["diverged"], r["failed"],
                                table.format, n_inf=r["n_inf"], n_undefined=r["n_undefined"])
                    for r in out]
    if not cols:
        pivot = long.set_index(rows)[["text"]].rename(columns={"text": table.metric})
    else:
        col = long[cols].agg(" / ".join, axis=1) if len(long) else pd.Series(dtype=str)
        wide = long.assign(_col=col)
        col_order = list(dict.fromkeys(col))
        pivot = wide.pivot_table(index=rows, columns="_col", values="text", aggfunc="first",
                                 sort=False).reindex(columns=col_order).fillna("")
        pivot.columns.name = " / ".join(cols)
        row_order = list(dict.fromkeys(tuple(r) if len(rows) > 1 else r[0]
                                       for r in long[rows].itertuples(index=False)))
        pivot = pivot.reindex(row_order)
    return long.drop(columns="text"), pivot


def markdown_table(pivot: pd.DataFrame) -> str:
    """A summary's pivot (:func:`summarize`) as a GitHub Markdown table."""
    flat = pivot.reset_index()
    return github_table(flat.values.tolist(), [str(c) for c in flat.columns])


def _pivot_latex(pivot: pd.DataFrame, caption: str) -> str:
    tex = pivot.map(lambda s: s.replace(" ± ", r" $\pm$ ").replace("—", "--")
                    .replace(INFINITE, r"$\infty$"))
    tex.index = tex.index.map(lambda v: v.replace(NONE_LABEL, "--") if isinstance(v, str) else v)
    styler = tex.style.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
    cap = caption
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"),
                 ("#", r"\#"), ("±", r"$\pm$"), (INFINITE, r"$\infty$"), (UNDEFINED, "--")):
        cap = cap.replace(a, b)
    return styler.to_latex(hrules=True, caption=cap, multirow_align="naive",
                           position_float="centering")


def write_tables(folder: str | os.PathLike, long: pd.DataFrame, pivot: pd.DataFrame, *,
                 title: str, caption: str, stem: str = "summary") -> list[Path]:
    r"""Write a summary as ``<stem>.{md,tex,csv}`` and ``<stem>_long.csv``, each atomically.

    ``.md``: the title, the caption and :func:`markdown_table`; ``.tex``: pandas Styler with
    booktabs rules and the caption; ``.csv``: the pivot as text; ``_long.csv``: ``long``, one row
    per cell with numeric mean, std, n, diverged, failed (the form to compute with).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md = f"# {title}\n\n{caption}\n\n{markdown_table(pivot)}\n"
    return [  # NOTE [Atomic writes] in _io.py
        write_text_atomic(folder / f"{stem}.md", md),
        write_text_atomic(folder / f"{stem}.tex", _pivot_latex(pivot, caption)),
        write_text_atomic(folder / f"{stem}.csv", pivot.to_csv()),
        write_text_atomic(folder / f"{stem}_long.csv", long.to_csv(index=False)),
    ]
