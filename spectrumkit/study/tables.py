r"""Every table of a study: mean ± std over seeds (n), as Markdown, LaTeX (booktabs) and CSV.

Two layouts share the cells' statistics (``cell_stats``) and the Markdown writer:

- the paper's Tables 1, 2, 3, 5 and 6 (:func:`results_table`, :func:`write_table`): read from a
  study folder, labels pretty-printed, the best method in bold (``tables/paper.*``);
- the study's own summary (:mod:`spectrumkit.study.summary`): the runner's table after every
  run, over the collected results (:func:`spectrumkit.study.collect`), labels as in the TOML, one
  table per declared metric (``tables/summary*.{md,tex,csv}``, ``summary*_long.csv``).

NOTE [Best in bold]
Each table compares *methods*: the bold cell is the best mean among the cells that differ only in
the method. So when the columns are the methods (Tables 1 and 5: rows = cell or initialization)
the best is taken along each row, and when the rows are the methods (Tables 2, 3 and 6: columns =
width, sparsity, or a single runtime column) it is taken down each column. Without a ``method``
axis the best is taken along each row. Which way is better depends on the metric
(:data:`METRIC_BETTER`): lower for error, loss, perplexity and seconds; higher for accuracy; none
(nothing bold) for descriptive quantities such as the I/R ratio or the mean singular value. A
best is marked only where it is one: the best mean must differ from the next best by more than the
larger of the two cells' stds, and both need n >= 2 seeds (with one seed the spread is unknown, so
a quick run marks nothing); ties are never bold. The caption states the rule. Cells with no finite
value show ``∞`` or ``—`` (NOTE [Undefined values] in :mod:`spectrumkit.study.values`) and never
win. The references
:data:`REFERENCE_METHODS` (``dense``: nothing pruned; ``l2``: iterative magnitude pruning during
training, the paper's upper bound) are shown but do not compete: the paper's question is which
one-shot method at initialization is best.

NOTE [Table cells]
A cell is the mean ± sample std (ddof=1) over the trials of status ``ok``, followed by their count
n; with n = 1 the std is undefined and shown as ``–`` (the summary leaves it out). Diverged and
failed trials are not averaged in (their metric is not a result) but are counted and shown, e.g.
``(n=2, 1 diverged)``, so a method that fails often cannot look good by silence. The CSV holds the
same numbers in long form, one line per cell, with full precision, for further analysis.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._io import write_text_atomic
from ..errors import check_choice, fail
from ._table_text import cell_stats, github_table
from .results import StudyResults, combo_label
from .values import INFINITE, UNDEFINED, count_note, footnote, metric_value, split_values

__all__ = ["METRIC_BETTER", "METRIC_TITLES", "REFERENCE_METHODS", "TABLE_FORMATS", "Table",
           "results_table", "table_markdown",
           "table_latex", "table_csv", "write_table"]

#: Which direction is better for each known metric (NOTE [Best in bold]).
METRIC_BETTER: dict[str, str] = {
    "val_error_pct": "lower", "test_error_pct": "lower", "val_loss": "lower", "train_loss": "lower",
    "val_ppl": "lower", "test_ppl": "lower", "score_seconds": "lower", "train_seconds": "lower",
    "val_acc_pct": "higher", "val_accuracy": "higher",
    # descriptive quantities: no direction is better, nothing is bold
    "ir_ratio": "none", "dense_ir_ratio": "none", "gate_imbalance": "none", "density": "none",
    "kept": "none", "sv_mean_init": "none", "sv_mean_trained": "none",
}
#: Methods shown in a table but never bold (NOTE [Best in bold]).
REFERENCE_METHODS = ("dense", "l2")
#: Table file formats written by :func:`write_table`.
TABLE_FORMATS = ("md", "tex", "csv")

METRIC_TITLES = {"val_error_pct": "validation error (%)", "test_error_pct": "test error (%)",
                  "val_loss": "validation loss", "val_ppl": "validation perplexity",
                  "test_ppl": "test perplexity", "score_seconds": "scoring time (s)",
                  "train_seconds": "training time (s)",
                  "ir_ratio": "I/R ratio (kept input / kept recurrent)",
                  "sv_mean_init": "mean singular value at initialization",
                  "sv_mean_trained": "mean singular value after training"}


@dataclass(frozen=True)
class Table:
    r"""A summarized table in long form plus its layout.

    ``cells`` has one row per (row value, column value) with columns ``row``, ``col`` (labels),
    ``mean``, ``std``, ``n`` (ok trials), ``n_diverged``, ``n_failed`` and ``best`` (bool).
    ``row_labels``/``col_labels`` give the display order.
    """

    cells: pd.DataFrame
    rows: str
    cols: str | None
    metric: str
    better: str
    best_along: str
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    title: str
    fmt: str


def _as_axes(fn: str, name: str, v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)) and v and all(isinstance(a, str) for a in v):
        return list(v)
    raise fail(fn, f"{name} as a grid axis name or a list of them", repr(v))


def _check_fmt(fn: str, fmt: Any) -> str:
    try:
        if not isinstance(fmt, str):
            raise TypeError
        format(1.5, fmt)
    except (TypeError, ValueError):
        raise fail(fn, "fmt a float format spec such as '.2f' or '.3g'", repr(fmt)) from None
    return fmt


def results_table(results: StudyResults, *, rows: str | Sequence[str],
                  cols: str | Sequence[str] | None, metric: str,
                  better: Literal["lower", "higher", "none"] | None = None,
                  best_along: Literal["row", "col"] | None = None, fmt: str = ".2f",
                  title: str | None = None) -> Table:
    r"""Summarize ``metric`` over seeds, pivoted ``rows`` × ``cols`` (trial config fields).

    ``rows`` and ``cols`` are a config field (usually a grid axis) or a list of them, whose values
    are combined (``["normalize", "method"]`` → ``norm. SNIP``); ``cols=None`` gives a single
    column (e.g. Table 6, runtime per method). ``better`` defaults to :data:`METRIC_BETTER`
    (``"none"``, nothing bold, for a metric without a better direction); ``best_along`` as NOTE
    [Best in bold] says; ``fmt`` formats mean and std. A varying grid axis in neither ``rows`` nor
    ``cols`` would be averaged away silently, so it is an error. A trial whose config holds None
    for a column axis (its method ignores that setting, e.g. random pruning and ``normalize``)
    counts in every column of that axis: it is the same experiment under each, and a baseline to
    compare against in each. Cells follow NOTE [Table cells].
    """
    fn = "results_table"
    r_axes, c_axes = _check_axes(fn, results, rows, cols)
    if not isinstance(metric, str):
        raise fail(fn, "metric as a string", repr(metric))
    way: str = METRIC_BETTER.get(metric, "none") if better is None else better
    check_choice(fn, "better", way, ("lower", "higher", "none"))
    along: str = ("col" if "method" in r_axes else "row") if best_along is None else best_along
    check_choice(fn, "best_along", along, ("row", "col"))
    fmt = _check_fmt(fn, fmt)
    recs = _records(results, r_axes, c_axes, metric)
    cells = []
    for rv, cv, sel in recs:
        finite, n_inf, n_undef = split_values([v for st, v, _ in sel if st == "ok"])
        mean, std, n = cell_stats(finite)
        cells.append({"n_inf": n_inf, "n_undefined": n_undef,"row": combo_label(r_axes, rv) or "–",
                      "col": ((combo_label(c_axes, cv) or "–") if c_axes
                              else METRIC_TITLES.get(metric, metric)),
                      "mean": mean, "std": std, "n": n,
                      "n_diverged": sum(st == "diverged" for st, _, _ in sel),
                      "n_failed": sum(st == "failed" for st, _, _ in sel),
                      "reference": bool(sel) and all(r for _, _, r in sel)})
    cells_df = pd.DataFrame(cells)
    cells_df["best"] = (_best(cells_df, way, along) if way != "none"
                        else pd.Series(False, index=cells_df.index))
    return Table(cells=cells_df, rows=" / ".join(r_axes), cols=" / ".join(c_axes) or None,
                 metric=metric, better=way, best_along=along,
                 row_labels=tuple(dict.fromkeys(cells_df["row"])),
                 col_labels=tuple(dict.fromkeys(cells_df["col"])),
                 title=title or METRIC_TITLES.get(metric, metric), fmt=fmt)


def _check_axes(fn: str, results: StudyResults, rows: Any, cols: Any
                ) -> tuple[list[str], list[str]]:
    """The row and column fields: given, distinct, in every config, every varying axis used."""
    r_axes, c_axes = _as_axes(fn, "rows", rows), _as_axes(fn, "cols", cols)
    if not r_axes:
        raise fail(fn, "rows as a config field name or a list of them", repr(rows))
    if len(set(r_axes + c_axes)) < len(r_axes + c_axes):
        raise fail(fn, "rows and cols without repeated fields", f"rows={rows!r}, cols={cols!r}")
    for t in results.trials:
        missing = [a for a in r_axes + c_axes if a not in t["config"]]
        if missing:
            raise fail(fn, f"rows and cols among the trial config fields "
                       f"{sorted(t['config'])}", f"{missing}")
    others = [a for a in results.varying_axes if a not in r_axes + c_axes]
    if others:
        raise fail(fn, f"every varying grid axis to be in rows or cols (rows={rows!r}, "
                   f"cols={cols!r})", f"also {others}")
    return r_axes, c_axes


_Record = tuple[str, Any, bool]  # (status, metric value, is a reference method)


def _records(results: StudyResults, r_axes: list[str], c_axes: list[str], metric: str
             ) -> list[tuple[tuple, tuple, list[_Record]]]:
    """(row values, column values, the records of its trials) per cell, in the grid's order.

    A trial with None for a column axis counts in every column of that axis (see
    :func:`results_table`).
    """
    grid = results.grid

    def expand(cfg: Mapping[str, Any]) -> list[tuple]:  # columns only
        opts = [grid[a] if cfg[a] is None and a in grid else [cfg[a]] for a in c_axes]
        return [tuple(p) for p in itertools.product(*opts)]

    recs: dict[tuple[str, str], list[_Record]] = {}
    seen_r: dict[str, tuple] = {}
    seen_c: dict[str, tuple] = {}
    for t in results.trials:
        cfg = t["config"]
        # NOTE [Undefined values]: ∞ and undefined values are counted, never refused
        val = metric_value(t, metric) if t["status"] == "ok" else math.nan
        rv = tuple(cfg[a] for a in r_axes)
        ref = "method" in cfg and cfg["method"] in REFERENCE_METHODS
        for cv in expand(cfg):
            rk, ck = _key(rv), _key(cv)
            seen_r[rk], seen_c[ck] = rv, cv
            recs.setdefault((rk, ck), []).append((t["status"], val, ref))
    row_keys = _grid_order([grid.get(a, []) for a in r_axes], seen_r)
    col_keys = _grid_order([grid.get(a, []) for a in c_axes], seen_c)
    return [(seen_r[rk], seen_c[ck], recs.get((rk, ck), [])) for rk in row_keys
            for ck in col_keys]


def _key(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def _grid_order(axis_values: list[list], seen: Mapping[str, tuple]) -> list[str]:
    """Keys of the seen value tuples, in the grid's product order; values off the grid go last."""
    order = [_key(tuple(p)) for p in itertools.product(*axis_values)]
    return [k for k in order if k in seen] + sorted(k for k in seen if k not in set(order))


