r"""Pydantic models of the stored formats spectrumkit reads back: a study's ``trials/<key>.json``
and ``spec.json``, and the training state in a checkpoint (NOTE [Reading back] in
``spectrumkit/_io.py``).

These models check TYPES only, strictly (JSON ``"1"`` is not the number 1, ``true`` is not a
number): what a reader can trust before it touches a value. The meaning (a key that hashes to its
file name, a status among the known ones) is the reader's (``store.read_trial_file``). Every model
allows extra fields: a newer writer may add some, and a reader uses only what it knows.
:func:`first_error` turns a validation error into one line naming the field.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

__all__ = ["CheckpointState", "SpecFile", "TrialFile", "first_error"]

#: A stored number: a JSON int or float (not a bool, not a string), or null (NaN, Inf, not run).
Number = Union[StrictInt, StrictFloat, None]


class _Stored(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class TrialFile(_Stored):
    """``trials/<key>.json``: every metric a number or null; the blocks JSON objects."""

    schema_version: StrictInt
    key: StrictStr
    status: StrictStr
    config: dict[str, Any]
    metrics: dict[str, Number]
    history: dict[str, Any]
    artifacts: dict[str, Any]
    env: dict[str, Any]
    data: dict[str, Any]
    error: StrictStr | None = None


class TableFile(_Stored):
    """One table of ``report.table`` as ``spec.json`` stores it."""

    rows: StrictStr | list[StrictStr]
    cols: StrictStr | list[StrictStr] | None = None
    metric: StrictStr
    format: StrictStr = ".2f"


class ReportFile(_Stored):
    """``report`` in ``spec.json``: one table or a list of them, and the figures asked for."""

    table: TableFile | list[TableFile] | None = None
    figures: list[dict[str, Any] | StrictStr] = []


class LabelFile(_Stored):
    """One entry of ``labels`` in ``spec.json``: a trial key and its labels (axis → label)."""

    key: StrictStr
    labels: dict[str, StrictStr]


class SpecFile(_Stored):
    """``spec.json``: the study as resolved for its last run (the fields the figures read)."""

    name: StrictStr | None = None
    preset: StrictStr | None = None
    keys: list[StrictStr] | None = None
    grid: dict[str, list[Any]] = {}
    report: ReportFile | None = None
    row_keys: dict[str, list[StrictStr]] | None = None
    labels: list[LabelFile] | None = None


def first_error(e: ValidationError) -> str:
    """The first problem of ``e`` in one line: ``metrics.val_error_pct: a number or null, not
    str``."""
    err = e.errors(include_url=False)[0]
    where = ".".join(str(x) for x in err["loc"] if not isinstance(x, str) or
                     not x.startswith(("Strict", "list[", "dict[", "function-", "union[")) and
                     x not in ("int", "float", "str", "none", "TableFile", "ReportFile")) or "file"
    if err["type"] == "missing":
        return f"{where}: missing"
    got = err.get("input")
    what = type(got).__name__ if got is not None else "null"
    msg = "expected a number or null" if where.startswith("metrics.") else \
        " ".join(str(err["msg"]).split())[:80]
    return f"{where}: {msg}, got {what}"


class CheckpointState(BaseModel):
    """``state`` of a training checkpoint (``spectrumkit/checkpoints.py``): every field by type.

    The tensors (``order``, ``state``) and the ranges that depend on the run (``step`` at most its
    total, ``pos`` within its epoch) are checked by the reader, which knows the run.
    """

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    step: StrictInt = Field(ge=0)
    pos: StrictInt = Field(ge=0)
    order: Any
    state: Any
    rows: list[dict[str, Number]]
    loss_sum: StrictFloat | StrictInt
    loss_count: StrictInt = Field(ge=0)
    seconds: StrictFloat | StrictInt = Field(ge=0)
    first_loss: Number
    status: Literal["ok", "diverged"]
    diverged_at: StrictInt | None = Field(default=..., ge=1)
    metrics: dict[str, Number] | None
