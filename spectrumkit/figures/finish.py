r"""The end of a study run: its figures, paper tables and report page (the caller's step).

:func:`spectrumkit.study.run_study` runs the trials and writes the summaries; the figures stage
is reached from the caller (``spectrumkit study NAME`` calls :func:`finish_run` after every run),
so :mod:`spectrumkit.study` imports nothing of :mod:`spectrumkit.figures` (NOTE [One table
writer] in :mod:`spectrumkit.study.runner`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..study.results import read_results
from ..study.runner import StudyRun
from ..study.store import StudyWarning
from .outputs import toolkit_outputs
from .rendering import finish_report, render

__all__ = ["finish_run"]


def finish_run(run: StudyRun, *, figures: bool = True) -> list[Path]:
    r"""End a run: its figures and paper tables, no stale outputs, ``report.html``; return paths.

    The study's summaries of an earlier spec are removed first, then every declared figure and
    table is drawn from this run's trials (``figures`` and a trial of status ok), what an earlier
    spec left is removed and the report page is written (NOTE [No stale outputs] in
    :mod:`spectrumkit.figures.outputs`, NOTE [Report page] in :mod:`spectrumkit.figures.report`).
    Each removal is announced by a :class:`~spectrumkit.study.StudyWarning`.
    """
    made = {p.resolve() for p in run.paths}
    stale = [p for p in toolkit_outputs(run.dir) if p.name.startswith("summary")
             and p.resolve() not in made]
    for p in stale:
        p.unlink()
    if stale:
        warnings.warn(f"removed {len(stale)} summary file(s) not made from the current spec: "
                      f"{', '.join(p.relative_to(run.dir).as_posix() for p in stale)}",
                      StudyWarning, stacklevel=2)
    if not any(run.statuses.values()):  # no trial has a result: nothing to report on
        return []
    if figures and run.statuses["ok"]:
        return render(run.dir, only=None, formats=("pdf", "png"), report=True)
    why = ("figures not drawn (--no-figures)" if not figures
           else "no figure: no trial of status ok")
    return [finish_report(read_results(run.dir), [], figures={}, tables=[], summaries=False,
                          no_figures=why.capitalize() + ".")]
