r"""Singular-value spectra of the per-step Jacobians, their summaries, χ and Lyapunov exponents.

The modules, by concept (arrows point to what a module imports):

* :mod:`~spectrumkit.spectra.summary`: the statistics table, effective rank, histogram, and the
  :class:`Spectrum` result (NOTE [Spectrum summary]).
* :mod:`~spectrumkit.spectra.dense`: singular values of formed Jacobians and the streamed
  :func:`spectrum` (NOTE [Spectra one step at a time]) → summary, slq.
* :mod:`~spectrumkit.spectra.krylov`: the Golub–Kahan–Lanczos kernel on any ``(matvec, rmatvec)``
  pair (NOTE [Golub–Kahan–Lanczos]).
* :mod:`~spectrumkit.spectra.extremes` and :mod:`~spectrumkit.spectra.slq`: the matrix-free path,
  extreme singular values and the SLQ density (NOTE [SLQ density]) → krylov, summary.
* :mod:`~spectrumkit.spectra.chi_estimators`: the χ estimators (NOTE [χ estimators]).
* :mod:`~spectrumkit.spectra.lyapunov`: finite-time Lyapunov exponents.

``_common`` (the shared checks and array cores) and ``_matfree`` (the Jacobians as operators) are
private.
"""

from .chi_estimators import CHI_ESTIMATORS, chi, chi_step
from .dense import reference_singular_values, singular_values, spectrum
from .extremes import ExtremeSingularValues, extreme_singular_values
from .krylov import Bidiagonal, RitzValues, golub_kahan_lanczos, ritz_values
from .lyapunov import lyapunov_exponents
from .slq import LanczosOptions, MatrixFree, SpectralDensity, lanczos_spectrum
from .summary import (
    SUMMARY_COLUMNS,
    Histogram,
    Spectrum,
    effective_rank,
    histogram,
    spectrum_summary,
)

__all__ = [
    "CHI_ESTIMATORS",
    "SUMMARY_COLUMNS",
    "Bidiagonal",
    "ExtremeSingularValues",
    "Histogram",
    "LanczosOptions",
    "MatrixFree",
    "RitzValues",
    "SpectralDensity",
    "Spectrum",
    "chi",
    "chi_step",
    "effective_rank",
    "extreme_singular_values",
    "golub_kahan_lanczos",
    "histogram",
    "lanczos_spectrum",
    "lyapunov_exponents",
    "reference_singular_values",
    "ritz_values",
    "singular_values",
    "spectrum",
    "spectrum_summary",
]
