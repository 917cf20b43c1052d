r"""Layout functions shared by the figures: facets that wrap, titles that fit, one legend.

NOTE [Readable figures]
A figure is read at a glance: facets wrap at :data:`MAX_COLS` columns; a panel title is wrapped to
the width of its column; one colour means one thing in a figure (a condition in the line figures,
a phase in the histograms, a gate in the anatomy; the I/R bars are one colour); a band or error bar
says in the legend what it is (± 1 std over n seeds); histogram ranges follow the occupied bins.
``tests/test_figure_layout.py`` draws every figure of every shipped study and checks that no text
overlaps another or leaves the figure.
"""

from __future__ import annotations

import textwrap
from typing import Any

from ._style import DOUBLE_COLUMN

__all__ = ["MAX_COLS", "band_handle", "shared_legend", "title_width", "wrap_title"]


#: At most this many facets side by side; more wrap onto further rows (NOTE [Readable figures]).
MAX_COLS = 4


def title_width(ncols: int) -> int:
    """Characters of a panel title that fit one line at the figure's width and font."""
    return max(14, int(DOUBLE_COLUMN / max(ncols, 1) * 72 / 5.4))  # ~0.6 em per character


def wrap_title(text: str, ncols: int) -> str:
    return textwrap.fill(text, title_width(ncols), break_long_words=False) if text else text


def band_handle(n_seeds: list[int]):
    r"""A legend entry saying what a band is (NOTE [Readable figures])."""
    from matplotlib.patches import Patch

    lo, hi = min(n_seeds, default=0), max(n_seeds, default=0)
    n = f"{lo}" if lo == hi else f"{lo}–{hi}"
    if hi < 2:
        return Patch(facecolor="none", edgecolor="none", label=f"n = {n} seed: no band")
    return Patch(facecolor="0.5", alpha=0.25, edgecolor="none",
                 label=f"band: ± 1 std over n = {n} seeds")


def shared_legend(fig, axes: list, n_seeds: list[int]) -> None:
    """One legend under the panels: each line once, and what the bands are."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if not lab.startswith("_"):
                seen.setdefault(lab, h)
    band = band_handle(n_seeds)
    fig.legend([*seen.values(), band], [*seen, band.get_label()], loc="outside lower center",
               ncols=min(len(seen) + 1, 4), fontsize="x-small")
