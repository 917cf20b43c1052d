r"""One reading of a stored metric value for every table and figure: finite, ∞ or undefined.

NOTE [Undefined values]
A trial of status ``ok`` may hold a metric that is not a finite number: the I/R ratio of a mask that
keeps no recurrent weight is ∞ (kept input / 0), a ratio 0 / 0 or a NaN is undefined. JSON has no
∞ and no NaN, so the trial files store ``null`` (NOTE [Atomic results]); the reader tells the two
apart from the counts the trial also stores (``kept_input`` and ``kept_recurrent`` among the
metrics, or the anatomy rows): ``ir_ratio`` is ∞ when the mask keeps input weights and no recurrent
weight, undefined otherwise. Every table and figure then shows and counts them the same way:

* a cell's mean ± std is taken over its finite values only; ∞ and undefined values are counted
  beside n, e.g. ``(n=2, 1 ∞)``;
* a cell without a finite value shows ``∞`` when every value is ∞, else ``—``;
* the caption ends with a footnote saying how many values were ∞ and how many undefined;
* a figure writes ``∞`` or ``—`` where the bar or the label would be.

So a study whose trials are ok always ends with its tables and figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["INFINITE", "UNDEFINED", "count_note", "footnote", "metric_value", "split_values",
           "value_kind", "value_text"]

#: How an infinite value is shown.
INFINITE = "∞"
#: How an undefined value (0/0, NaN, a missing number) is shown.
UNDEFINED = "—"

#: Ratio metrics stored as null when their denominator is 0: (numerator, denominator) counts.
_RATIO_COUNTS = {"ir_ratio": ("kept_input", "kept_recurrent")}


def _block_counts(trial: Mapping[str, Any]) -> dict[str, float]:
    """Kept counts per block from a trial's anatomy rows (``input``/``recurrent``), if stored."""
    anatomy = ((trial.get("artifacts") or {}).get("anatomy") or {})
    out: dict[str, float] = {}
    for r in anatomy.get("rows") or []:
        if isinstance(r, Mapping) and isinstance(r.get("kept"), (int, float)):
            b = f"kept_{r.get('block')}"
            out[b] = out.get(b, 0.0) + float(r["kept"])
    return out


def metric_value(record: Mapping[str, Any], metric: str) -> float:
    r"""The value of ``metric`` in a trial (a trial dict or a flat row): finite, ±∞ or NaN.

    NOTE [Undefined values]: a stored null of a ratio metric is ∞ when its counts say the
    denominator is 0 and the numerator is not; any other null, bool or non-number is NaN.

    >>> metric_value({"metrics": {"ir_ratio": None, "kept_input": 3, "kept_recurrent": 0}},
    ...              "ir_ratio")
    inf
    >>> metric_value({"ir_ratio": None, "kept_input": 0, "kept_recurrent": 0}, "ir_ratio")
    nan
    >>> metric_value({"metrics": {"val_error_pct": 2.5}}, "val_error_pct")
    2.5
    """
    metrics = record.get("metrics")
    flat = metrics if isinstance(metrics, Mapping) else record
    v = flat.get(metric)
    null = v is None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if not math.isnan(v):
            return float(v)
        null = True  # a null read into a collected table is NaN
    if null and metric in _RATIO_COUNTS:
        num, den = _RATIO_COUNTS[metric]
        counts = {**_block_counts(record), **{k: flat[k] for k in (num, den) if k in flat}}
        a, b = counts.get(num), counts.get(den)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and _is_number(a) \
                and _is_number(b) and b == 0 and a > 0:
            return math.inf
    return math.nan


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def value_kind(v: float) -> str:
    """``"finite"``, ``"inf"`` (±∞) or ``"undefined"`` (NaN)."""
    if math.isnan(v):
        return "undefined"
    return "finite" if math.isfinite(v) else "inf"


def value_text(v: float | None, fmt: str = ".3g") -> str:
    """A single value as a figure or a table shows it (NOTE [Undefined values]).

    >>> value_text(0.0712), value_text(float("inf")), value_text(float("-inf")), value_text(None)
    ('0.0712', '∞', '−∞', '—')
    """
    if v is None or math.isnan(v):
        return UNDEFINED
    if math.isinf(v):
        return INFINITE if v > 0 else f"−{INFINITE}"
    return format(v, fmt)


def count_note(n: int, n_inf: int = 0, n_undefined: int = 0, diverged: int = 0,
               failed: int = 0) -> str:
    """The counts beside a cell: ``n=2, 1 ∞, 1 —, 1 diverged`` (zero counts left out but n).

    >>> count_note(2, n_inf=1, diverged=1)
    'n=2, 1 ∞, 1 diverged'
    """
    parts = [f"n={n}"]
    parts += [f"{k} {w}" for k, w in ((n_inf, INFINITE), (n_undefined, UNDEFINED),
                                       (diverged, "diverged"), (failed, "failed")) if k]
    return ", ".join(parts)


def footnote(metric: str, n_inf: int, n_undefined: int) -> str:
    """The caption's footnote on the values not averaged in; empty when there are none.

    >>> footnote("ir_ratio", 1, 0)
    '∞: ir_ratio is infinite in 1 ok trial (no recurrent weight kept); not averaged in.'
    """
    parts = []
    if n_inf:
        why = " (no recurrent weight kept)" if metric == "ir_ratio" else ""
        parts.append(f"{INFINITE}: {metric} is infinite in {_trials(n_inf)}{why}")
    if n_undefined:
        parts.append(f"{UNDEFINED}: {metric} is undefined in {_trials(n_undefined)}")
    return "; ".join(parts) + "; not averaged in." if parts else ""


def _trials(n: int) -> str:
    return f"{n} ok trial" + ("" if n == 1 else "s")


def split_values(values: Iterable[float]) -> tuple[list[float], int, int]:
    """(finite values, count of ±∞, count of undefined) of ``values``."""
    finite, n_inf, n_undef = [], 0, 0
    for v in values:
        kind = value_kind(float(v))
        if kind == "finite":
            finite.append(float(v))
        elif kind == "inf":
            n_inf += 1
        else:
            n_undef += 1
    return finite, n_inf, n_undef
