r"""Studies: a TOML spec → validated trial configs → an executor → a result store → a table.

``spectrumkit study NAME`` runs one; :func:`run_study` is the same from Python. The pieces:

- :mod:`~spectrumkit.study.config`: :class:`TrialConfig` and :func:`trial_key`
  (NOTE [What the key covers], NOTE [Canonical configs]);
- :mod:`~spectrumkit.study.spec`: study TOML files and presets, :func:`load_study`;
- :mod:`~spectrumkit.study.store`: the results folder, atomic writes, :func:`collect`
  (NOTE [Atomic results]);
- :mod:`~spectrumkit.study.executors`: ``local``, ``process`` and ``ray`` (NOTE [Threads per
  worker], NOTE [Run markers]);
- :mod:`~spectrumkit.study.trial`: the built-in trial, data → model → scores → mask → train;
- :mod:`~spectrumkit.study.runner`: :func:`run_study` (NOTE [Resume]).

The result format is the contract with :mod:`spectrumkit.figures` (docs/results-schema.md), whose
:mod:`~spectrumkit.study.results` reads a results folder back (:func:`read_results`), and
:mod:`~spectrumkit.study.tables` and :mod:`~spectrumkit.study.summary` write every table.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: ``{public name: the module of this package that defines it}``.
_EXPORTS: dict[str, str] = {
    "SCHEMA_VERSION": "config", "TrialConfig": "config", "trial_key": "config",
    "EXECUTORS": "executors", "TrialContext": "executors",
    "RunOptions": "runner", "StudyRun": "runner", "run_study": "runner",
    "FIGURES": "spec", "Study": "spec", "list_studies": "spec", "load_study": "spec",
    "StudyWarning": "store", "collect": "store", "load_spec": "store",
}

__all__ = ["SCHEMA_VERSION", "TrialConfig", "trial_key", "EXECUTORS", "TrialContext",
           "RunOptions", "StudyRun", "run_study", "FIGURES", "Study", "list_studies",
           "load_study", "StudyWarning", "collect", "load_spec"]

if TYPE_CHECKING:  # the same names, for type checkers and documentation tools
    from .config import SCHEMA_VERSION, TrialConfig, trial_key
    from .executors import EXECUTORS, TrialContext
    from .runner import RunOptions, StudyRun, run_study
    from .spec import FIGURES, Study, list_studies, load_study
    from .store import StudyWarning, collect, load_spec


def __getattr__(name: str) -> object:
    """Import a public name from its module on first use (NOTE [A lazy public face])."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
