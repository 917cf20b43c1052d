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

    [[presets.P.cases]]               # optional: settings that go together (one case per row,
    task = "wikitext"                 # e.g. per data set), crossed with the grid
    steps = 20000

    [[presets.quick.extra]]           # optional: one more trial per seed outside the product,
    cell = "lstm"                     # [fixed] and the preset's overrides with these on top

    [report]
    table = { rows = "init", cols = "method", metric = "val_error_pct", paper_table = "Table 5" }
    tables = [{ rows = "init", cols = "method", metric = "ir_ratio" }]   # optional, more metrics
    figures = ["curves", "anatomy"]

A trial's config is ``defaults ← [fixed] ← [presets.P] ← row ← case ← grid point ← seed``, and
an extra trial's ``defaults ← [fixed] ← [presets.P] ← extra ← seed``; dict-valued fields
(``data``, ``score_options``) merge key by key. The trials are ordered seed-major (every row, case
and grid point, then the extra trials, for seed 0, then seed 1, ...) so partial results already
fill whole tables, and duplicates (NOTE [Canonical configs]) are dropped.

NOTE [Study rows]
A full grid is not always the question: an ablation needs a list of named settings. ``[[rows]]``
entries each hold a ``label`` and TrialConfig fields; every row is crossed with the grid (e.g.
``method = ["jacobian", "random"]``) and the seeds. A trial that two rows share after
canonicalization (random pruning ignores the score's recipe) runs once and counts in both rows.
Rows are a study's question (top level, labelled); cases are a preset's
settings that go together (e.g. per data set), unlabelled. Tables and figures group by the
pseudo-field ``row`` (the label): ``spec.json`` lists ``row``
first in ``grid`` and maps each label to its trial keys in ``row_keys``.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from ..errors import SpectrumkitError, fail
from .config import TRIAL_METRICS, TrialConfig, canonical_json, pydantic_message, trial_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["FIGURES", "Study", "TableReport", "Report", "list_studies", "load_study", "study_file"]

FIGURES = ("anatomy", "sv_hist", "connection_maps", "curves", "lyapunov", "spectrum_steps")
_RESERVED = ("list", "show", "run")
_TOP_KEYS = ("name", "description", "paper", "grid", "fixed", "presets", "report", "rows")
ROW = "row"  # the pseudo-field of NOTE [Study rows]
_PRESET_KEYS = ("seeds", "description", "grid", "threads", "cases", "extra")
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
    cases: tuple[dict[str, Any], ...] = ()
    data_root: str | None = None
    data: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    rows: tuple[tuple[str, dict[str, Any]], ...] = ()
    row_index: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    @property
    def row_keys(self) -> dict[str, tuple[str, ...]]:
        """Row label → the keys of its trials (NOTE [Study rows]); a shared trial is in several."""
        keys = self.keys
        return {lab: tuple(keys[i] for i in idx) for lab, idx in self.row_index.items()}

    @property
    def keys(self) -> list[str]:
        """The trial keys, in run order (they depend on the data, NOTE [What the key covers])."""
        return [trial_key(c, data=self.data.get(c.task)) for c in self.configs]

    def with_data_root(self, root: str | None) -> "Study":
        """The same study on the data under ``root`` (None: bundled); its keys follow the data.

        The identity of each task's files is taken once, here (NOTE [Data identity]); a root
        without the files a task needs is refused before anything runs.
        """
        from ..data import data_identity
        tasks = sorted({c.task for c in self.configs})
        data: dict[str, dict[str, Any]] = {}
        missing: list[SpectrumkitError] = []
        for t in tasks:
            try:
                data[t] = data_identity(t, root)
            except SpectrumkitError as e:
                # A study over several data sets (the language study's paper rows) runs the rows
                # whose data is under the root; the others fail, each with the loader's message.
                missing.append(e)
                data[t] = {"source": "missing", "fingerprint": None, "error": str(e)}
        if missing and len(missing) == len(tasks):
            raise missing[0]
        return replace(self, data_root=root, data=data)

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
            "report": report, "source": self.source, "threads": self.threads,
            "data_root": self.data_root, "data": self.data, "keys": self.keys,
            "cases": list(self.cases)}
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


# NOTE [Study names]
# The name is the folder OUT/<name> the results go to, so it must be ONE safe path component:
# letters, digits and ``._-``, starting with a letter or a digit, at most 100 characters. That
# refuses absolute paths, ``..``, ``.``, the empty name, separators of any platform, NUL, leading
# dashes (taken for options) and hidden names, so a study can neither write outside ``--out`` nor
# land on a sibling's folder. A name from the file name (no ``name =``) is checked the same way.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_study_name(fn: str, name: Any, source: str) -> str:
    """``name`` must be one safe path component, not a reserved word (NOTE [Study names])."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in _RESERVED:
        raise fail(fn, "a study name that is one path component (letters, digits, '.', '_', '-'; "
                   f"starting with a letter or digit; not {', '.join(_RESERVED)}) in {source}",
                   repr(name))
    return name


def _unknown(fn: str, key: str, accepted: list[str], section: str, source: str
             ) -> SpectrumkitError:
    near = difflib.get_close_matches(key, accepted, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return fail(fn, f"known keys in {section} of {source}{hint}", f"unknown key {key!r}")


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``; dict-valued fields (``data``, ...) merge key by key."""
    out = dict(base)
    for k, v in over.items():
        both = k in _DICT_FIELDS and isinstance(v, dict) and isinstance(out.get(k), dict)
        out[k] = {**out[k], **v} if both else v
    return out


