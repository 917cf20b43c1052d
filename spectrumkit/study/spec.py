r"""Study specs: one TOML file per study, resolved with a preset into a list of trial configs.

A study file (``spectrumkit/studies/NAME.toml``, or any path) holds::

    name = "init-ablation"            # optional, defaults to the file name
    description = "..."
    paper = "Table 5"                 # optional reference

    [fixed]                           # TrialConfig fields shared by every trial
    cell = "gru"

    [grid]                            # the axes, crossed (NOTE [Study axes] in .axes)
    init = ["glorot", "normal:1"]     # a field's values
    method = ["jacobian", "random"]

    [[grid.regime]]                   # labelled variants: the label is a column of the tables
    label = "authors"
    use = "recipe:authors"            # a recipe's score options and its regime
    "data.scale" = "unit"             # a dotted key sets one entry of a dict field

    [presets.quick]                   # seeds + the preset's fields; threads = torch threads per
    seeds = 2                         # trial (a run option: NOTE [Threads per worker])
    hidden_size = 64

    [presets.quick.grid]              # replaces the axis of that name, or adds one
    init = ["glorot"]

    [report]
    table = { rows = "init", cols = "method", metric = "val_error_pct", paper_table = "Table 5" }
    tables = [{ rows = "init", cols = "method", metric = "ir_ratio" }]   # optional, more metrics
    figures = ["curves", "anatomy"]

A trial's config is ``defaults ← [fixed] ← [presets.P] ← the axes' settings ← seed`` (a table
value replaces a dict field, a dotted key sets one entry); the trials are ordered seed-major, and
duplicates (NOTE [Canonical configs]) are dropped (NOTE [Study axes]). Every trial is validated
here, its data options against its task included, before anything runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from .._io import read_text_file
from ..choices import FIGURES
from ..errors import SpectrumkitError, check_memory_terms, fail
from ._executor_options import EXECUTOR_KEYS, ExecutorOptions, executor_table
from ._spec_checks import TOP_KEYS, check_fields, parse_toml
from .axes import Axis, check_axes, check_trial_table, parse_axes, resolve_trials
from .config import TrialConfig, memory_terms, pydantic_message, trial_key
from .overrides import Override, apply_overrides, parse_override, parse_overrides
from .report_spec import Report, TableReport, check_metric, check_report

__all__ = ["FIGURES", "Override", "Study", "TableReport", "Report", "list_studies", "load_study",
           "parse_override", "study_file"]

_RESERVED = ("list", "show", "run")
_PRESET_KEYS = ("seeds", "description", "grid", "threads")
#: The forms of earlier versions, each refused with the form that replaces it.
_OLD_FORMS = {
    "rows": "[[grid.NAME]] tables, an axis of labelled variants (label = ..., and its fields)",
    "cases": "[[presets.P.grid.NAME]] tables, an axis of labelled variants the preset adds",
    "extra": "a variant of a labelled axis [[presets.P.grid.NAME]] (one variant per trial kind)",
}


class _Seeds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seeds: PositiveInt
    threads: PositiveInt | None = None


@dataclass(frozen=True)
class Study:
    """A study resolved with one preset: its axes, fixed settings, seeds, report and trials."""

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
    data_root: str | None = None
    data: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    axes: tuple[Axis, ...] = field(default=(), repr=False)
    labels: tuple[tuple[int, dict[str, str]], ...] = field(default=(), repr=False)
    overrides: tuple[Override, ...] = ()
    executor: ExecutorOptions = ExecutorOptions()  # NOTE [Executor options]

    @property
    def keys(self) -> list[str]:
        """The trial keys, in run order (they depend on the data, NOTE [What the key covers])."""
        return [trial_key(c, data=self.data.get(c.task)) for c in self.configs]

    @property
    def variants(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """Labelled axis → its variants (label, fields), in order (NOTE [Study axes])."""
        return {a.name: list(zip(a.values, a.variants)) for a in self.axes
                if a.variants is not None}

    @property
    def label_keys(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Labelled axis → label → the keys of its trials; a shared trial is under several."""
        keys = self.keys
        out: dict[str, dict[str, list[str]]] = {
            a: {lab: [] for lab, _ in vs} for a, vs in self.variants.items()}
        for i, labs in self.labels:
            for a, lab in labs.items():
                if keys[i] not in out[a][lab]:
                    out[a][lab].append(keys[i])
        return {a: {lab: tuple(k) for lab, k in d.items()} for a, d in out.items()}

    def labelled_keys(self) -> list[tuple[str, dict[str, str]]]:
        """Every (trial key, labels) pair, in run order: one per label a trial has."""
        keys = self.keys
        return [(keys[i], dict(labs)) for i, labs in self.labels]

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
                # A study over several data sets (the language study's paper preset) runs the
                # trials whose data is under the root; the others fail, each with the loader's
                # message.
                missing.append(e)
                data[t] = {"source": "missing", "fingerprint": None, "error": str(e)}
        if missing and len(missing) == len(tasks):
            raise missing[0]
        return replace(self, data_root=root, data=data)

    @property
    def order(self) -> dict[str, list[Any]]:
        """Axis → values (a labelled axis: its labels) in the study's order."""
        return dict(self.grid)

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
            "overrides": [o.to_json() for o in self.overrides]}
        if self.labels:
            out["variants"] = {a: [{"label": lab, **f} for lab, f in vs]
                               for a, vs in self.variants.items()}
            out["labels"] = [{"key": k, "labels": labs} for k, labs in self.labelled_keys()]
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




