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

from .config import SCHEMA_VERSION, TrialConfig, trial_key
from .executors import EXECUTORS, TrialContext
from .runner import RunOptions, StudyRun, run_study
from .spec import FIGURES, Study, list_studies, load_study
from .store import StudyWarning, collect, load_spec

__all__ = ["SCHEMA_VERSION", "TrialConfig", "trial_key", "EXECUTORS", "TrialContext",
           "RunOptions", "StudyRun", "run_study", "FIGURES", "Study", "list_studies",
           "load_study", "StudyWarning", "collect", "load_spec"]
