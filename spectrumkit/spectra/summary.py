r"""Summaries of singular values: the statistics table, the effective rank, the histogram.

Legend: T = steps, B = batch, S = state size (singular values per matrix), U = selected steps.

NOTE [Spectrum summary]
:func:`spectrum_summary` pools singular values over all leading dimensions for the order
statistics (mean, median, min, max σ, the fraction below ``near_zero``) and for χ_F = mean σ²
(= mean over matrices of ‖J‖_F² / S). The two per-matrix quantities are aggregated over matrices:
``condition`` is the *median* over matrices of κ = σ_max / σ_min (inf where σ_min = 0; the median is
robust to the few near-singular matrices that make the mean meaningless), and
``effective_rank`` is the *mean* over matrices of the effective rank of Roy & Vetterli (2007,
"The effective rank: a measure of effective dimensionality", EUSIPCO): exp(H(p)) with
p_i = σ_i / Σ_j σ_j and H the Shannon entropy (natural log, 0 log 0 = 0). It lies in [1, S] for a
non-zero matrix; we define it as 0 for the zero matrix. Summaries are computed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from ._common import bin_counts, check_bins, check_near_zero, check_sv, effective_ranks, summarize

__all__ = [
    "SUMMARY_COLUMNS",
    "Histogram",
    "Spectrum",
    "effective_rank",
    "histogram",
    "spectrum_summary",
]

#: Columns of :func:`spectrum_summary` and of the per-step table of
#: :func:`~spectrumkit.spectra.spectrum`.
SUMMARY_COLUMNS = ("mean", "median", "min", "max", "frac_near_zero", "chi_F", "condition",
                   "effective_rank")


def effective_rank(sv: torch.Tensor) -> torch.Tensor:
    r"""Effective rank of Roy & Vetterli (2007): :math:`\exp(-\sum_i p_i \log p_i)`,
    :math:`p_i = \sigma_i / \sum_j \sigma_j` (NOTE [Spectrum summary]).

    Args:
        sv: (..., S) singular values of each matrix. Returns (...,) float64; 0 for a zero matrix.

    >>> import torch
    >>> r = effective_rank(torch.tensor([[2.0, 2.0, 2.0], [1.0, 0.0, 0.0]]))
    >>> [round(v, 12) for v in r.tolist()]
    [3.0, 1.0]
    """
    return torch.from_numpy(effective_ranks(check_sv("effective_rank", sv)))


def spectrum_summary(sv: torch.Tensor, near_zero: float = 1e-2) -> dict[str, float]:
    r"""Summary statistics of singular values (NOTE [Spectrum summary]).

    Args:
        sv: (..., S): the singular values of one or many matrices, one matrix per last-axis row
            (e.g. (B, S) for a step, (U, B, S) for several).
        near_zero: threshold for ``frac_near_zero``.

    Returns:
        ``{column: float}`` with the keys :data:`SUMMARY_COLUMNS`: mean, median, min and max σ,
        ``frac_near_zero`` = fraction of σ < near_zero, ``chi_F`` = mean σ² (the Frobenius χ of
        NOTE [χ estimators]), ``condition`` = median over matrices of σ_max/σ_min and
        ``effective_rank`` = mean over matrices of the Roy–Vetterli effective rank.

    >>> import torch
    >>> s = spectrum_summary(torch.tensor([[4.0, 1.0], [2.0, 0.0]]))
    >>> s["mean"], s["chi_F"], s["frac_near_zero"], s["condition"]
    (1.75, 5.25, 0.25, inf)
    """
    fn = "spectrum_summary"
    near_zero = check_near_zero(fn, near_zero)
    return summarize(check_sv(fn, sv), near_zero)


class Histogram(NamedTuple):
    """Histogram counts of singular values.

    Attributes:
        counts: (bins,) int64 counts; bins are half-open [e_i, e_{i+1}) except the last, closed.
        edges: (bins+1,) float64 bin edges.
        outside: number of values outside [edges[0], edges[-1]] (only with an explicit range).
    """

    counts: np.ndarray
    edges: np.ndarray
    outside: int


def histogram(sv: torch.Tensor, bins: int | Sequence[float] = 50,
              value_range: tuple[float, float] | None = None) -> Histogram:
    """Histogram of singular values, pooled over every dimension.

    Args:
        sv: (...,) singular values.
        bins: number of equal bins, or explicit increasing edges.
        value_range: (lo, hi) for int ``bins``; default (0, max σ) (or (0, 1) if every σ is 0).
            Values outside an explicit range are not binned: they are counted in ``outside``.

    >>> import torch
    >>> h = histogram(torch.tensor([0.0, 0.5, 1.0, 2.0]), bins=2)
    >>> h.counts.tolist(), h.edges.tolist(), h.outside
    ([2, 2], [0.0, 1.0, 2.0], 0)
    """
    fn = "histogram"
    check_bins(fn, bins, value_range)
    return Histogram(*bin_counts(check_sv(fn, sv), bins, value_range))


@dataclass(frozen=True)
class Spectrum:
    """Result of :func:`~spectrumkit.spectra.spectrum`.

    Attributes:
        table: one row per step (index ``step``, 1-based) with :data:`SUMMARY_COLUMNS`, each
            summarizing the B matrices of that step.
        pooled: :func:`spectrum_summary` over every selected step and example.
        histogram: the pooled :class:`Histogram`.
        singular_values: (U, B, S) (or (U, B, N) for ``block="hh"``) on the CPU, descending;
            with ``method="lanczos"`` only the top-k Ritz values (U, B, k).
        matrix_free: None for the dense methods; with ``method="lanczos"`` a
            :class:`~spectrumkit.spectra.MatrixFree` (the SLQ density, the extreme singular values
            with their residuals and convergence flags, the options used).
    """

    table: pd.DataFrame
    pooled: dict[str, float]
    histogram: Histogram
    singular_values: torch.Tensor
    matrix_free: Any = None