#: The most trials one study may resolve to (seeds x the points of the product): a typo such as
#: ``--seeds 100000000`` is refused at once instead of building configs for hours.
MAX_TRIALS = 10_000


def _old_form(fn: str, key: str, section: str, src: str) -> SpectrumkitError:
    """An earlier version's way to declare trials: one line naming it and the form to write."""
    return fail(fn, f"{_OLD_FORMS[key]} in {src}", f"the earlier form {section}")


@dataclass(frozen=True)
class _Plan:
    """A study's sections for one preset, checked key by key (the steps of :func:`load_study`)."""

    psec: str  # "[presets.P]", for messages
    src: str  # the source and the overrides, for messages
    fixed: dict[str, Any]
    pre: dict[str, Any]  # the preset's trial fields
    axes: dict[str, Axis]


def _plan(fn: str, raw: dict[str, Any], preset: str, sname: str, src: str
          ) -> tuple[_Plan, dict[str, Any]]:
    """Check [fixed], the axes and the preset; returns the plan and the preset's run keys."""
    if "rows" in raw:
        raise _old_form(fn, "rows", "[[rows]]", src)
    presets = raw.get("presets", {})
    if not isinstance(presets, dict) or not presets:
        raise fail(fn, f"a [presets.NAME] table in {src}", repr(presets))
    if preset not in presets:
        raise fail(fn, f"a preset among {', '.join(presets)} for study {sname!r}", repr(preset))
    psec = f"[presets.{preset}]"
    if not isinstance(presets[preset], dict):
        raise fail(fn, f"a table {psec} in {src}", repr(presets[preset]))
    pre = dict(presets[preset])
    for old in ("cases", "extra"):
        if old in pre:
            raise _old_form(fn, old, f"[[presets.{preset}.{old}]]", src)
    check_trial_table(fn, pre, psec, src, _PRESET_KEYS)
    run_keys = {k: pre.pop(k) for k in _PRESET_KEYS if k in pre}
    fixed = check_trial_table(fn, raw.get("fixed", {}), "[fixed]", src)
    axes = parse_axes(fn, raw.get("grid", {}), "[grid]", src)
    mine = parse_axes(fn, run_keys.pop("grid", {}), f"[presets.{preset}.grid]", src)
    # a preset's axis replaces the study's of that name in place; its new axes come first
    axes = {**{k: a for k, a in mine.items() if k not in axes},
            **{k: mine.get(k, a) for k, a in axes.items()}}
    check_axes(fn, axes, pre, psec, src)
    return _Plan(psec=psec, src=src, fixed=fixed, pre=pre, axes=axes), run_keys


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