def _best(cells: pd.DataFrame, better: str, along: str) -> pd.Series:
    """NOTE [Best in bold]: the best mean, where it beats the next best by more than the spread."""
    best = pd.Series(False, index=cells.index)
    for _, g in cells.groupby("row" if along == "row" else "col", sort=False):
        m = g["mean"].where((g["n"] > 0) & ~g["reference"]).dropna()
        if len(m) < 2:  # nothing to compare against
            continue
        order = m.sort_values(ascending=better == "lower", kind="stable")
        first, second = order.index[0], order.index[1]
        spread = max(float(g.loc[first, "std"]), float(g.loc[second, "std"]))
        # n < 2: the std is NaN, the spread unknown, and nothing is marked
        if math.isfinite(spread) and abs(order.iloc[0] - order.iloc[1]) > spread:
            best.loc[first] = True
    return best


#: The rule of NOTE [Best in bold], as the captions state it.
BEST_RULE = ("in bold where it differs from the next best by more than the larger of their stds "
             "(each over n >= 2 seeds)")


def _count_note(c: Mapping[str, Any]) -> str:
    """The counts of a cell as :func:`format_cell` writes them (no ``n=0`` in an empty cell)."""
    note = count_note(int(c["n"]), int(c.get("n_inf", 0)), int(c.get("n_undefined", 0)),
                      int(c["n_diverged"]), int(c["n_failed"]))
    return note.removeprefix("n=0, ") if c["n"] == 0 and note != "n=0" else note


