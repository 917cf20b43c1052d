"""The statistics and Markdown of a table cell, shared by the paper tables and the summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from tabulate import tabulate

__all__ = ["cell_stats", "github_table"]


def cell_stats(values: Sequence[float]) -> tuple[float, float, int]:
    r"""Mean, sample std (ddof=1) and count n of ``values`` (NOTE [Table cells]).

    mean = (1/n) Σ_i m_i and std = sqrt(Σ_i (m_i − mean)² / (n − 1)); NaN where undefined.

    >>> cell_stats([1.0, 3.0]), cell_stats([2.0])[2]
    ((2.0, 1.4142135623730951, 2), 1)
    """
    a = np.asarray(values, dtype=np.float64)
    n = int(a.size)
    return (float(a.mean()) if n else math.nan, float(a.std(ddof=1)) if n > 1 else math.nan, n)


def github_table(body: list[list[str]], headers: list[str]) -> str:
    """A GitHub Markdown table (tabulate), the cells' text as given."""
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
