r"""Study specs: one TOML file per study, resolved with a preset into a list of trial configs.

A study file (``spectrumkit/studies/NAME.toml``, or any path) holds::

    name = "init-ablation"            # optional, defaults to the file name
    description = "..."
    paper = "Table 5"                 # optional reference

    [grid]                            # axes: TrialConfig fields -> lists of values (product)
    init = ["glorot", "normal:1"]
    method = ["jacobian", "random"]

    [fixed]                           # TrialConfig fields shared by every trial
    cell = "gru"

    [presets.quick]                   # seeds + overrides of [fixed]; [presets.quick.grid] may
    seeds = 2                         # replace whole axes; threads = torch threads per trial
    hidden_size = 64                  # (a run option: NOTE [Threads per worker])

    [report]
    table = { rows = "init", cols = "method", metric = "val_error_pct", paper_table = "Table 5" }
    tables = [{ rows = "init", cols = "method", metric = "ir_ratio" }]   # optional, more metrics
    figures = ["curves", "anatomy"]

A trial's config is ``defaults ← [fixed] ← [presets.P] ← row ← grid point ← seed``; dict-valued
fields (``data``, ``score_options``) merge key by key. The trials are ordered seed-major (every
grid point for seed 0, then seed 1, ...) so partial results already fill whole tables, and
duplicates (NOTE [Canonical configs]) are dropped.

NOTE [Study rows]
A full grid is not always the question: an ablation needs a list of named settings. ``[[rows]]``
entries each hold a ``label`` and TrialConfig fields; every row is crossed with the grid (e.g.
``method = ["jacobian", "random"]``) and the seeds. A trial that two rows share after
canonicalization (random pruning ignores the score's recipe) runs once and counts in both rows.
Tables and figures group by the pseudo-field ``row`` (the label): ``spec.json`` lists ``row``
first in ``grid`` and maps each label to its trial keys in ``row_keys``.
"""

from __future__ import annotations

import difflib
import itertools
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from ..errors import SpectrumkitError, fail
from .config import TrialConfig, pydantic_message, trial_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["FIGURES", "Study", "TableReport", "Report", "list_studies", "load_study", "study_file"]

FIGURES = ("anatomy", "sv_hist", "connection_maps", "curves", "lyapunov", "spectrum_steps")
_RESERVED = ("list", "show", "run")
_TOP_KEYS = ("name", "description", "paper", "grid", "fixed", "presets", "report", "rows")
ROW = "row"  # the pseudo-field of NOTE [Study rows]
_PRESET_KEYS = ("seeds", "description", "grid", "threads")
_DICT_FIELDS = ("data", "score_options")


class TableReport(BaseModel):
    """The summary table: mean ± std of ``metric`` over seeds, ``rows`` × ``cols`` (field names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rows: str | list[str]
    cols: str | list[str] | None = None
    metric: str
    paper_table: str | None = None
    format: str = ".2f"

    def row_fields(self) -> list[str]:
        return [self.rows] if isinstance(self.rows, str) else list(self.rows)

    def col_fields(self) -> list[str]:
        if self.cols is None:
            return []
        return [self.cols] if isinstance(self.cols, str) else list(self.cols)


class Report(BaseModel):
    """What a study reports: one table (and optionally ``tables`` of further metrics) and the
    figures it asks ``spectrumkit.figures`` for."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: TableReport
    tables: list[TableReport] = []
    figures: list[Literal["anatomy", "sv_hist", "connection_maps", "curves", "lyapunov",
                          "spectrum_steps"]] = []


class _Seeds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seeds: PositiveInt
    threads: PositiveInt | None = None


@dataclass(frozen=True)
class Study:
    """A study resolved with one preset: its grid, fixed settings, seeds, report and trials."""

    name: str
    preset: str
    description: str
    paper: str | None
    grid: dict[str, list[Any]]
    fixed: dict[str, Any]
    seeds: int
    report: Report
    source: str
    presets: tuple[str, ...] = ()
    threads: int | None = None
    configs: tuple[TrialConfig, ...] = field(default=(), repr=False)
    rows: tuple[tuple[str, dict[str, Any]], ...] = ()
    row_keys: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @property
    def keys(self) -> list[str]:
        """The trial keys, in run order."""
        return [trial_key(c) for c in self.configs]

    @property
    def order(self) -> dict[str, list[Any]]:
        """Field → values in the study's order (the grid, and ``row`` first with rows)."""
        return {**({ROW: [lab for lab, _ in self.rows]} if self.rows else {}), **self.grid}

    def to_json(self) -> dict[str, Any]:
        """The resolved spec as written to ``spec.json`` (RESULTS_SCHEMA.md)."""
        report = self.report.model_dump(mode="json")
        extra = report.pop("tables")
        if extra:  # figures read report.table as one table or a list of them
            report["table"] = [report["table"], *extra]
        out: dict[str, Any] = {
            "name": self.name, "preset": self.preset, "description": self.description,
            "paper": self.paper, "grid": self.order, "fixed": self.fixed, "seeds": self.seeds,
            "report": report, "source": self.source, "threads": self.threads, "keys": self.keys}
        if self.rows:
            out["rows"] = [{"label": lab, **f} for lab, f in self.rows]
            out["row_keys"] = {lab: list(k) for lab, k in self.row_keys.items()}
        return out