def _latex_note(c: Mapping[str, Any]) -> str:
    return _count_note(c).replace(INFINITE, r"$\infty$").replace(UNDEFINED, "--")


def _empty_text(c: Mapping[str, Any], *, latex: bool) -> str:
    """A cell without a finite value: ∞ if every ok value is ∞, else — (NOTE [Undefined values])."""
    if c.get("n_inf", 0) and not c.get("n_undefined", 0):
        return r"\infty" if latex else INFINITE
    return "--" if latex else UNDEFINED


def _cell_text(c: Mapping[str, Any], fmt: str, *, latex: bool) -> str:
    if c["n"] == 0:
        core = _empty_text(c, latex=latex)
        if latex:
            core = f"${core}$" if core.startswith("\\") else core
            return f"{core} {{\\scriptsize ({_latex_note(c)})}}"
        return f"{core} ({_count_note(c)})"
    mean = format(c["mean"], fmt)
    std = format(c["std"], fmt) if math.isfinite(c["std"]) else ("–" if not latex else "--")
    if latex:
        body = f"{mean} \\pm {std}" if math.isfinite(c["std"]) else f"{mean}"
        body = f"\\mathbf{{{body}}}" if c["best"] else body
        return f"${body}$ {{\\scriptsize ({_latex_note(c)})}}"
    body = f"{mean} ± {std}"
    return (f"**{body}**" if c["best"] else body) + f" ({_count_note(c)})"


