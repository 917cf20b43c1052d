r"""Reading stored study results (``spec.json`` + ``trials/*.json``); trials grouped by condition.

The folder layout and the trial-file format are the contract ``docs/results-schema.md`` (schema
version 2) between :mod:`spectrumkit.study` (the writer) and this package (the reader). Nothing
here recomputes anything: every number a figure or a table shows comes out of these files.

NOTE [Conditions]
A *condition* is one point of the study's grid without the seed: the tuple of the trial config's
values for the grid axes, in the order ``spec.json`` lists them. Conditions are ordered as the grid
lists its values (so figures and tables follow the study author's order), and labelled with the axes
that vary, pretty-printed (``normal:0.1`` → ``N(0, 0.1)``, ``snip`` → ``SNIP``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import fail
from .config import SCHEMA_VERSION, flat_config  # SCHEMA_VERSION: what this reads

__all__ = ["SCHEMA_VERSION", "StudyResults", "read_results", "pretty_value",
           "decode_connection_map", "find_study_dirs", "combo_label"]

_METHOD_NAMES = {"jacobian": "Jacobian", "snip": "SNIP", "foresight": "Foresight",
                 "random": "random", "magnitude": "magnitude", "synflow": "SynFlow",
                 "dense": "dense", "l2": "L2"}


def _fmt_num(v: float) -> str:
    return f"{v:g}"


def pretty_value(axis: str, value: Any) -> str:
    r"""A short human label for a grid value (NOTE [Conditions]).

    >>> pretty_value("init", "normal:0.1"), pretty_value("method", "snip"), \
    ...     pretty_value("sparsity", 0.95)
    ('N(0, 0.1)', 'SNIP', '95%')
    >>> pretty_value("normalize", "gamma"), pretty_value("normalize", None)
    ('norm.', '')
    """
    if axis == "method" and isinstance(value, str):
        return _METHOD_NAMES.get(value, value)
    if value is None:  # the method ignores this setting (e.g. random pruning has no normalization)
        return ""
    if axis == "normalize" and isinstance(value, (bool, str)):
        return {True: "norm.", "gamma": "norm.", False: "unnorm.", "none": "unnorm."}.get(value,
                                                                                         str(value))
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if axis in ("sparsity", "density") and number:
        return f"{100 * value:g}%"
    if axis in ("hidden_size", "hidden") and isinstance(value, int):
        return f"N={value}"
    if axis == "horizon" and isinstance(value, (int, str)):
        return f"U={value}"
    if axis == "init" and isinstance(value, str) and ";" not in value:  # overrides: shown as is
        name, _, args = value.partition(":")
        if name == "normal" and args:
            parts = args.split(",")
            mean, std = (("0", parts[0]) if len(parts) == 1 else (parts[0], parts[1]))
            return f"N({mean}, {std})"
        if name == "uniform" and args:
            return f"U({', '.join(a.strip() for a in args.split(','))})"
        if not args:
            return {"glorot": "Glorot", "he": "He", "orthogonal": "orthogonal"}.get(name, name)
    if isinstance(value, float):
        return _fmt_num(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def combo_label(axes: Sequence[str], values: Sequence[Any]) -> str:
    r"""Label of a combination of grid values (NOTE [Conditions]).

    Settings a method ignores (None) are left out; the normalization reads as a prefix.

    >>> combo_label(["init", "method"], ["normal:1", "random"])
    'N(0, 1), random'
    >>> axes = ["method", "normalize"]
    >>> combo_label(axes, ["snip", "gamma"]), combo_label(axes, ["random", None])
    ('norm. SNIP', 'random')
    """
    pairs = [(a, pretty_value(a, v)) for a, v in zip(axes, values)]
    pairs = [p for p in pairs if p[1]]
    prefix = " ".join(p for a, p in pairs if a == "normalize")
    rest = ", ".join(p for a, p in pairs if a != "normalize")
    return " ".join(x for x in (prefix, rest) if x)


def decode_connection_map(art: Mapping[str, Any]) -> np.ndarray:
    r"""The (R, C) bool connection map of a trial's ``artifacts.connection_map`` (packbits, base64).

    >>> m = np.array([[1, 0, 1], [0, 0, 1]], dtype=bool)
    >>> art = {"shape": [2, 3], "packbits": base64.b64encode(np.packbits(m.ravel())).decode()}
    >>> bool((decode_connection_map(art) == m).all())
    True
    """
    fn = "decode_connection_map"
    try:
        R, C = (int(v) for v in art["shape"])
        raw = base64.b64decode(art["packbits"], validate=True)
    except (KeyError, TypeError, ValueError) as e:
        raise fail(fn, "a connection_map with 'shape' [R, C] and base64 'packbits'",
                   repr(e)) from None
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    if bits.size < R * C or bits.size - R * C >= 8:
        raise fail(fn, f"{R}x{C} = {R * C} bits", f"{bits.size} bits")
    return bits[: R * C].reshape(R, C).astype(bool)


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


@dataclass(frozen=True)
class StudyResults:
    r"""A study folder read from disk: its resolved spec and its trial records (schema version 2).

    ``axes`` are the grid axes that define a condition (``seed`` excluded; NOTE [Conditions]).
    ``left_out``: trial files in the folder that are not trials of the resolved study (NOTE [Only
    the resolved trials]).
    """

    path: Path
    spec: dict
    trials: tuple[dict, ...]
    left_out: int = 0

    @property
    def name(self) -> str:
        """The study's name (``spec.json``, else the folder's)."""
        return str(self.spec.get("name", self.path.name))

    @property
    def grid(self) -> dict[str, list]:
        """Axis → values, in ``spec.json``'s order (``seed`` left out)."""
        return {k: list(v) for k, v in dict(self.spec.get("grid") or {}).items() if k != "seed"}

    @property
    def axes(self) -> list[str]:
        """The grid axes that define a condition (NOTE [Conditions])."""
        return list(self.grid)

    @property
    def varying_axes(self) -> list[str]:
        """The axes with more than one value."""
        return [a for a, vals in self.grid.items() if len(vals) > 1]

    @property
    def declared_figures(self) -> list[str]:
        """The figures the study's report asks for."""
        return [str(f) for f in (self.spec.get("report") or {}).get("figures", [])]

    @property
    def tables(self) -> list[dict]:
        """The report's tables (``report.table``: one table or a list of them)."""
        t = (self.spec.get("report") or {}).get("table")
        if t is None:
            return []
        return [dict(x) for x in (t if isinstance(t, list) else [t])]

    def condition(self, trial: Mapping[str, Any]) -> tuple:
        """The values of the study's grid axes in ``trial``'s (flat) config, in axis order."""
        cfg = trial["config"]
        missing = [a for a in self.axes if a not in cfg]
        if missing:
            raise fail("StudyResults.condition", f"grid axes {missing} in the config of trial "
                       f"{trial.get('key', '?')[:12]}", sorted(cfg))
        return tuple(cfg[a] for a in self.axes)

    def label(self, cond: tuple, axes: Iterable[str] | None = None) -> str:
        """Label of a condition from the axes that vary (or the given ``axes``)."""
        use = self.varying_axes if axes is None else list(axes)
        pairs = [(a, v) for a, v in zip(self.axes, cond) if a in use]
        if not pairs:  # nothing varies: name it by its method, or the study
            cfg = dict(zip(self.axes, cond))
            return pretty_value("method", cfg["method"]) if "method" in cfg else self.name
        return combo_label([a for a, _ in pairs], [v for _, v in pairs])

    def _order(self, cond: tuple) -> tuple:
        key = []
        for a, v in zip(self.axes, cond):
            vals = [_canon(x) for x in self.grid[a]]
            c = _canon(v)
            key.append((vals.index(c), "") if c in vals else (len(vals), c))
        return tuple(key)

    def conditions(self, *, status: Iterable[str] | None = ("ok",), need: str | None = None
                   ) -> dict[tuple, list[dict]]:
        r"""Trials grouped by condition (ordered by the grid), each list sorted by seed.

        ``status`` keeps only trials with those statuses (None: all); ``need`` keeps only trials
        whose ``artifacts`` hold that key.
        """
        st = None if status is None else set(status)
        groups: dict[tuple, list[dict]] = {}
        for t in self.trials:
            if st is not None and t.get("status") not in st:
                continue
            if need is not None and need not in (t.get("artifacts") or {}):
                continue
            groups.setdefault(tuple(_canon(v) for v in self.condition(t)), []).append(t)
        out = {}
        for ck in sorted(groups, key=lambda k: self._order(tuple(json.loads(x) for x in k))):
            cond = tuple(json.loads(x) for x in ck)
            out[cond] = sorted(groups[ck], key=lambda t: (_seed(t), t.get("key", "")))
        return out


