r"""The summary table of a study: mean ± std over seeds, with n, pivoted as the study declares.

For every combination of the ``rows`` and ``cols`` fields of ``[report.table]``:

    mean = (1/n) Σ_i m_i,    std = sqrt( Σ_i (m_i - mean)² / (n - 1) )   (ddof = 1)

over the n trials with status ``ok`` (seeds). Diverged and failed trials are not averaged in; they
are counted next to the number (``1.46 ± 0.05 (n=2, 1 diverged)``). With n = 1 there is no std.

Written as ``tables/summary.md`` (tabulate), ``tables/summary.tex`` (pandas Styler, booktabs
rules), ``tables/summary.csv`` (the same pivot as text) and ``tables/summary_long.csv`` (one row per
cell with numeric mean, std, n, diverged, failed: the form to compute with).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from .._io import write_text_atomic
from ..errors import fail
from .spec import TableReport

__all__ = ["summarize", "format_cell", "write_tables", "markdown_table"]

NONE_LABEL = "–"


def _label(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NONE_LABEL
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_cell(mean: float, std: float, n: int, diverged: int = 0, failed: int = 0,
                fmt: str = ".2f") -> str:
    """``mean ± std (n=…[, k diverged][, k failed])``; ``—`` when no trial succeeded.

    >>> format_cell(1.456, 0.049, 2)
    '1.46 ± 0.05 (n=2)'
    >>> format_cell(float("nan"), float("nan"), 0, diverged=2)
    '— (2 diverged)'
    """
    extra = [f"n={n}"] if n else []
    extra += [f"{diverged} diverged"] * bool(diverged) + [f"{failed} failed"] * bool(failed)
    if n:
        text = f"{mean:{fmt}}" + (f" ± {std:{fmt}}" if n > 1 else "")
    else:
        text = "—"
    return f"{text} ({', '.join(extra)})" if extra else text


def summarize(df: pd.DataFrame, table: TableReport,
              order: Mapping[str, Sequence[Any]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Summarize collected results (:func:`~spectrumkit.study.collect`) as ``table`` declares.

    Returns ``(long, pivot)``: ``long`` has one row per cell with the row/col labels and numeric
    ``mean, std, n, diverged, failed``; ``pivot`` holds the formatted text cells, rows × cols.
    ``order`` (field → values, e.g. the study's grid) orders rows and columns; other values follow.
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
    order = order or {}
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
        vals = pd.to_numeric(ok[table.metric], errors="coerce").dropna() if len(ok) else pd.Series(
            dtype=float)
        n = int(len(vals))
        out.append({**dict(zip(fields, combo)), "mean": float(vals.mean()) if n else math.nan,
                    "std": float(vals.std(ddof=1)) if n > 1 else math.nan, "n": n,
                    "diverged": int((sel["status"] == "diverged").sum()),
                    "failed": int((sel["status"] == "failed").sum())})
    long = pd.DataFrame(out, columns=fields + ["mean", "std", "n", "diverged", "failed"])
    long["text"] = [format_cell(r["mean"], r["std"], r["n"], r["diverged"], r["failed"],
                                table.format) for r in out]
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
    """The pivot as a GitHub Markdown table (tabulate)."""
    flat = pivot.reset_index()
    return tabulate(flat.values.tolist(), headers=[str(c) for c in flat.columns],
                    tablefmt="github", disable_numparse=True)


def _latex(pivot: pd.DataFrame, caption: str) -> str:
    tex = pivot.map(lambda s: s.replace(" ± ", r" $\pm$ ").replace("—", "--"))
    tex.index = tex.index.map(lambda v: v.replace(NONE_LABEL, "--") if isinstance(v, str) else v)
    styler = tex.style.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
    cap = caption
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"),
                 ("#", r"\#"), ("±", r"$\pm$")):
        cap = cap.replace(a, b)
    return styler.to_latex(hrules=True, caption=cap, multirow_align="naive",
                           position_float="centering")


def write_tables(folder: str | Path, long: pd.DataFrame, pivot: pd.DataFrame, *,
                 title: str, caption: str, stem: str = "summary") -> list[Path]:
    r"""Write ``<stem>.{md,tex,csv}`` and ``<stem>_long.csv`` (stem ``summary``) atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md = f"# {title}\n\n{caption}\n\n{markdown_table(pivot)}\n"
    return [
        write_text_atomic(folder / f"{stem}.md", md),
        write_text_atomic(folder / f"{stem}.tex", _latex(pivot, caption)),
        write_text_atomic(folder / f"{stem}.csv", pivot.to_csv()),
        write_text_atomic(folder / f"{stem}_long.csv", long.to_csv(index=False)),
    ]
