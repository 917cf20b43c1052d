r"""Plot functions: each takes an ``ax`` and plain data (arrays, dicts, DataFrames) and draws on it.

None of them reads files or computes a spectrum; :mod:`spectrumkit.figures.render` feeds them from
stored results. Call them inside :func:`spectrumkit.figures.style` so they pick up the shipped style.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.transforms import blended_transform_factory

from ..errors import fail

__all__ = ["sv_histogram"]


def _check_ax(fn: str, ax: Any) -> Axes:
    if not isinstance(ax, Axes):
        raise fail(fn, "ax to be a matplotlib Axes", type(ax).__name__)
    return ax


def _as_1d(fn: str, name: str, x: Any, *, min_len: int = 1) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(fn, f"{name} to be a 1-D sequence of numbers", type(x).__name__) from None
    if a.ndim != 1 or a.size < min_len:
        raise fail(fn, f"{name} to be 1-D with at least {min_len} entries", f"shape {a.shape}")
    if not np.isfinite(a).all():
        raise fail(fn, f"{name} to be finite", f"{int((~np.isfinite(a)).sum())} NaN/Inf entries")
    return a


def sv_histogram(ax: Axes, counts: Any, edges: Any, *, label: str | None = None,
                 annotate_mean: float | None = None, color: Any = None):
    r"""Draw a histogram of singular values from precomputed ``counts`` over bins ``edges``.

    Shapes: ``counts`` (K,), ``edges`` (K+1,) strictly increasing; counts are non-negative. The bars
    are a filled step outline (``ax.stairs``), so ``artist.get_data()`` gives back exactly the counts
    and edges that were passed. ``annotate_mean`` (σ̄ = mean singular value) draws a dashed vertical
    line at σ̄ and writes ``σ̄ = …`` into the legend label (or next to the line when ``label`` is None).
    ``color`` defaults to the next colour of the Axes' cycle. Returns the ``StepPatch``.

    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> patch = sv_histogram(ax, [1, 3, 2], [0.0, 0.5, 1.0, 1.5], annotate_mean=0.7)
    >>> patch.get_data().values.sum()
    np.float64(6.0)
    """
    fn = "sv_histogram"
    _check_ax(fn, ax)
    counts = _as_1d(fn, "counts", counts)
    edges = _as_1d(fn, "edges", edges, min_len=2)
    if edges.size != counts.size + 1:
        raise fail(fn, f"len(edges) == len(counts) + 1 = {counts.size + 1}", len(edges))
    if (np.diff(edges) <= 0).any():
        raise fail(fn, "edges strictly increasing", edges.tolist())
    if (counts < 0).any():
        raise fail(fn, "non-negative counts", counts.tolist())
    if annotate_mean is not None:
        annotate_mean = float(annotate_mean)
        if not np.isfinite(annotate_mean):
            raise fail(fn, "annotate_mean to be a finite number", annotate_mean)
    full_label = label
    if label is not None and annotate_mean is not None:
        full_label = f"{label} ($\\bar\\sigma$ = {annotate_mean:.3g})"
    patch = ax.stairs(counts, edges, fill=True, label=full_label,
                      **({} if color is None else {"color": color}))
    c = to_rgba(patch.get_facecolor(), 1.0)
    patch.set_facecolor(to_rgba(c, 0.35))
    patch.set_edgecolor(c)
    patch.set_linewidth(0.8)
    if annotate_mean is not None:
        ax.axvline(annotate_mean, color=c, linestyle="--", linewidth=0.8, marker="none")
        if label is None:
            ax.text(annotate_mean, 0.97, f" $\\bar\\sigma$ = {annotate_mean:.3g}", color=c,
                    ha="left", va="top", fontsize="small",
                    transform=blended_transform_factory(ax.transData, ax.transAxes))
    ax.set_xlabel("singular value $\\sigma$")
    ax.set_ylabel("count")
    return patch
