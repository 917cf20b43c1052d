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

import copy
import difflib
import itertools
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from .._io import read_text_file
from ..choices import FIGURES, Figure
from ..errors import SpectrumkitError, check_memory_terms, fail
from ._executor_options import EXECUTOR_KEYS, ExecutorOptions, executor_table
from .config import (
    TRIAL_METRICS,
    TrialConfig,
    canonical_json,
    memory_terms,
    pydantic_message,
    trial_key,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["FIGURES", "Override", "Study", "TableReport", "Report", "list_studies", "load_study",
           "parse_override", "study_file"]

_RESERVED = ("list", "show", "run")
_TOP_KEYS = ("name", "description", "paper", "grid", "fixed", "presets", "report", "rows",
             "executor")
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
    overrides: tuple[Override, ...] = ()
    executor: ExecutorOptions = ExecutorOptions()  # NOTE [Executor options]

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
        """The resolved spec as written to ``spec.json`` (docs/results-schema.md)."""
        report = self.report.model_dump(mode="json")
        extra = report.pop("tables")
        if extra:  # figures read report.table as one table or a list of them
            report["table"] = [report["table"], *extra]
        out: dict[str, Any] = {
            "name": self.name, "preset": self.preset, "description": self.description,
            "paper": self.paper, "grid": self.order, "fixed": self.fixed, "seeds": self.seeds,
            "report": report, "source": self.source, "threads": self.threads,
            "data_root": self.data_root, "data": self.data, "keys": self.keys,
            "cases": list(self.cases), "overrides": [o.to_json() for o in self.overrides]}
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
        if not p.exists():
            raise fail(fn, "an existing study file", repr(s))
        return read_text_file(fn, p, "a study file (UTF-8 TOML)"), str(p.resolve())
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
    """``fn: expected a key of SECTION in SOURCE among A, B, ..., got unknown key 'K'``."""
    near = difflib.get_close_matches(key, accepted, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return fail(fn, f"a key of {section} in {source} among {', '.join(accepted)}",
                f"unknown key {key!r}{hint}")


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``; dict-valued fields (``data``, ...) merge key by key."""
    out = dict(base)
    for k, v in over.items():
        both = k in _DICT_FIELDS and isinstance(v, dict) and isinstance(out.get(k), dict)
        out[k] = {**out[k], **v} if both else v
    return out


def _trial_fields() -> list[str]:
    """The keys a study may give a trial (in [fixed], [grid], rows, presets, cases, extra)."""
    return list(TrialConfig.input_keys())


# NOTE [Study overrides]
# ``load_study(..., overrides=["KEY=VALUE", ...])`` and ``spectrumkit study NAME --set KEY=VALUE``
# change a study's settings without copying its TOML. Every override is applied, in the order
# given (a later one wins), to the parsed TOML document BEFORE anything is validated, so the
# file's own checks judge it, with the same one-line errors:
# - KEY is a dotted path into the document: ``grid.init``, ``fixed.epochs``,
#   ``presets.quick.seeds``, ``report.table.metric``, ``fixed.data.scale``; tables on the way are
#   created when absent.
# - A bare trial field (``hidden_size``, or ``data.scale`` inside a dict-valued field) means "this
#   value for every trial of the run": exactly as if the TOML were edited to remove that field from
#   [grid], from every [[rows]] entry and from every preset (its fields, its grid, its cases and its
#   extra trials) and to set it in [fixed].
# - VALUE is a TOML value (``64``, ``0.5``, ``true``, ``"x"``, ``["glorot", "he"]``,
#   ``{scale = 0.5}``); a bare word that is not valid TOML (``glorot``) is that string.
# - The training budget is ONE setting given as ``epochs`` or ``steps``: a bare ``steps=N``
#   also removes ``epochs`` wherever the study sets it (and ``epochs=N`` removes ``steps``), so
#   ``--set steps=2`` switches an epochs-based study to steps. A dotted ``fixed.steps=N`` edits
#   only that key, and the check of exactly one budget judges the result.
# An unknown first key is refused here, naming the sections and the trial fields; a deeper unknown
# key is refused by the check of its level, naming the keys accepted there. The messages name the
# overrides next to the file. ``spec.json`` records them: each as given, with its key and value.

#: The two spellings of the training budget (NOTE [Study overrides]): each replaces the other.
_BUDGET = {"epochs": "steps", "steps": "epochs"}

_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True)
class Override:
    """One override ``KEY=VALUE`` (NOTE [Study overrides]): as given, its path and its value."""

    given: str
    path: tuple[str, ...]
    value: Any

    def to_json(self) -> dict[str, Any]:
        """``{"set": given, "key": dotted key, "value": value}`` as recorded in ``spec.json``."""
        return {"set": self.given, "key": ".".join(self.path), "value": self.value}


def _plain(v: Any) -> bool:
    """True for the values JSON can hold (TOML's dates and times are not)."""
    if isinstance(v, dict):
        return all(_plain(x) for x in v.values())
    if isinstance(v, list):
        return all(_plain(x) for x in v)
    return isinstance(v, (str, int, float, bool))


def parse_override(text: str) -> Override:
    r"""Parse ``KEY=VALUE`` (NOTE [Study overrides]): VALUE is TOML, a bare word a string.

    >>> parse_override("grid.init=['glorot', 'he']").value
    ['glorot', 'he']
    >>> [parse_override(t).value for t in ("hidden_size=64", "init=glorot", "x=true", 'x="1"')]
    [64, 'glorot', True, '1']
    """
    fn = "load_study"
    if not isinstance(text, str) or "=" not in text:
        raise fail(fn, "an override KEY=VALUE (such as hidden_size=64)", repr(text))
    key, _, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not _KEY.fullmatch(key):
        raise fail(fn, "an override KEY=VALUE with KEY a dotted path such as grid.init",
                   repr(text))
    try:
        doc = tomllib.loads(f"v = {raw}")
        value = doc["v"] if len(doc) == 1 and _plain(doc["v"]) else raw
    except tomllib.TOMLDecodeError:
        value = raw
    return Override(text, tuple(key.split(".")), value)


def _set_path(fn: str, doc: dict[str, Any], path: tuple[str, ...], value: Any, given: str
              ) -> None:
    """Set ``doc[path[0]][path[1]]... = value``, creating the tables on the way."""
    node = doc
    for i, part in enumerate(path[:-1]):
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            where = ".".join(path[: i + 1])
            raise fail(fn, f"a table at {where} to set {'.'.join(path)} in (--set {given})",
                       f"{type(nxt).__name__} {nxt!r}")
        node = nxt
    node[path[-1]] = value


def _drop_path(table: Any, path: tuple[str, ...]) -> None:
    """Remove ``path`` from a table of trial fields, where it is there."""
    if not isinstance(table, dict):
        return
    if len(path) == 1:
        table.pop(path[0], None)
    else:
        _drop_path(table.get(path[0]), path[1:])


def _set_everywhere(fn: str, doc: dict[str, Any], o: Override) -> None:
    """A bare trial field: the same value for every trial (NOTE [Study overrides])."""
    tables: list[Any] = [doc.get("grid")]
    tables += doc.get("rows", []) if isinstance(doc.get("rows"), list) else []
    presets = doc.get("presets")
    for pre in presets.values() if isinstance(presets, dict) else ():
        if isinstance(pre, dict):
            tables += [pre, pre.get("grid")]
            for part in ("cases", "extra"):
                tables += pre.get(part, []) if isinstance(pre.get(part), list) else []
    for t in tables:
        _drop_path(t, o.path)
    other = _BUDGET.get(o.path[0]) if len(o.path) == 1 else None
    if other is not None:  # the training budget is one setting: epochs or steps
        for t in [*tables, doc.get("fixed")]:
            _drop_path(t, (other,))
    _set_path(fn, doc, ("fixed", *o.path), o.value, o.given)


def _apply_overrides(fn: str, raw: dict[str, Any], overrides: Sequence[Override]
                     ) -> dict[str, Any]:
    """The TOML document with ``overrides`` applied (NOTE [Study overrides]); ``raw`` unchanged."""
    doc = copy.deepcopy(raw)
    fields = [f for f in _trial_fields() if f != "seed"]
    for o in overrides:
        head = o.path[0]
        if head in _TOP_KEYS:
            if len(o.path) == 1 and head in ("grid", "fixed", "presets", "report") \
                    and not isinstance(o.value, dict):
                raise fail(fn, f"a table for {head} (--set {o.given})", repr(o.value))
            _set_path(fn, doc, o.path, o.value, o.given)
        elif head in fields:
            _set_everywhere(fn, doc, o)
        else:
            raise _unknown(fn, head, list(_TOP_KEYS) + fields,
                           "the study (a section, or a trial field for every trial)",
                           f"--set {o.given}")
    return doc


def _overrides(fn: str, overrides: Sequence[str] | Mapping[str, Any]) -> tuple[Override, ...]:
    """``KEY=VALUE`` strings parsed; a mapping's values are taken as they are."""
    if isinstance(overrides, Mapping):
        out = []
        for k, v in overrides.items():
            o = parse_override(f"{k}=0")
            out.append(Override(f"{k}={json.dumps(v)}", o.path, v))
        return tuple(out)
    if isinstance(overrides, str):
        raise fail(fn, "overrides as a list of 'KEY=VALUE' strings", repr(overrides))
    return tuple(parse_override(t) for t in overrides)


@dataclass(frozen=True)
class _Plan:
    """A study's sections for one preset, checked key by key (the steps of :func:`load_study`)."""

    preset: str
    psec: str  # "[presets.P]", for messages
    src: str  # the source and the overrides, for messages
    fixed: dict[str, Any]
    pre: dict[str, Any]  # the preset's trial fields
    grid: dict[str, list[Any]]
    cases: list[dict[str, Any]]
    extra: list[dict[str, Any]]
    rows: list[tuple[str, dict[str, Any]]]

    def where(self, loc: str, label: str | None, row: dict[str, Any]) -> str:
        """The section a bad value of field ``loc`` came from, for the error message."""
        if label is not None and loc in row:
            return f"in row {label!r} of {self.src}"
        sec = ("[grid]" if loc in self.grid else f"[[presets.{self.preset}.cases]]"
               if any(loc in c for c in self.cases) else self.psec if loc in self.pre
               else "[fixed]" if loc in self.fixed else "the defaults")
        return f"in {sec} of {self.src}"


#: The most trials one study may resolve to (seeds x (rows x cases x grid points + extra)): a
#: typo such as ``--seeds 100000000`` is refused at once instead of building configs for hours.
MAX_TRIALS = 10_000


def _parse_toml(fn: str, text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise fail(fn, f"valid TOML in {source}", str(e)) from None


def _check_fields(fn: str, table: Mapping[str, Any], accepted: list[str], section: str,
                  src: str) -> None:
    for k in table:
        if k not in accepted:
            raise _unknown(fn, k, accepted, section, src)


def _preset_table(fn: str, raw: dict[str, Any], preset: str, sname: str, src: str
                  ) -> dict[str, Any]:
    """The preset's table, checked: known keys only."""
    presets = raw.get("presets", {})
    if not isinstance(presets, dict) or not presets:
        raise fail(fn, f"a [presets.NAME] table in {src}", repr(presets))
    if preset not in presets:
        raise fail(fn, f"a preset among {', '.join(presets)} for study {sname!r}", repr(preset))
    pre = presets[preset]
    if not isinstance(pre, dict):
        raise fail(fn, f"a table [presets.{preset}] in {src}", repr(pre))
    fields = [f for f in _trial_fields() if f != "seed"]  # the seed is the run's, as everywhere
    _check_fields(fn, pre, list(_PRESET_KEYS) + fields, f"[presets.{preset}]", src)
    return dict(pre)


def _table_list(fn: str, value: Any, what: str, src: str, *, empty: bool) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value) \
            or (not empty and not value):
        raise fail(fn, f"{what} in {src}", repr(value))
    return [dict(c) for c in value]


def _plan(fn: str, raw: dict[str, Any], preset: str, sname: str, src: str
          ) -> tuple[_Plan, dict[str, Any]]:
    """Check [fixed], the grid, the preset's cases and extra trials, and the rows.

    Returns the plan and what is left of the preset's table (seeds, threads, description).
    """
    fields = [f for f in _trial_fields() if f != "seed"]
    pre = _preset_table(fn, raw, preset, sname, src)
    fixed = raw.get("fixed", {})
    if not isinstance(fixed, dict):
        raise fail(fn, f"a table [fixed] in {src}", repr(fixed))
    _check_fields(fn, fixed, fields, "[fixed]", src)
    grid = dict(raw.get("grid", {}))
    grid.update(pre.pop("grid", {}))
    cases = _table_list(fn, pre.pop("cases", [{}]), f"[[presets.{preset}.cases]] tables", src,
                        empty=False)
    for case in cases:
        _check_fields(fn, case, [f for f in fields if f not in grid],
                      f"[[presets.{preset}.cases]] (grid axes excluded)", src)
    for k, vals in grid.items():
        _check_fields(fn, {k: vals}, fields, "[grid]", src)
        if not isinstance(vals, list) or not vals:
            raise fail(fn, f"a non-empty list for grid axis {k!r} in {src}", repr(vals))
    extra = _table_list(fn, pre.pop("extra", []),
                        f"[[presets.{preset}.extra]] tables of field overrides", src, empty=True)
    for e in extra:
        _check_fields(fn, e, fields, f"[[presets.{preset}.extra]]", src)
    run_keys: dict[str, Any] = {k: pre.pop(k) for k in ("seeds", "threads", "description")
                                if k in pre}
    psec = f"[presets.{preset}]"
    for k in pre:
        if k in grid:
            raise fail(fn, f"{k!r} set in either [grid] or {psec} (not both) in {src}", "both")
    rows = _rows(fn, raw.get("rows", []), _trial_fields(), grid, src)
    return _Plan(preset=preset, psec=psec, src=src, fixed=dict(fixed), pre=pre, grid=grid,
                 cases=cases, extra=extra, rows=rows), run_keys


def _seeds(fn: str, run_keys: dict[str, Any], seeds: int | None, plan: _Plan
           ) -> tuple[int, int | None]:
    """The number of seeds (``seeds`` or the preset's) and the preset's threads, checked."""
    given = seeds if seeds is not None else run_keys.get("seeds")
    try:
        checked = _Seeds.model_validate({"seeds": given, "threads": run_keys.get("threads")})
    except ValidationError as e:
        where = "(--seeds)" if seeds is not None else f"in {plan.psec} of {plan.src}"
        raise SpectrumkitError(pydantic_message(fn, e, where)) from None
    return checked.seeds, checked.threads


def _report(fn: str, raw: Any, plan: _Plan) -> Report:
    """[report], checked: known keys (naming them), the table's fields and format."""
    if isinstance(raw, dict):
        _check_fields(fn, raw, list(Report.model_fields), "[report]", plan.src)
        tables = [raw.get("table")] + (raw["tables"] if isinstance(raw.get("tables"), list)
                                       else [])
        for t in tables:
            if isinstance(t, dict):
                _check_fields(fn, t, list(TableReport.model_fields), "report.table", plan.src)
    try:
        report = Report.model_validate(raw)
    except ValidationError as e:
        raise SpectrumkitError(pydantic_message(fn, e, f"in [report] of {plan.src}")) from None
    fields = _trial_fields()
    for t in [report.table, *report.tables]:
        for f in t.row_fields() + t.col_fields():
            if f not in fields and not (plan.rows and f == ROW):
                raise fail(fn, f"report.table rows/cols among the config fields"
                           f"{' (or row)' if plan.rows else ''} in {plan.src}", repr(f))
        try:
            format(1.0, t.format)
        except (ValueError, TypeError):
            raise fail(fn, f"report.table.format a float format spec such as '.2f' in "
                       f"{plan.src}", repr(t.format)) from None
    return report


def _check_count(fn: str, plan: _Plan, n_seeds: int) -> None:
    points = math.prod(len(v) for v in plan.grid.values())
    n_trials = n_seeds * (max(1, len(plan.rows)) * len(plan.cases) * points + len(plan.extra))
    if n_trials > MAX_TRIALS:
        raise fail(fn, f"at most {MAX_TRIALS} trials (seeds x (rows x cases x grid points + "
                   "extra))", n_trials)


def _points(plan: _Plan, resolved: dict[str, Any], i: int, label: str | None,
            row: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """The settings of one row: its cases x grid points, then (last row) the extra trials."""
    base = _merged(resolved, row)
    axes = list(plan.grid)
    points = [(label, {**_merged(base, case), **dict(zip(axes, pt))}) for case, pt in
              itertools.product(plan.cases, itertools.product(*(plan.grid[a] for a in axes)))]
    if i == max(1, len(plan.rows)) - 1:  # the preset's extra trials, outside the product, once
        points += [(None, _merged(resolved, x)) for x in plan.extra]
    return points


def _configs(fn: str, plan: _Plan, resolved: dict[str, Any], n_seeds: int
             ) -> tuple[list[TrialConfig], dict[str, list[int]]]:
    """Every trial config, seed-major, each validated; duplicates once (NOTE [Study rows])."""
    configs: list[TrialConfig] = []
    seen: dict[str, int] = {}  # canonical config -> its index in configs
    row_index: dict[str, list[int]] = {lab: [] for lab, _ in plan.rows}
    rows: list[tuple[str | None, dict[str, Any]]] = list(plan.rows) or [(None, {})]
    for seed in range(n_seeds):
        for i, (label, row) in enumerate(rows):
            for lab, values in _points(plan, resolved, i, label, row):
                try:
                    cfg = TrialConfig(**{**values, "seed": seed})
                except ValidationError as e:
                    first = e.errors()[0].get("loc") or ("",)
                    where = plan.where(str(first[0]), lab, row)
                    raise SpectrumkitError(pydantic_message(fn, e, where)) from None
                k = canonical_json(cfg.model_dump(mode="json"))  # the same config once (any data)
                if k not in seen:
                    seen[k] = len(configs)
                    configs.append(cfg)
                if lab is not None and seen[k] not in row_index[lab]:
                    row_index[lab].append(seen[k])
    return configs, row_index


def load_study(name: str | Path, preset: str = "quick", *, seeds: int | None = None,
               data_root: str | None = None,
               overrides: Sequence[str] | Mapping[str, Any] = ()) -> Study:
    r"""Load a study by name (or path) and resolve it with ``preset`` into trial configs.

    Every trial config is validated here, before anything runs: an unknown key names the key, the
    keys accepted at its level and the file; an invalid value gives pydantic's complaint in one
    line, with the section it came from; the study name must be one path component (NOTE [Study
    names]); the report's metric must be one the study's trial reports; at most
    :data:`MAX_TRIALS` trials. ``seeds`` overrides the preset's number of seeds (seeds are 0, 1,
    ..., seeds-1). ``data_root``: the data the keys are taken for (None: bundled;
    :meth:`Study.with_data_root`). ``overrides``: ``"KEY=VALUE"`` strings (or a mapping key →
    value) applied to the TOML before any check (NOTE [Study overrides]).

    >>> s = load_study("init-ablation", "quick")
    >>> s.grid["method"], len(s.configs) == 4 * 2 * s.seeds
    (['jacobian', 'random'], True)
    >>> t = load_study("init-ablation", "quick", overrides=["grid.method=['random']"])
    >>> t.grid["method"], len(t.configs) == 4 * s.seeds
    (['random'], True)
    """
    fn = "load_study"
    text, source = study_file(name)
    sets = _overrides(fn, overrides)
    raw = _apply_overrides(fn, _parse_toml(fn, text, source), sets)
    src = source if not sets else f"{source} with --set {' '.join(o.given for o in sets)}"
    _check_fields(fn, raw, list(_TOP_KEYS), "the top level", src)
    sname = check_study_name(fn, raw.get("name", Path(source).stem), src)
    plan, run_keys = _plan(fn, raw, preset, sname, src)
    n_seeds, threads = _seeds(fn, run_keys, seeds, plan)
    resolved = _merged(plan.fixed, plan.pre)
    report = _report(fn, raw.get("report"), plan)
    _check_count(fn, plan, n_seeds)
    configs, row_index = _configs(fn, plan, resolved, n_seeds)
    for t in [report.table, *report.tables]:
        _check_metric(fn, t.metric, {c.trial for c in configs}, src)
    _check_largest_trial(fn, configs, src)
    table = raw.get("executor", {})  # NOTE [Executor options]
    _check_fields(fn, table if isinstance(table, dict) else {}, list(EXECUTOR_KEYS), "[executor]",
                  src)
    return Study(name=sname, preset=preset, description=str(raw.get("description", "")).strip(),
                 paper=raw.get("paper"), grid=plan.grid, fixed=resolved, seeds=n_seeds,
                 report=report, source=source, presets=tuple(raw["presets"]), threads=threads,
                 configs=tuple(configs), cases=tuple(c for c in plan.cases if c),
                 rows=tuple(plan.rows), row_index={lab: tuple(i) for lab, i in row_index.items()},
                 overrides=sets, executor=executor_table(fn, table, src)
                 ).with_data_root(data_root)


def _check_largest_trial(fn: str, configs: Sequence[TrialConfig], source: str) -> None:
    """Refuse, at load and once, a study whose largest trial cannot fit in memory: the trial
    whose lower bound (:func:`~spectrumkit.study.config.memory_terms`, the data's sizes unknown
    yet) is the largest, named by the TOML keys that drive it."""
    sized = [memory_terms(c) for c in configs]
    largest = max(sized, key=lambda t: sum(t.values()), default={})
    check_memory_terms(fn, {f"{k} (in {source})": v for k, v in largest.items()})


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
