r"""The result store of one study: ``OUT/<study>/{spec.json, trials/, logs/, tables/}``.

The layout and the result format are fixed by docs/results-schema.md (the contract with
:mod:`spectrumkit.figures`).

NOTE [Atomic results]
A result file either exists complete or not at all. It is written to a temporary file in the same
folder (``.<key>.json.<pid>.<random>.tmp``), flushed and fsync'ed, renamed over the final name with
``os.replace`` (atomic on POSIX and Windows), and then the folder itself is fsync'ed so the rename
survives a power cut. Only the process that runs the study writes results (workers return theirs),
and it holds an exclusive lock on ``OUT/<study>/.lock`` while it runs, so a temporary file found at
start-up belongs to a run that was killed: it is deleted. A result file that cannot be used —
not UTF-8, not JSON, not an object, a field missing or of the wrong type, a config and data block
that do not hash to its name — is reported with a warning naming it and its trial is run again.
:func:`read_trial_file` is the one reader that decides this, for the runner and the figures alike.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from .._formats import SpecFile, TrialFile, first_error
from .._io import (
    check_output_dir,
    decode_utf8,
    describe_read_error,
    read_regular,
    read_text_file,
    write_text_atomic,
)
from .._lock import folder_lock
from ..errors import fail
from .config import (
    DATA_IDENTITY_FIELDS,
    SCHEMA_VERSION,
    TrialConfig,
    canonical_json,
    flat_config,
    trial_key,
)

__all__ = ["StudyWarning", "ResultStore", "collect", "read_trial_file", "STATUSES"]

STATUSES = ("ok", "diverged", "failed")


class StudyWarning(UserWarning):
    """Something in a results folder needed attention (a corrupt result file, a stale lock...)."""


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _check_result(data: Any, key: str) -> str | None:
    """Why ``data`` is not a valid result for ``key`` (None if it is)."""
    if not isinstance(data, dict):
        return f"not a JSON object but {type(data).__name__}"
    if data.get("schema_version") != SCHEMA_VERSION:
        return f"schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}"
    if data.get("key") != key:
        return f"key {data.get('key')!r} differs from its file name"
    if data.get("status") not in STATUSES:
        return f"status {data.get('status')!r}"
    for field in ("config", "metrics", "history", "artifacts", "env", "data"):
        if not isinstance(data.get(field), dict):
            return (f"no {field!r} object" if field not in data else
                    f"{field!r} is {type(data[field]).__name__}, not a JSON object")
    if not isinstance(data.get("error"), (str, type(None))):
        return f"'error' is {type(data['error']).__name__}, not a string"
    try:
        ident = {k: data["data"].get(k) for k in DATA_IDENTITY_FIELDS}
        if trial_key(TrialConfig(**data["config"]), data=ident) != key:
            return "its config and data do not hash to its key"
    except Exception as e:  # noqa: BLE001 - any failure means the file cannot be trusted
        return f"its config does not validate ({type(e).__name__})"
    try:
        TrialFile.model_validate(data)  # every field by type (metrics: numbers or null)
    except ValidationError as e:
        return first_error(e)
    return None


def read_trial_file(path: str | Path, key: str | None = None, *, required: Iterable[str] = ()
                    ) -> tuple[dict[str, Any] | None, str | None]:
    r"""Read one trial result file: ``(result, None)``, ``(None, why)`` or ``(None, None)``.

    The one reader of ``trials/<key>.json`` (the runner, :func:`collect` and the figures use it).
    It never raises for the file's content: bytes that are not UTF-8, text that is not JSON (NaN
    and Infinity included), JSON that is not an object, a wrong schema version, a missing or
    mistyped field (``"config": 5``), an unknown status, or a config and data block that do not
    hash to ``key`` (default: the file's stem), a metric that is not a number or null, an ``ok``
    result without one of the ``required`` metrics, or a path that is not a regular file (a FIFO
    is never opened for a blocking read: NOTE [Reading back] in ``spectrumkit/_io.py``) all give
    ``(None, why)`` with ``why`` one line. An absent file gives ``(None, None)``.
    """
    path = Path(path)
    key = path.stem if key is None else key
    try:
        raw = read_regular(path)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, describe_read_error(e)
    text, bad = decode_utf8(raw)
    if text is None:
        return None, f"not UTF-8 ({bad[len('not UTF-8: '):] if bad else ''})"
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        return None, f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    except (ValueError, RecursionError) as e:
        return None, f"not valid JSON ({' '.join(str(e).split()) or type(e).__name__})"
    why = _check_result(data, key)
    if why is None and data["status"] == "ok":
        missing = [m for m in required if m not in data["metrics"]]
        if missing:
            why = f"metrics.{missing[0]}: missing from an ok result"
    return (data, None) if why is None else (None, why)


class ResultStore:
    """The folder of one study. ``prepare()`` creates it; ``lock()`` guards a run."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.trials = self.root / "trials"
        self.logs = self.root / "logs"
        self.tables = self.root / "tables"

    def prepare(self) -> None:
        """Create the folders and prove they can be written; errors name the folder."""
        check_output_dir("run_study", self.root)  # the one check of every command (_io.py)
        try:
            for d in (self.root, self.trials, self.logs, self.tables):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise fail("run_study", "an output folder that can be written",
                       f"{self.root} ({type(e).__name__}: {e.strerror or e})") from None

    def check_outputs(self, keys: Iterable[str]) -> None:
        """Refuse, before any trial runs, a run that could not write one of its files: each
        ``trials/<key>.json`` and ``logs/<key>.log`` of ``keys`` and ``spec.json`` must be new or
        a regular file (NOTE [Output paths] in ``spectrumkit/_io.py``)."""
        keys = list(keys)
        check_output_dir("run_study", self.root, files=["spec.json"])
        check_output_dir("run_study", self.trials, files=[f"{k}.json" for k in keys])
        check_output_dir("run_study", self.logs, files=[f"{k}.log" for k in keys])

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``.lock`` exclusively: two runs of one study folder at once are refused
        (NOTE [Output locks])."""
        with folder_lock("run_study", self.root, "study folder"):
            yield

    def clean_temps(self) -> int:
        """Delete temporary files left by a killed run (call while holding the lock)."""
        n = 0
        for d in (self.root, self.trials, self.tables):
            for p in d.glob(".*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    n += 1
        return n

    def result_path(self, key: str) -> Path:
        """``trials/<key>.json``."""
        return self.trials / f"{key}.json"

    def log_path(self, key: str) -> Path:
        """``logs/<key>.log``."""
        return self.logs / f"{key}.log"

    def read(self, key: str, *, warn: bool = True, required: Iterable[str] = ()
             ) -> dict[str, Any] | None:
        """The stored result of ``key``; None if absent, or ill-formed (with a warning naming it).

        An ill-formed file (:func:`read_trial_file`; ``required``: the metrics an ok result must
        hold) counts as not done: its trial runs again.
        """
        path = self.result_path(key)
        data, why = read_trial_file(path, key, required=required)
        if why is not None and warn:
            warnings.warn(f"corrupt result file {path}: {why}; the trial will be run again",
                          StudyWarning, stacklevel=2)
        return data

    def write(self, result: dict[str, Any]) -> Path:
        """Write one result atomically; its name is its key."""
        text = json.dumps(result, indent=1, sort_keys=False, allow_nan=False) + "\n"
        return write_text_atomic(self.result_path(result["key"]), text)

    def append_log(self, key: str, text: str) -> None:
        """Append ``text`` to the trial's log (NOTE [Run markers]), ending it with a newline."""
        with open(self.log_path(key), "a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") or not text else text + "\n")

    def write_spec(self, spec: dict[str, Any]) -> Path:
        """Write ``spec.json`` atomically: the study as resolved for this run."""
        return write_text_atomic(self.root / "spec.json", json.dumps(spec, indent=1) + "\n")


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"key": result["key"], "study": result.get("study"),
                           "status": result["status"], "error": result.get("error")}
    for k, v in flat_config(result["config"]).items():
        if isinstance(v, dict):
            v = canonical_json(v)
        elif isinstance(v, list):
            v = ",".join(map(str, v))
        row[k] = v
    for k, v in (result.get("metrics") or {}).items():
        row[f"metric.{k}" if k in row else k] = v
    env = result.get("env") or {}
    row["device"] = env.get("device")
    return row


