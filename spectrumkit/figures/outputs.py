r"""The files a study's report is made of, and the removal of those an earlier run left behind.

NOTE [No stale outputs]
Every table and figure a run lists is made in that run, from the trials of the spec that run
wrote. A folder ``OUT/<study>`` may still hold outputs of an earlier spec: a figure the study no
longer declares, ``paper-<x>.*`` of a table that is gone, a format not asked for this time. After
writing, the run removes what it did not make among the files the toolkit writes (and only those:
regular files whose names follow the patterns below, directly inside ``figures/`` and ``tables/``
of the study folder, and ``report.html``); links, folders and any other file are left alone. The
run lists what it removed. The study's own summaries (``tables/summary*``) belong to the study run:
``spectrumkit figures`` neither rewrites nor removes them (they always match ``spec.json``, which
only a study run writes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["REPORT_PAGE", "remove_stale", "toolkit_outputs"]

#: The report page of a study, ``OUT/<study>/report.html``.
REPORT_PAGE = "report.html"

_FIGURE_FILE = re.compile(r"[a-z_]+\.(pdf|png|svg)")
_PAPER_FILE = re.compile(r"paper(-[a-z0-9-]+)?\.(md|tex|csv)")
_SUMMARY_FILE = re.compile(r"summary(-[A-Za-z0-9_.-]+?)?(_long\.csv|\.md|\.tex|\.csv)")


def _regular(p: Path) -> bool:
    return p.is_file() and not p.is_symlink()


def toolkit_outputs(study_dir: str | Path, *, summaries: bool = True) -> list[Path]:
    """The report files of the toolkit's naming in ``study_dir`` (NOTE [No stale outputs]).

    ``summaries``: include the study run's ``tables/summary*`` files.
    """
    root = Path(study_dir)
    out: list[Path] = []
    figs, tabs = root / "figures", root / "tables"
    if figs.is_dir() and not figs.is_symlink():
        out += [p for p in figs.iterdir() if _FIGURE_FILE.fullmatch(p.name) and _regular(p)]
    if tabs.is_dir() and not tabs.is_symlink():
        for p in tabs.iterdir():
            ours = _PAPER_FILE.fullmatch(p.name) or (summaries and _SUMMARY_FILE.fullmatch(p.name))
            if ours and _regular(p):
                out.append(p)
    page = root / REPORT_PAGE
    if _regular(page):
        out.append(page)
    return sorted(out)


def remove_stale(study_dir: str | Path, made: Iterable[str | Path], *, summaries: bool = True
                 ) -> list[Path]:
    r"""Remove the toolkit's report files in ``study_dir`` that this run did not make.

    ``made``: the paths written in this run. Returns the removed paths (NOTE [No stale outputs]).
    """
    keep = {Path(p).resolve() for p in made}
    removed = []
    for p in toolkit_outputs(study_dir, summaries=summaries):
        if p.resolve() not in keep:
            p.unlink()
            removed.append(p)
    return removed
