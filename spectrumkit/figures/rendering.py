r"""Render a study's declared figures and tables from its stored results only.

:func:`render` reads ``spec.json`` and ``trials/*.json`` (docs/results-schema.md) and writes
every figure named in the spec's ``report.figures`` into ``study_dir/figures/<name>.<fmt>`` and
every table of ``report.table`` into ``study_dir/tables/paper.{md,tex,csv}`` (laid out like the
paper's tables; the study runner's own ``tables/summary.*`` are left alone). Nothing is
recomputed: rerunning it on the same results gives byte-identical files (NOTE [Deterministic
files]).

NOTE [What each figure pools]
Only trials of status ``ok`` are drawn. Trials are grouped into conditions (NOTE [Conditions]):
* ``anatomy``: the kept fraction of each (gate, block) and the I/R ratio are averaged over seeds
  (masks differ by seed); the dense I/R ratio and the uniform density are the layer's.
* ``sv_hist``: seeds whose histogram edges equal the first seed's are pooled by summing counts, so
  the drawn counts sum to the number of singular values pooled; σ̄ is the n-weighted mean of the
  stored means. Seeds binned differently are not re-binned (that cannot be done exactly) and are
  left out; the panel says how many seeds it pools.
* ``connection_maps``: one mask is an image, so the lowest seed is shown, and the title says which.
* ``curves``, ``lyapunov``, ``spectrum_steps``: mean over seeds with a ±std band.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import SpectrumkitError, fail
from ..study.results import StudyResults, find_study_dirs, read_results
from ..study.tables import METRIC_TITLES, TABLE_FORMATS, Table, results_table, write_table
from ._figures import FIGURES, TABLE_NAME, check_figure_name, figure_data, render_figure
from ._layout import MAX_COLS
from ._style import check_formats, save_figure, style
from .report import figure_png, finish_report

__all__ = ["FIGURES", "MAX_COLS", "TABLE_NAME", "figure_data", "figure_png", "finish_report",
           "paper_tables", "render", "render_all", "render_figure"]


def _table_stem(t: dict, i: int, n: int) -> str:
    if n == 1:
        return "paper"
    label = str(t.get("paper_table") or t.get("name") or i)
    return "paper-" + (re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or str(i))


def render(study_dir: str | Path | StudyResults, *, only: str | Iterable[str] | None = None,
           formats: str | Iterable[str] = ("pdf", "png"), report: bool = False) -> list[Path]:
    r"""Write the study's declared figures (and tables) from its stored results; return the paths.

    ``study_dir`` is one study's results folder ``OUT/<study>`` (``spec.json`` + ``trials/*.json``;
    only the trials ``spec.json`` lists are read, NOTE [Only the resolved trials]), or its
    :class:`StudyResults`. A study without a trial of status ok is refused in one line.
    Figures go to ``study_dir/figures/<name>.<fmt>`` for each of ``formats`` (pdf, png, svg); the
    tables of ``report.table`` go to ``study_dir/tables/paper.{md,tex,csv}`` (``paper-<paper
    table>`` when the study declares several). ``only`` selects some of the declared figures, or
    ``"table"`` for the tables; a name the study does not declare raises an error listing those it
    does. A declared figure whose artifacts are missing from every trial is an error, never skipped.
    Validation happens before anything is written. ``report`` (with ``only=None``): also remove
    the report files an earlier spec left (NOTE [No stale outputs]) and write ``report.html``
    (NOTE [Report page]); its path ends the returned list.
    """
    fn = "render"
    fmts = check_formats(fn, formats)
    res = study_dir if isinstance(study_dir, StudyResults) else read_results(study_dir, fn=fn)
    declared = res.declared_figures
    unknown = [f for f in declared if f not in FIGURES]
    if unknown:
        raise fail(fn, f"declared figures among {', '.join(FIGURES)}",
                   f"{unknown} in {res.path / 'spec.json'}")
    if only is None:
        names = declared + ([TABLE_NAME] if res.tables else [])
    else:
        names = [only] if isinstance(only, str) else list(only)
        names = list(dict.fromkeys(check_figure_name(fn, res, n) for n in names))
    if names and not any(t.get("status") == "ok" for t in res.trials):
        raise fail(fn, f"at least one trial of status ok in study {res.name!r} to draw its "
                   "figures and tables", f"none of {len(res.trials)}{_status_counts(res)}")
    try:
        paths = _render(res, names, fmts, page=report and only is None)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        if isinstance(e, SpectrumkitError):
            raise
        # NOTE [Only the resolved trials]: the reader checks a trial file's frame; an artifact
        # edited by hand can still be ill-formed inside: one line, never a traceback
        raise fail(fn, f"well-formed artifacts in the trial files of study {res.name!r} "
                   f"({res.path / 'trials'})", f"{type(e).__name__}: "
                   f"{' '.join(str(e).split())[:200]}") from None
    return paths


def _status_counts(res: StudyResults) -> str:
    counts: dict[str, int] = {}
    for t in res.trials:
        counts[str(t.get("status"))] = counts.get(str(t.get("status")), 0) + 1
    inner = ", ".join(f"{n} {st}" for st, n in sorted(counts.items()))
    return f" ({inner})" if inner else ""


def paper_tables(res: StudyResults) -> list[tuple[str, Table]]:
    """The study's paper-style tables (``report.table``) with their file stems."""
    tables = []
    for i, t in enumerate(res.tables):
        spec = {k: t[k] for k in ("rows", "cols", "metric", "better", "best_along") if k in t}
        spec.setdefault("cols", None)
        if "format" in t:
            spec["fmt"] = t["format"]
        title = t.get("paper_table")
        tables.append((_table_stem(t, i, len(res.tables)), results_table(res, **spec, title=(
            f"{title}: " if title else "") + _metric_title(spec.get("metric")))))
    return tables