def collect(study_dir: str | Path, keys: Iterable[str] | None = None) -> pd.DataFrame:
    r"""Gather a study folder's results into one table, one row per trial.

    Columns: ``key, study, status, error``, every config field (dicts as canonical JSON, lists
    joined by commas), every metric, and ``device``. ``keys`` restricts it to those trials (in that
    order); corrupt files are skipped with a warning naming them.
    """
    store = ResultStore(study_dir)
    if not store.trials.is_dir():
        raise fail("collect", "a study folder holding trials/ (OUT/<study>)", str(study_dir))
    if keys is None:
        keys = sorted(p.stem for p in store.trials.glob("*.json"))
    rows = [_flat(r) for k in keys if (r := store.read(k)) is not None]
    if not rows:
        return pd.DataFrame(columns=["key", "study", "status", "error"])
    return pd.DataFrame(rows)


def read_spec_file(fn: str, path: str | Path) -> dict[str, Any]:
    """Read and type-check a ``spec.json`` (NOTE [Reading back]); every failure is one line
    ``fn: expected a spec.json ..., got PATH (why)`` naming the file and the field."""
    path = Path(path)
    expected = "a spec.json as 'spectrumkit study' writes it"
    text = read_text_file(fn, path, expected)
    try:
        spec = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise fail(fn, expected, f"{path} (not valid JSON: {e.msg} at line {e.lineno} column "
                   f"{e.colno})") from None
    except (ValueError, RecursionError) as e:
        raise fail(fn, expected, f"{path} (not valid JSON: {type(e).__name__})") from None
    if not isinstance(spec, dict):
        raise fail(fn, expected, f"{path} (not a JSON object but {type(spec).__name__})")
    try:
        SpecFile.model_validate(spec)
    except ValidationError as e:
        raise fail(fn, expected, f"{path} ({first_error(e)})") from None
    return spec


def load_spec(study_dir: str | Path) -> dict[str, Any]:
    """The ``spec.json`` of a study folder, type-checked (:func:`read_spec_file`)."""
    return read_spec_file("load_spec", Path(study_dir) / "spec.json")
