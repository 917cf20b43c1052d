r"""A study's trials: fixed fields × a product of axes, seeds outermost.

NOTE [Study axes]
A study declares its trials ONE way: the fields every trial shares (``[fixed]``, then the
preset's fields) and a product of axes (``[grid]``, then the preset's ``[presets.P.grid]``, which
replaces an axis of the same name in place or adds one before the others: outermost after the
seeds, as a preset's settings that go together, e.g. one per data set). An axis is either

- a list of values of one trial field, named by the field (``method = ["jacobian", "random"]``);
- a list of labelled variants, named by a word that is not a trial field: ``[[grid.NAME]]``
  tables, each a ``label`` and the fields it sets. The label becomes a column ``NAME`` in tables
  and figures (``report.table.rows = "NAME"``), the values of a variant do not.

A trial's fields are ``defaults ← [fixed] ← [presets.P] ← the axes' settings, in axis order ←
seed``. A table value REPLACES a dict field (``data = {}`` is no data options at all), and a
dotted key sets one entry (``"data.scale" = "paper"``, quoted: TOML reads an unquoted
``data.scale`` as the table ``data = {scale = ...}``). A variant may take a recipe's score
options and its regime together, ``use = "recipe:NAME"`` (NOTE [Recipes]): the recipe's name and
the trial fields of its regime, before the variant's own fields (which win). A variant may not
set a field that is an axis of its own, and a preset's field may not be an axis.

The trials are ordered seed-major (every point of the product for seed 0, then seed 1, ...), so
partial results already fill whole tables. A trial that two points share after canonicalization
(random pruning ignores the score's recipe, NOTE [Canonical configs]) runs once and counts under
every label it has: ``spec.json`` lists each (key, labels) pair under ``labels``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import SpectrumkitError, fail
from ._spec_checks import DICT_FIELDS, trial_fields, unknown_key
from .config import TrialConfig, canonical_json, pydantic_message

__all__ = ["Axis", "LABEL", "USE", "apply_settings", "expand_use", "parse_axes", "resolve_trials"]

#: The key of a variant's label, and of a variant's recipe (NOTE [Study axes]).
LABEL = "label"
USE = "use"


@dataclass(frozen=True)
class Axis:
    """One axis of a study: a field's values, or labelled variants (NOTE [Study axes]).

    ``values``: the field's values, or the variants' labels; ``variants``: each variant's
    settings (None for a field axis); ``section``: where it was declared, for messages.
    """

    name: str
    values: tuple[Any, ...]
    variants: tuple[dict[str, Any], ...] | None
    section: str

    @property
    def labelled(self) -> bool:
        """True for an axis of labelled variants."""
        return self.variants is not None

    def settings(self, i: int) -> dict[str, Any]:
        """The fields point ``i`` of this axis sets."""
        return dict(self.variants[i]) if self.variants is not None else {self.name: self.values[i]}


def _check_trial_table(fn: str, table: Mapping[str, Any], section: str, src: str,
                       also: Sequence[str] = ()) -> None:
    """Known trial fields, dotted keys into a dict field, and the keys ``also`` only."""
    fields = trial_fields()
    for k in table:
        head, dot, entry = str(k).partition(".")
        if k in fields or k in also or (dot and head in DICT_FIELDS and entry):
            continue
        raise unknown_key(fn, str(k), [*also, *fields], section, src)


def check_trial_table(fn: str, table: Any, section: str, src: str, also: Sequence[str] = ()
                      ) -> dict[str, Any]:
    """A table of trial fields ([fixed], a preset's fields), checked; returned as a dict."""
    if not isinstance(table, dict):
        raise fail(fn, f"a table {section} in {src}", repr(table))
    _check_trial_table(fn, table, section, src, also)
    return dict(table)


def parse_axes(fn: str, table: Any, section: str, src: str) -> dict[str, Axis]:
    """The axes of ``[grid]`` (or a preset's grid), each checked (NOTE [Study axes])."""
    if not isinstance(table, dict):
        raise fail(fn, f"a table {section} of axes in {src}", repr(table))
    fields = trial_fields()
    out: dict[str, Axis] = {}
    for name, vals in table.items():
        if not isinstance(vals, list) or not vals:
            raise fail(fn, f"a non-empty list for grid axis {name!r} in {section} of {src}",
                       repr(vals))
        if name in fields:
            out[name] = Axis(name, tuple(vals), None, section)
        elif all(isinstance(v, dict) for v in vals):
            out[name] = _labelled(fn, name, vals, section, src)
        else:
            raise unknown_key(fn, name, fields, f"{section} (a trial field, or a new name for "
                              "labelled variants: [[grid.NAME]] tables)", src)
    return out


def _labelled(fn: str, name: str, vals: list[dict[str, Any]], section: str, src: str) -> Axis:
    labels: list[str] = []
    variants: list[dict[str, Any]] = []
    for i, v in enumerate(vals):
        v = dict(v)
        label = v.pop(LABEL, None)
        if not isinstance(label, str) or not label:
            raise fail(fn, f"a label (a non-empty string) in every variant of axis {name!r} of "
                       f"{section} in {src}", f"{label!r} in variant {i + 1}")
        if label in labels:
            raise fail(fn, f"distinct labels on axis {name!r} in {src}", f"{label!r} twice")
        _check_trial_table(fn, v, f"variant {label!r} of axis {name!r}", src, (LABEL, USE))
        if USE in v:
            expand_use(fn, v[USE], f"variant {label!r} of axis {name!r} in {src}")
        labels.append(label)
        variants.append(v)
    return Axis(name, tuple(labels), tuple(variants), section)


def expand_use(fn: str, use: Any, where: str) -> dict[str, Any]:
    """``use = "recipe:NAME"``: the recipe's name and the trial fields of its regime."""
    from ..choices import RECIPE_NAMES
    name = use[len("recipe:"):] if isinstance(use, str) and use.startswith("recipe:") else None
    if name not in RECIPE_NAMES:
        raise fail(fn, f"use = 'recipe:NAME' with NAME among {', '.join(RECIPE_NAMES)} in "
                   f"{where}", repr(use))
    # the regime table lives beside the recipes' score options (NOTE [Recipes]); it is imported
    # only here, where a study asks for it
    from ..scores.recipes import RECIPES
    return {"recipe": name, **RECIPES[name].regime}


def apply_settings(base: dict[str, Any], settings: Mapping[str, Any], fn: str = "load_study",
                   where: str = "") -> dict[str, Any]:
    """``base`` with ``settings`` on top: a value replaces the field, a dotted key sets one entry
    of a dict field, ``use`` applies a recipe first (NOTE [Study axes]); ``base`` unchanged."""
    out = dict(base)
    layers = [expand_use(fn, settings[USE], where)] if USE in settings else []
    layers.append({k: v for k, v in settings.items() if k != USE})
    for layer in layers:
        for k, v in layer.items():
            head, dot, entry = k.partition(".")
            if dot:
                cur = out.get(head)
                out[head] = {**(cur if isinstance(cur, dict) else {}), entry: copy.deepcopy(v)}
            else:
                out[k] = copy.deepcopy(v)
    return out


def _field(k: str) -> str:
    return k.partition(".")[0]


def check_axes(fn: str, axes: Mapping[str, Axis], pre: Mapping[str, Any], psec: str,
               src: str) -> None:
    """A field is an axis, or set by a variant or the preset, not both (NOTE [Study axes])."""
    for k in pre:
        if _field(k) in axes:
            raise fail(fn, f"{_field(k)!r} set in either [grid] or {psec} (not both) in {src}",
                       "both")
    for a in axes.values():
        for label, v in zip(a.values, a.variants or ()):
            set_here = {_field(k) for k in v} | ({_field(k) for k in expand_use(fn, v[USE], "")}
                                                 if USE in v else set())
            for k in sorted(set_here & set(axes)):
                raise fail(fn, f"{k!r} set in either an axis or a variant (not both) in {src}",
                           f"both (variant {label!r} of axis {a.name!r})")


def _where(loc: str, axes: Sequence[Axis], point: tuple[int, ...], pre: Mapping[str, Any],
           fixed: Mapping[str, Any], psec: str, src: str) -> str:
    """The section a bad value of field ``loc`` came from, for the error message."""
    for a, i in reversed(list(zip(axes, point))):
        if a.variants is not None and any(_field(k) == loc for k in a.variants[i]):
            return f"in variant {a.values[i]!r} of axis {a.name!r} of {src}"
        if a.variants is None and a.name == loc:
            return f"in {a.section} of {src}"
    sec = (psec if any(_field(k) == loc for k in pre)
           else "[fixed]" if any(_field(k) == loc for k in fixed) else "the defaults")
    return f"in {sec} of {src}"


def _check_data_options(fn: str, values: Mapping[str, Any], seed: int, axes: Sequence[Axis],
                        point: tuple[int, ...], src: str) -> None:
    """A built-in trial's data options must be options its task takes: refused at load, naming
    the trial (its seed, labels, task and method) and the option, not when the trial runs (a
    user's trial function, or a task given as an import path, reads its ``data`` itself)."""
    from ..config import BUILTIN_TRIALS
    from ..data.tasks import check_task_options, get_task, is_import_path, task_names  # no torch

    task = values.get("task", "seq-mnist")
    if values.get("trial", "prune-train") not in BUILTIN_TRIALS or not isinstance(task, str) \
            or is_import_path(task) or task not in task_names():
        return  # an unknown task is refused by the config, with the section it came from
    data = values.get("data") or {}
    labels = [f"{a.name} {a.values[i]!r}" for a, i in zip(axes, point) if a.labelled]
    trial = ", ".join([f"seed {seed}", *labels, f"task {task!r}",
                       f"method {values.get('method', 'jacobian')!r}"])
    accepted = list(get_task(fn, task).option_names)
    unknown = [k for k in data if k not in accepted]
    if unknown:
        raise fail(fn, f"data options of task {task!r} among {', '.join(accepted)} in "
                   f"trial ({trial}) of {src}", repr(unknown[0]))
    try:
        check_task_options(task, data)
    except SpectrumkitError as err:  # "check_task_options: expected X, got Y"
        expected, _, got = str(err).partition(": expected ")[2].rpartition(", got ")
        raise fail(fn, f"{expected} in trial ({trial}) of {src}", got) from None


def resolve_trials(fn: str, axes: Sequence[Axis], fixed: Mapping[str, Any],
                   pre: Mapping[str, Any], n_seeds: int, psec: str, src: str
                   ) -> tuple[list[TrialConfig], list[tuple[int, dict[str, str]]]]:
    """Every trial config, seed-major, each validated once; duplicates once.

    Returns the configs and, for studies with labelled axes, every (config index, labels) pair
    (a shared trial has several, NOTE [Study axes]).
    """
    base = apply_settings(apply_settings({}, fixed), pre)
    configs: list[TrialConfig] = []
    seen: dict[str, int] = {}  # canonical config -> its index in configs
    labels: list[tuple[int, dict[str, str]]] = []
    for seed in range(n_seeds):
        for point in itertools.product(*(range(len(a.values)) for a in axes)):
            values = base
            for a, i in zip(axes, point):
                values = apply_settings(values, a.settings(i), fn, f"axis {a.name!r} of {src}")
            _check_data_options(fn, values, seed, axes, point, src)
            try:
                cfg = TrialConfig(**{**values, "seed": seed})
            except ValidationError as e:
                first = e.errors()[0].get("loc") or ("",)
                where = _where(str(first[0]), axes, point, pre, fixed, psec, src)
                raise SpectrumkitError(pydantic_message(fn, e, where)) from None
            k = canonical_json(cfg.model_dump(mode="json"))  # the same config once (any data)
            if k not in seen:
                seen[k] = len(configs)
                configs.append(cfg)
            lab = {a.name: str(a.values[i]) for a, i in zip(axes, point) if a.labelled}
            if lab and (seen[k], lab) not in labels:
                labels.append((seen[k], lab))
    return configs, labels
