r"""Study overrides: ``KEY=VALUE`` edits of a study's TOML before it is checked.

NOTE [Study overrides]
``load_study(..., overrides=["KEY=VALUE", ...])`` and ``spectrumkit study NAME --set KEY=VALUE``
change a study's settings without copying its TOML. Every override is applied, in the order
given (a later one wins), to the parsed TOML document BEFORE anything is validated, so the
file's own checks judge it, with the same one-line errors:
- KEY is a dotted path into the document: ``grid.init``, ``fixed.epochs``,
  ``presets.quick.seeds``, ``report.table.metric``, ``fixed.data.scale``; tables on the way are
  created when absent.
- A bare trial field (``hidden_size``, or ``data.scale`` inside a dict-valued field) means "this
  value for every trial of the run": exactly as if the TOML were edited to remove that field from
  every axis (an axis of that field goes; a labelled variant loses the field) and from every
  preset (its fields and its axes), and to set it in [fixed]. A bare ``data.scale`` sets the
  entry in [fixed] and in every ``data`` table the study gives elsewhere (a table replaces the
  field, NOTE [Study axes]), and removes every ``"data.scale"`` key.
- VALUE is a TOML value (``64``, ``0.5``, ``true``, ``"x"``, ``["glorot", "he"]``,
  ``{scale = 0.5}``); a bare word that is not valid TOML (``glorot``) is that string.
- The training budget is ONE setting given as ``epochs`` or ``steps``: a bare ``steps=N``
  also removes ``epochs`` wherever the study sets it (and ``epochs=N`` removes ``steps``), so
  ``--set steps=2`` switches an epochs-based study to steps. A dotted ``fixed.steps=N`` edits
  only that key, and the check of exactly one budget judges the result.
An unknown first key is refused here, naming the sections and the trial fields; a deeper unknown
key is refused by the check of its level, naming the keys accepted there. The messages name the
overrides next to the file. ``spec.json`` records them: each as given, with its key and value.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpectrumkitError, fail
from ._spec_checks import TOP_KEYS, parse_toml, trial_fields, unknown_key

__all__ = ["Override", "apply_overrides", "parse_override", "parse_overrides"]

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
        doc = parse_toml(fn, f"v = {raw}", "")
        value = doc["v"] if len(doc) == 1 and _plain(doc["v"]) else raw
    except SpectrumkitError:  # not TOML: the bare word itself
        value = raw
    return Override(text, tuple(key.split(".")), value)


def parse_overrides(fn: str, overrides: Sequence[str] | Mapping[str, Any]
                    ) -> tuple[Override, ...]:
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


def _trial_tables(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tables of trial fields below [fixed] (presets, labelled variants) and the axes tables."""
    grids: list[Any] = [doc.get("grid")]
    tables: list[Any] = []
    presets = doc.get("presets")
    for pre in presets.values() if isinstance(presets, dict) else ():
        if isinstance(pre, dict):
            tables.append(pre)
            grids.append(pre.get("grid"))
    grids = [g for g in grids if isinstance(g, dict)]
    for g in grids:
        for axis in g.values():
            if isinstance(axis, list):
                tables += [v for v in axis if isinstance(v, dict) and "label" in v]
    return [t for t in tables if isinstance(t, dict)], grids


def _set_everywhere(fn: str, doc: dict[str, Any], o: Override) -> None:
    """A bare trial field: the same value for every trial (NOTE [Study overrides])."""
    tables, grids = _trial_tables(doc)
    head, dotted = o.path[0], ".".join(o.path)
    for t in tables:
        t.pop(dotted, None)
        if len(o.path) == 1:
            t.pop(head, None)
        elif isinstance(t.get(head), dict):  # a table that replaces the field gets the entry
            _set_path(fn, t, o.path, o.value, o.given)
    for g in grids:
        if len(o.path) == 1:
            g.pop(head, None)
        elif isinstance(g.get(head), list):  # an axis of tables of that field
            for v in g[head]:
                if isinstance(v, dict):
                    _set_path(fn, v, o.path[1:], o.value, o.given)
    fixed = doc.get("fixed")
    if isinstance(fixed, dict):
        fixed.pop(dotted, None)
    other = _BUDGET.get(head) if len(o.path) == 1 else None
    if other is not None:  # the training budget is one setting: epochs or steps
        for t in [*tables, *grids, *([fixed] if isinstance(fixed, dict) else [])]:
            t.pop(other, None)
    _set_path(fn, doc, ("fixed", *o.path), o.value, o.given)


def apply_overrides(fn: str, raw: dict[str, Any], overrides: Sequence[Override]
                    ) -> dict[str, Any]:
    """The TOML document with ``overrides`` applied (NOTE [Study overrides]); ``raw`` unchanged."""
    doc = copy.deepcopy(raw)
    fields = trial_fields()
    for o in overrides:
        head = o.path[0]
        if head in TOP_KEYS:
            if len(o.path) == 1 and head in ("grid", "fixed", "presets", "report") \
                    and not isinstance(o.value, dict):
                raise fail(fn, f"a table for {head} (--set {o.given})", repr(o.value))
            _set_path(fn, doc, o.path, o.value, o.given)
        elif head in fields:
            _set_everywhere(fn, doc, o)
        else:
            raise unknown_key(fn, head, list(TOP_KEYS) + fields,
                              "the study (a section, or a trial field for every trial)",
                              f"--set {o.given}")
    return doc