def _render(res: StudyResults, names: list[str], fmts: tuple[str, ...], *, page: bool
            ) -> list[Path]:
    """Trusted core of :func:`render`: build every table and figure, then write them.

    ``page``: everything was drawn, so remove what an earlier spec left (NOTE [No stale
    outputs]) and write the report page (NOTE [Report page]).
    """
    # build (and validate) every table before writing anything
    tables = paper_tables(res) if TABLE_NAME in names else []
    out: list[Path] = []
    pngs: dict[str, bytes] = {}
    with style():  # build every figure first, so a missing artifact writes nothing
        figs = [(name, FIGURES[name](res)) for name in names if name != TABLE_NAME]
        for name, fig in figs:
            if page:
                pngs[name] = figure_png(fig)
            out += save_figure(fig, res.path / "figures" / name, fmts)
    for stem, table in tables:
        out += write_table(table, res.path / "tables" / stem, TABLE_FORMATS)
    if page:
        out.append(finish_report(res, out, figures=pngs, tables=tables, summaries=False))
    return out


def _metric_title(metric: Any) -> str:
    return METRIC_TITLES.get(metric, str(metric))


def render_all(results_dir: str | Path, *, only: str | Iterable[str] | None = None,
               formats: str | Iterable[str] = ("pdf", "png"), report: bool = False
               ) -> dict[str, list[Path]]:
    r""":func:`render` for ``OUT/<study>`` or for every study folder directly inside ``OUT``.

    With several studies, ``only`` renders those names in the studies that declare them; a name that
    no study declares raises an error listing the names that are declared. Returns
    ``{study folder: paths written}``. Everything is validated before anything is written.
    ``report``: as in :func:`render`, for every study rendered in full.
    """
    fn = "render"
    fmts = check_formats(fn, formats)
    dirs = find_study_dirs(results_dir)
    if not dirs:
        read_results(results_dir, fn=fn)  # raises the error that names the expected layout
    if len(dirs) == 1:
        return {str(dirs[0]): render(dirs[0], only=only, formats=fmts, report=report)}
    studies = [read_results(d, fn=fn) for d in dirs]
    plan: dict[Path, list[str] | None] = {s.path: None for s in studies}
    if only is not None:
        names = [only] if isinstance(only, str) else list(only)
        avail = {s.path: s.declared_figures + ([TABLE_NAME] if s.tables else []) for s in studies}
        every = list(dict.fromkeys(n for a in avail.values() for n in a))
        for n in names:
            if n not in every:
                raise fail(fn, f"a figure that a study in {str(results_dir)!r} declares: "
                           f"{', '.join(every) or '(none declared)'}", repr(n))
        plan = {p: [n for n in names if n in a] for p, a in avail.items()}
    out = {}
    for s in studies:
        sel = plan[s.path]
        if sel == []:
            continue
        out[str(s.path)] = render(s, only=sel, formats=fmts, report=report and sel is None)
    return out