#: The most trials one study may resolve to (seeds x (rows x cases x grid points + extra)): a
#: typo such as ``--seeds 100000000`` is refused at once instead of building configs for hours.
MAX_TRIALS = 10_000


def load_study(name: str | Path, preset: str = "quick", *, seeds: int | None = None,
               data_root: str | None = None) -> Study:
    r"""Load a study by name (or path) and resolve it with ``preset`` into trial configs.

    Every trial config is validated here, before anything runs: an unknown key names the key and
    the file; an invalid value gives pydantic's complaint in one line, with the section it came
    from; the study name must be one path component (NOTE [Study names]); the report's metric
    must be one the study's trial reports; at most :data:`MAX_TRIALS` trials. ``seeds``
    overrides the preset's number of seeds (seeds are 0, 1, ..., seeds-1). ``data_root``: the
    data the keys are taken for (None: bundled; :meth:`Study.with_data_root`).

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
    fields = list(TrialConfig.input_keys())
    for k in raw:
        if k not in _TOP_KEYS:
            raise _unknown(fn, k, list(_TOP_KEYS), "the top level", source)
    sname = raw.get("name", Path(source).stem)
    check_study_name(fn, sname, source)
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
    cases = pre.pop("cases", [{}])
    if not isinstance(cases, list) or not cases or not all(isinstance(c, dict) for c in cases):
        raise fail(fn, f"[[presets.{preset}.cases]] tables in {source}", repr(cases))
    for case in cases:
        for k in case:
            if k not in fields or k == "seed" or k in grid:
                raise _unknown(fn, k, [f for f in fields if f != "seed" and f not in grid],
                               f"[[presets.{preset}.cases]] (grid axes excluded)", source)
    for k, vals in grid.items():
        if k not in fields or k == "seed":
            raise _unknown(fn, k, [f for f in fields if f != "seed"], "[grid]", source)
        if not isinstance(vals, list) or not vals:
            raise fail(fn, f"a non-empty list for grid axis {k!r} in {source}", repr(vals))
    extra = pre.pop("extra", [])
    if not isinstance(extra, list) or not all(isinstance(e, dict) for e in extra):
        raise fail(fn, f"[[presets.{preset}.extra]] tables of field overrides in {source}",
                   repr(extra))
    for e in extra:
        for k in e:
            if k not in fields or k == "seed":
                raise _unknown(fn, k, [f for f in fields if f != "seed"],
                               f"[[presets.{preset}.extra]]", source)
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
        try:
            format(1.0, t.format)
        except (ValueError, TypeError):
            raise fail(fn, f"report.table.format a float format spec such as '.2f' in {source}",
                       repr(t.format)) from None
    n_trials = n_seeds * (max(1, len(rows)) * len(cases) * math.prod(len(v) for v in grid.values())
                          + len(extra))
    if n_trials > MAX_TRIALS:
        raise fail(fn, f"at most {MAX_TRIALS} trials (seeds x (rows x cases x grid points + "
                   "extra))", n_trials)

    def where(loc: str) -> str:
        sec = ("[grid]" if loc in grid else f"[[presets.{preset}.cases]]"
               if any(loc in c for c in cases) else psec if loc in pre
               else "[fixed]" if loc in fixed else "the defaults")
        return f"in {sec} of {source}"

    configs: list[TrialConfig] = []
    seen: dict[str, int] = {}  # canonical config -> its index in configs
    row_index: dict[str, list[int]] = {lab: [] for lab, _ in rows}
    axes = list(grid)
    plan: list[tuple[str | None, dict[str, Any]]] = list(rows) or [(None, {})]
    for seed in range(n_seeds):
        for i, (label, row) in enumerate(plan):
            base = _merged(resolved, row)
            points = [(label, {**_merged(base, case), **dict(zip(axes, pt))}) for case, pt in
                      itertools.product(cases, itertools.product(*(grid[a] for a in axes)))]
            if i == len(plan) - 1:  # the preset's extra trials, outside the product, once
                points += [(None, _merged(resolved, x)) for x in extra]
            for lab, values in points:
                values = {**values, "seed": seed}
                try:
                    cfg = TrialConfig(**values)
                except ValidationError as e:
                    loc = (str(e.errors()[0].get("loc", ("",))[0]) if e.errors()[0].get("loc")
                           else "")
                    w = f"in row {lab!r} of {source}" if lab is not None and loc in row \
                        else where(loc)
                    raise SpectrumkitError(pydantic_message(fn, e, w)) from None
                k = canonical_json(cfg.model_dump(mode="json"))  # the same config once (any data)
                if k not in seen:
                    seen[k] = len(configs)
                    configs.append(cfg)
                if lab is not None and seen[k] not in row_index[lab]:
                    row_index[lab].append(seen[k])
    for t in [report.table, *report.tables]:
        _check_metric(fn, t.metric, {c.trial for c in configs}, source)
    return Study(name=sname, preset=preset, description=str(raw.get("description", "")).strip(),
                 paper=raw.get("paper"), grid=grid, fixed=resolved, seeds=n_seeds, report=report,
                 source=source, presets=tuple(presets), threads=threads,
                 configs=tuple(configs), cases=tuple(c for c in cases if c), rows=tuple(rows),
                 row_index={lab: tuple(i) for lab, i in row_index.items()}
                 ).with_data_root(data_root)


def _check_metric(fn: str, metric: str, trials: set[str], source: str) -> None:
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