def _check_count(fn: str, plan: _Plan, n_seeds: int) -> None:
    n_trials = n_seeds * math.prod(len(a.values) for a in plan.axes.values())
    if n_trials > MAX_TRIALS:
        raise fail(fn, f"at most {MAX_TRIALS} trials (seeds x the points of the axes' product)",
                   n_trials)


def load_study(name: str | Path, preset: str = "quick", *, seeds: int | None = None,
               data_root: str | None = None,
               overrides: Sequence[str] | Mapping[str, Any] = ()) -> Study:
    r"""Load a study by name (or path) and resolve it with ``preset`` into trial configs.

    Every trial config is validated here, before anything runs: an unknown key names the key, the
    keys accepted at its level and the file; an invalid value gives pydantic's complaint in one
    line, with the section it came from; a data option its task does not take names the trial
    and the option; the study name must be one path component (NOTE [Study names]); the report's
    metric must be one the study's trial reports; at most :data:`MAX_TRIALS` trials. ``seeds``
    overrides the preset's number of seeds (seeds are 0, 1, ..., seeds-1). ``data_root``: the
    data the keys are taken for (None: bundled; :meth:`Study.with_data_root`). ``overrides``:
    ``"KEY=VALUE"`` strings (or a mapping key → value) applied to the TOML before any check
    (NOTE [Study overrides]).

    >>> s = load_study("init-ablation", "quick")
    >>> s.grid["method"], len(s.configs) == 4 * 2 * s.seeds
    (['jacobian', 'random'], True)
    >>> t = load_study("init-ablation", "quick", overrides=["grid.method=['random']"])
    >>> t.grid["method"], len(t.configs) == 4 * s.seeds
    (['random'], True)
    """
    fn = "load_study"
    text, source = study_file(name)
    sets = parse_overrides(fn, overrides)
    raw = apply_overrides(fn, parse_toml(fn, text, source), sets)
    src = source if not sets else f"{source} with --set {' '.join(o.given for o in sets)}"
    check_fields(fn, raw, list(TOP_KEYS) + ["rows"], "the top level", src)
    sname = check_study_name(fn, raw.get("name", Path(source).stem), src)
    plan, run_keys = _plan(fn, raw, preset, sname, src)
    n_seeds, threads = _seeds(fn, run_keys, seeds, plan)
    axes = list(plan.axes.values())
    report = check_report(fn, raw.get("report"), [a.name for a in axes if a.labelled], src)
    _check_count(fn, plan, n_seeds)
    configs, labels = resolve_trials(fn, axes, plan.fixed, plan.pre, n_seeds, plan.psec, src)
    for t in [report.table, *report.tables]:
        check_metric(fn, t.metric, {c.trial for c in configs}, src)
    _check_largest_trial(fn, configs, src)
    fixed = {**plan.fixed, **plan.pre}
    table = raw.get("executor", {})  # NOTE [Executor options]
    check_fields(fn, table if isinstance(table, dict) else {}, list(EXECUTOR_KEYS), "[executor]",
                 src)
    return Study(name=sname, preset=preset, description=str(raw.get("description", "")).strip(),
                 paper=raw.get("paper"), grid={a.name: list(a.values) for a in axes},
                 fixed=fixed, seeds=n_seeds, report=report, source=source,
                 presets=tuple(raw["presets"]), threads=threads, configs=tuple(configs),
                 axes=tuple(axes), labels=tuple(labels), overrides=sets,
                 executor=executor_table(fn, table, src)).with_data_root(data_root)


def _check_largest_trial(fn: str, configs: Sequence[TrialConfig], source: str) -> None:
    """Refuse, at load and once, a study whose largest trial cannot fit in memory: the trial
    whose lower bound (:func:`~spectrumkit.study.config.memory_terms`, the data's sizes unknown
    yet) is the largest, named by the TOML keys that drive it."""
    sized = [memory_terms(c) for c in configs]
    largest = max(sized, key=lambda t: sum(t.values()), default={})
    check_memory_terms(fn, {f"{k} (in {source})": v for k, v in largest.items()})


