r"""The checks and array cores that the summaries, the dense path and the matrix-free path share.

Legend: S = singular values per matrix; ``a`` is a float64 array (..., S) of singular values.
Trusted cores (``summarize``, ``bin_counts``, ``effective_ranks``) take checked input; the
``check_*`` functions are the checks (messages ``fn: expected X, got Y``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import check_float_tensor, check_positive_int, fail

#: Entries per block of the effective rank's temporaries (2 MiB of float64 each): the pooled
#: summary of a long spectrum would otherwise hold several float64 copies of every σ at once.
_RANK_BLOCK = 2**18


def check_sv(fn: str, sv: torch.Tensor) -> np.ndarray:
    """Singular values (..., S), at least one, none negative; returned as a float64 array."""
    check_float_tensor(fn, "sv", sv)
    if sv.dim() < 1 or sv.numel() == 0:
        raise fail(fn, "sv of shape (..., S) with at least one value", f"shape {tuple(sv.shape)}")
    a = sv.detach().cpu().to(torch.float64).numpy()
    if (a < 0).any():
        raise fail(fn, "sv >= 0 (singular values)", f"{int((a < 0).sum())} negative entries")
    return a


def check_near_zero(fn: str, near_zero: float) -> float:
    """The ``frac_near_zero`` threshold: a finite number > 0."""
    ok = isinstance(near_zero, (int, float)) and not isinstance(near_zero, bool)
    if not ok or not math.isfinite(near_zero) or near_zero <= 0:
        raise fail(fn, "near_zero to be a finite number > 0", repr(near_zero))
    return float(near_zero)


def check_bins(fn: str, bins: int | Sequence[float], value_range: tuple[float, float] | None
               ) -> None:
    """A positive int of bins (with an optional finite (lo, hi)), or finite increasing edges."""
    if isinstance(bins, int) and not isinstance(bins, bool):
        check_positive_int(fn, "bins", bins)
    else:
        try:
            e = np.asarray(bins, dtype=np.float64)
        except (TypeError, ValueError):
            raise fail(fn, "bins a positive int or increasing edges", repr(bins)) from None
        if e.ndim != 1 or e.size < 2 or not np.isfinite(e).all() or not (np.diff(e) > 0).all():
            raise fail(fn, "bins a positive int or at least two finite increasing edges",
                       repr(bins))
        if value_range is not None:
            raise fail(fn, "value_range only together with an int number of bins",
                       f"edges and value_range={value_range!r}")
    if value_range is not None:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise fail(fn, "value_range a pair (lo, hi)", repr(value_range)) from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise fail(fn, "value_range (lo, hi) finite with lo < hi", repr(value_range))


def bin_edges(bins: int | Sequence[float], value_range: tuple[float, float] | None,
              top: float) -> np.ndarray:
    """The histogram's edges: ``bins`` equal bins over ``value_range`` (default (0, top), or
    (0, 1) when top is 0), or the explicit edges."""
    if isinstance(bins, int):
        lo, hi = value_range if value_range is not None else (0.0, top or 1.0)
        return np.linspace(float(lo), float(hi), bins + 1)
    return np.asarray(bins, dtype=np.float64)


def bin_counts(a: np.ndarray, bins: int | Sequence[float], value_range: tuple[float, float] | None
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """Trusted core of :func:`~spectrumkit.spectra.histogram`: (counts int64, edges, outside)."""
    a = a.ravel()
    edges = bin_edges(bins, value_range, float(a.max()))
    counts, edges = np.histogram(a, bins=edges)
    outside = int(((a < edges[0]) | (a > edges[-1])).sum())
    return counts.astype(np.int64), edges, outside


def _effective_rank_rows(m: np.ndarray) -> np.ndarray:
    total = m.sum(-1, keepdims=True)
    p = np.divide(m, total, out=np.zeros_like(m), where=total > 0)
    h = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)
    return np.where(total[..., 0] > 0, np.exp(h), 0.0)


def effective_ranks(a: np.ndarray) -> np.ndarray:
    """(..., S) -> (...): the Roy–Vetterli effective rank of each row (NOTE [Spectrum summary]),
    row by row in blocks of about ``_RANK_BLOCK`` entries."""
    m = a.reshape(-1, a.shape[-1])
    rows = max(1, _RANK_BLOCK // m.shape[-1])
    out = np.concatenate([_effective_rank_rows(m[i: i + rows])
                          for i in range(0, m.shape[0], rows)])
    return out.reshape(a.shape[:-1])


def summarize(a: np.ndarray, near_zero: float) -> dict[str, float]:
    """Trusted core of :func:`~spectrumkit.spectra.spectrum_summary`: a (..., S) float64 array."""
    m = a.reshape(-1, a.shape[-1])
    hi, lo = m.max(-1), m.min(-1)
    kappa = np.divide(hi, lo, out=np.full_like(hi, np.inf), where=lo > 0)
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "min": float(a.min()),
        "max": float(a.max()),
        "frac_near_zero": float((a < near_zero).mean()),
        "chi_F": float((a * a).mean()),
        "condition": float(np.median(kappa)),
        "effective_rank": float(effective_ranks(m).mean()),
    }
