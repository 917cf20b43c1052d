"""A study's ``[report]``: the summary table(s) and the figures it asks for, checked at load."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..choices import Figure
from ..errors import SpectrumkitError, fail
from ._spec_checks import check_fields, trial_fields
from .config import TRIAL_METRICS, pydantic_message

__all__ = ["Report", "TableReport", "check_metric", "check_report"]


class TableReport(BaseModel):
    """The summary table: mean ± std of ``metric`` over seeds, ``rows`` × ``cols`` (field names,
    or the names of labelled axes, NOTE [Study axes])."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rows: str | list[str]
    cols: str | list[str] | None = None
    metric: str
    paper_table: str | None = None
    format: str = ".2f"

    def row_fields(self) -> list[str]:
        """The row fields as a list."""
        return [self.rows] if isinstance(self.rows, str) else list(self.rows)

    def col_fields(self) -> list[str]:
        """The column fields as a list (none without ``cols``)."""
        if self.cols is None:
            return []
        return [self.cols] if isinstance(self.cols, str) else list(self.cols)


class Report(BaseModel):
    """What a study reports: one table (and optionally ``tables`` of further metrics) and the
    figures it asks ``spectrumkit.figures`` for."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: TableReport
    tables: list[TableReport] = []
    figures: list[Figure] = []


def check_report(fn: str, raw: Any, labelled: list[str], src: str) -> Report:
    """[report], checked: known keys (naming them), the tables' fields and format.

    ``labelled``: the names of the study's labelled axes, which a table may group by too.
    """
    if isinstance(raw, dict):
        check_fields(fn, raw, list(Report.model_fields), "[report]", src)
        tables = [raw.get("table")] + (raw["tables"] if isinstance(raw.get("tables"), list)
                                       else [])
        for t in tables:
            if isinstance(t, dict):
                check_fields(fn, t, list(TableReport.model_fields), "report.table", src)
    try:
        report = Report.model_validate(raw)
    except ValidationError as e:
        raise SpectrumkitError(pydantic_message(fn, e, f"in [report] of {src}")) from None
    fields = trial_fields() + labelled
    for t in [report.table, *report.tables]:
        for f in t.row_fields() + t.col_fields():
            if f not in fields:
                extra = f" (or a labelled axis: {', '.join(labelled)})" if labelled else ""
                raise fail(fn, f"report.table rows/cols among the config fields{extra} in "
                           f"{src}", repr(f))
        try:
            format(1.0, t.format)
        except (ValueError, TypeError):
            raise fail(fn, f"report.table.format a float format spec such as '.2f' in "
                       f"{src}", repr(t.format)) from None
    return report


def check_metric(fn: str, metric: str, trials: set[str], source: str) -> None:
    """The report's metric must be one that the study's built-in trials report.

    A trial given as an import path reports what it likes, so its metric cannot be checked here.
    """
    if not trials or any(t not in TRIAL_METRICS for t in trials):
        return
    known = sorted({m for t in trials for m in TRIAL_METRICS[t]})
    if metric not in known:
        near = difflib.get_close_matches(metric, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        kinds = ", ".join(repr(t) for t in sorted(trials))
        raise fail(fn, f"report.table.metric among the metrics of trial {kinds} "
                   f"({', '.join(known)}) in {source}", f"{metric!r}{hint}")