def _studies_dir():
    return resources.files("spectrumkit") / "studies"


def list_studies() -> list[str]:
    """Names of the studies shipped with spectrumkit (package data, so they survive an install)."""
    return sorted(p.name[:-5] for p in _studies_dir().iterdir() if p.name.endswith(".toml"))


def study_file(name: str | Path) -> tuple[str, str]:
    """Find a study: a shipped name, or a path to a ``.toml`` file. Returns (text, source)."""
    fn = "load_study"
    s = str(name)
    if s.endswith(".toml") or "/" in s or "\\" in s:
        p = Path(s)
        if not p.is_file():
            raise fail(fn, "an existing study file", repr(s))
        return p.read_text(encoding="utf-8"), str(p.resolve())
    entry = _studies_dir() / f"{s}.toml"
    if not entry.is_file():
        raise fail(fn, f"a study among {', '.join(list_studies())} (or a path to a .toml file)",
                   repr(s))
    return entry.read_text(encoding="utf-8"), f"spectrumkit/studies/{s}.toml"


def _unknown(fn: str, key: str, accepted: list[str], section: str, source: str
             ) -> SpectrumkitError:
    near = difflib.get_close_matches(key, accepted, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return fail(fn, f"known keys in {section} of {source}{hint}", f"unknown key {key!r}")


def load_study(name: str | Path, preset: str = "quick", *, seeds: int | None = None) -> Study:
    r"""Load a study by name (or path) and resolve it with ``preset`` into trial configs.

    Every trial config is validated here, before anything runs: an unknown key names the key and
    the file; an invalid value gives pydantic's complaint in one line, with the section it came
    from. ``seeds`` overrides the preset's number of seeds (seeds are 0, 1, ..., seeds-1).

    >>> s = load_study("init-ablation", "quick")
    >>> s.grid["method"], len(s.configs) == 4 * 2 * s.seeds
    (['jacobian', 'random'], True)
    """
    fn = "load_study"
    text, source = study_file(name)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise fail(fn, f"valid TOML in {source}", str(e)) from None
    fields = list(TrialConfig.model_fields)
    for k in raw:
        if k not in _TOP_KEYS:
            raise _unknown(fn, k, list(_TOP_KEYS), "the top level", source)
    sname = raw.get("name", Path(source).stem)
    if not isinstance(sname, str) or not sname or sname in _RESERVED:
        raise fail(fn, f"a study name other than {', '.join(_RESERVED)} in {source}", repr(sname))
    presets = raw.get("presets", {})
    if not isinstance(presets, dict) or not presets:
        raise fail(fn, f"a [presets.NAME] table in {source}", repr(presets))
    if preset not in presets:
        raise fail(fn, f"a preset among {', '.join(presets)} for study {sname!r}", repr(preset))
    pre = dict(presets[preset])
    psec = f"[presets.{preset}]"
    for k in pre:
        if k not in _PRESET_KEYS and k not in fields:
            raise _unknown(fn, k, list(_PRESET_KEYS) + fields, psec, source)
    fixed = dict(raw.get("fixed", {}))
    for k in fixed:
        if k not in fields or k == "seed":
            raise _unknown(fn, k, [f for f in fields if f != "seed"], "[fixed]", source)
    grid = dict(raw.get("grid", {}))
    grid.update(pre.pop("grid", {}))
    for k, vals in grid.items():
        if k not in fields or k == "seed":
            raise _unknown(fn, k, [f for f in fields if f != "seed"], "[grid]", source)
        if not isinstance(vals, list) or not vals:
            raise fail(fn, f"a non-empty list for grid axis {k!r} in {source}", repr(vals))
    seeds_given = seeds if seeds is not None else pre.pop("seeds", None)
    pre.pop("seeds", None)
    pre.pop("description", None)
    threads = pre.pop("threads", None)
    try:
        checked = _Seeds(seeds=seeds_given, threads=threads)
        n_seeds, threads = checked.seeds, checked.threads
    except ValidationError as e:
        where = "(--seeds)" if seeds is not None else f"in {psec} of {source}"
        raise SpectrumkitError(pydantic_message(fn, e, where)) from None
    for k in pre:
        if k in grid:
            raise fail(fn, f"{k!r} set in either [grid] or {psec} (not both) in {source}",
                       "both")
    resolved = dict(fixed)
    for k, v in pre.items():
        if k in _DICT_FIELDS and isinstance(v, dict) and isinstance(resolved.get(k), dict):
            v = {**resolved[k], **v}
        resolved[k] = v
    report_raw = raw.get("report")
    try:
        report = Report.model_validate(report_raw)
    except ValidationError as e:
        raise SpectrumkitError(pydantic_message(fn, e, f"in [report] of {source}")) from None
    rows = _rows(fn, raw.get("rows", []), fields, grid, source)
    for t in [report.table, *report.tables]:
        for f in t.row_fields() + t.col_fields():
            if f not in fields and not (rows and f == ROW):
                raise fail(fn, f"report.table rows/cols among the config fields"
                           f"{' (or row)' if rows else ''} in {source}", repr(f))

    def where(loc: str) -> str:
        sec = ("[grid]" if loc in grid else psec if loc in pre else "[fixed]" if loc in fixed
               else "the defaults")
        return f"in {sec} of {source}"

    configs: list[TrialConfig] = []
    seen: set[str] = set()
    row_keys: dict[str, list[str]] = {lab: [] for lab, _ in rows}
    axes = list(grid)
    plan: list[tuple[str | None, dict[str, Any]]] = list(rows) or [(None, {})]
    for seed in range(n_seeds):
        for label, row in plan:
            base = dict(resolved)
            for k, v in row.items():
                merge = k in _DICT_FIELDS and isinstance(v, dict) and isinstance(base.get(k), dict)
                base[k] = {**base[k], **v} if merge else v
            for point in itertools.product(*(grid[a] for a in axes)):
                values = {**base, **dict(zip(axes, point)), "seed": seed}
                try:
                    cfg = TrialConfig(**values)
                except ValidationError as e:
                    loc = (str(e.errors()[0].get("loc", ("",))[0]) if e.errors()[0].get("loc")
                           else "")
                    w = f"in row {label!r} of {source}" if loc in row else where(loc)
                    raise SpectrumkitError(pydantic_message(fn, e, w)) from None
                k = trial_key(cfg)
                if label is not None and k not in row_keys[label]:
                    row_keys[label].append(k)
                if k not in seen:
                    seen.add(k)
                    configs.append(cfg)
    return Study(name=sname, preset=preset, description=str(raw.get("description", "")).strip(),
                 paper=raw.get("paper"), grid=grid, fixed=resolved, seeds=n_seeds, report=report,
                 source=source, presets=tuple(presets), threads=threads,
                 configs=tuple(configs), rows=tuple(rows),
                 row_keys={lab: tuple(k) for lab, k in row_keys.items()})


def _rows(fn: str, raw: Any, fields: list[str], grid: dict[str, Any], source: str
          ) -> list[tuple[str, dict[str, Any]]]:
    """Validate ``[[rows]]`` (NOTE [Study rows]): unique labels, known fields, none on the grid."""
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise fail(fn, f"[[rows]] tables in {source}", repr(raw))
    out: list[tuple[str, dict[str, Any]]] = []
    for i, r in enumerate(raw):
        r = dict(r)
        label = r.pop("label", None)
        if not isinstance(label, str) or not label:
            raise fail(fn, f"a label (a non-empty string) in every [[rows]] entry of {source}",
                       f"{label!r} in row {i + 1}")
        if label in [lab for lab, _ in out]:
            raise fail(fn, f"distinct row labels in {source}", f"{label!r} twice")
        for k in r:
            if k not in fields or k == "seed":
                raise _unknown(fn, k, ["label"] + [f for f in fields if f != "seed"],
                               f"row {label!r}", source)
            if k in grid:
                raise fail(fn, f"{k!r} set in either [grid] or a row (not both) in {source}",
                           f"both (row {label!r})")
        out.append((label, r))
    return out