def _seed(t: Mapping[str, Any]) -> int:
    s = t.get("config", {}).get("seed", 0)
    return s if isinstance(s, int) else 0


def find_study_dirs(path: str | Path) -> list[Path]:
    """``path`` itself if it holds ``spec.json``, else its sub-folders that do (sorted)."""
    p = Path(path)
    if (p / "spec.json").exists():
        return [p]
    if p.is_dir():
        return sorted(d for d in p.iterdir() if d.is_dir() and (d / "spec.json").exists())
    return []


def read_results(study_dir: str | Path, *, fn: str = "read_results") -> StudyResults:
    r"""Read ``study_dir/spec.json`` and the trials of the study it resolves (the results schema).

    NOTE [Only the resolved trials]
    ``trials/`` may hold results of other presets or seed counts run into the same folder (a
    ``paper`` run, then a ``quick`` one): counting them as extra seeds would mix settings. Only
    the trials whose keys ``spec.json`` lists (the study as last resolved) are read, each through
    :func:`spectrumkit.study.store.read_trial_file`; a :class:`~spectrumkit.study.StudyWarning`
    says how many other trial files were left out, names every ill-formed file (left out too,
    its trial runs again on the next ``study run``) and counts the trials without a result yet.
    ``StudyResults.left_out`` holds the number of other trial files.

    Raises :class:`~spectrumkit.SpectrumkitError` naming the expected layout when the folder holds
    no results, or when ``spec.json`` lists no keys.
    """
    import warnings

    from .store import StudyWarning, read_spec_file, read_trial_file

    p = Path(study_dir)
    expected = ("a study results folder OUT/<study> holding spec.json and trials/*.json, as "
                "written by 'spectrumkit study NAME'")
    if not p.is_dir():
        raise fail(fn, expected, f"{str(p)!r} (not a folder)")
    if not (p / "spec.json").exists():
        subs = find_study_dirs(p)
        hint = (f" (it holds the study folders {', '.join(d.name for d in subs)}; pass one of them)"
                if subs else " (no spec.json)")
        raise fail(fn, expected, f"{str(p)!r}{hint}")
    spec = read_spec_file(fn, p / "spec.json")
    tdir = p / "trials"
    files = sorted(tdir.glob("*.json")) if tdir.is_dir() else []
    if not files:
        raise fail(fn, f"{expected}; at least one trial result in {tdir}", "none")
    keys = spec.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise fail(fn, f"a 'keys' list of trial keys in {p / 'spec.json'} (written by "
                   "'spectrumkit study NAME')", type(keys).__name__)
    name = spec.get("name", p.name)
    trials, missing = [], 0
    for key in dict.fromkeys(keys):
        path = tdir / f"{key}.json"
        t, why = read_trial_file(path, key)
        if why is not None:
            warnings.warn(f"corrupt result file {path}: {why}; left out of the figures and "
                          "tables (the next 'spectrumkit study' run will run the trial again)",
                          StudyWarning, stacklevel=2)
        elif t is None:
            missing += 1
        else:
            trials.append(t)
    wanted = set(keys)
    left_out = sum(f.stem not in wanted for f in files)
    if left_out:
        warnings.warn(f"{left_out} trial file{'s' * (left_out != 1)} in {tdir} "
                      f"{'are' if left_out != 1 else 'is'} not trials of study {name!r} as "
                      f"resolved in spec.json (preset {spec.get('preset')}); left out",
                      StudyWarning, stacklevel=2)
    if missing:
        warnings.warn(f"{missing} of the {len(wanted)} trials of study {name!r} have no result "
                      f"in {tdir} yet; the figures and tables show the others",
                      StudyWarning, stacklevel=2)
    # the flat view of every config: the grid axes (method, normalize, horizon...) as given
    trials = [{**t, "config": flat_config(t["config"])} for t in trials]
    by_key = {t["key"]: t for t in trials}
    labels = spec.get("labels")
    if isinstance(labels, list):  # NOTE [Study axes]: one copy per labels, in config.<axis>
        trials = [{**by_key[e["key"]], "config": {**by_key[e["key"]]["config"], **e["labels"]}}
                  for e in labels if e["key"] in by_key]
    elif isinstance(spec.get("row_keys"), dict):  # a folder written before labelled axes
        trials = [{**by_key[k], "config": {**by_key[k]["config"], "row": label}}
                  for label, keys in spec["row_keys"].items() for k in keys if k in by_key]
    return StudyResults(path=p, spec=spec, trials=tuple(trials), left_out=left_out)