def table_grid(table: Table, *, latex: bool) -> list[list[str]]:
    out = []
    for r in table.row_labels:
        line = [r]
        for c in table.col_labels:
            sel = table.cells[(table.cells["row"] == r) & (table.cells["col"] == c)]
            line.append(_cell_text(sel.iloc[0], table.fmt, latex=latex))
        out.append(line)
    return out


def table_caption(table: Table) -> str:
    along = "each row" if table.best_along == "row" else "each column"
    best = (f"{table.better} is better; the best of {along} {BEST_RULE}"
            if table.better != "none" else
            f"no best marked ({table.metric} has no better direction)")
    note = footnote(table.metric, int(table.cells["n_inf"].sum()),
                    int(table.cells["n_undefined"].sum()))
    return (f"{table.title}: mean ± std over seeds (n = finished trials); {best}."
            + (f" {note}" if note else ""))


def table_markdown(table: Table) -> str:
    """The table as GitHub Markdown (tabulate), preceded by a one-line caption."""
    head = [table.rows] + list(table.col_labels)
    return table_caption(table) + "\n\n" + github_table(table_grid(table, latex=False), head) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "\\": r"\textbackslash{}"}


def _tex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def table_latex(table: Table) -> str:
    """The table as a booktabs ``tabular`` (pandas Styler) with the caption as a ``%`` comment."""
    head = [_tex_escape(table.rows)] + [_tex_escape(c) for c in table.col_labels]
    body = [[_tex_escape(line[0])] + line[1:] for line in table_grid(table, latex=True)]
    df = pd.DataFrame(body, columns=head)
    tex = df.style.hide(axis="index").to_latex(hrules=True,
                                               column_format="l" + "c" * (len(head) - 1))
    return f"% {table_caption(table)}\n% requires \\usepackage{{booktabs}}\n{tex}"


def table_csv(table: Table) -> str:
    """The table in long form (one line per cell, full precision; NOTE [Table cells])."""
    buf = io.StringIO()
    cols = ["row", "col", "mean", "std", "n", "n_diverged", "n_failed", "best", "n_inf",
            "n_undefined"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([table.rows, table.cols or "metric", "mean", "std", "n", "n_diverged", "n_failed",
                "best", "n_inf", "n_undefined"])
    for _, c in table.cells[cols].iterrows():
        w.writerow([c["row"], c["col"], _num(c["mean"]), _num(c["std"]), int(c["n"]),
                    int(c["n_diverged"]), int(c["n_failed"]), bool(c["best"]), int(c["n_inf"]),
                    int(c["n_undefined"])])
    return buf.getvalue()


def _num(v: float) -> str:
    return "" if not np.isfinite(v) else repr(float(v))


def write_table(table: Table, path: str | os.PathLike, formats: Iterable[str] = TABLE_FORMATS
                ) -> list[Path]:
    """Write ``table`` to ``path`` + ``.md``/``.tex``/``.csv`` atomically; return the paths."""
    fn = "write_table"
    if not isinstance(table, Table):
        raise fail(fn, "a Table from results_table", type(table).__name__)
    fmts = tuple(formats) if not isinstance(formats, str) else tuple(formats.split(","))
    bad = [f for f in fmts if f not in TABLE_FORMATS]
    if bad or not fmts:
        raise fail(fn, f"formats among {', '.join(TABLE_FORMATS)}", ", ".join(bad) or "none")
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    render = {"md": table_markdown, "tex": table_latex, "csv": table_csv}
    out = []
    for f in dict.fromkeys(fmts):
        target = base.with_name(f"{base.name}.{f}")
        write_text_atomic(target, render[f](table))  # NOTE [Atomic writes] in _io.py
        out.append(target)
    return out
