r"""Plot functions: each takes an ``ax`` and plain data (arrays, dicts, DataFrames) and draws on it.

None of them reads files or computes a spectrum; :mod:`spectrumkit.figures.rendering` feeds them
from stored results. Call them inside :func:`spectrumkit.figures.style` so they pick up the shipped
style.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from ..errors import fail
from ..study.values import value_text

__all__ = ["BLOCK_HATCH", "anatomy_bars", "connection_map", "ir_ratio_bars", "lyapunov_spectrum",
           "mean_std", "spectrum_steps", "sv_histogram", "training_curves"]


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
    are a filled step outline (``ax.stairs``), so ``artist.get_data()`` gives back exactly the
    counts and edges that were passed. ``annotate_mean`` (σ̄ = mean singular value) draws a dashed
    vertical line at σ̄ and writes ``σ̄ = …`` into the legend label (or next to the line when
    ``label`` is None). ``color`` defaults to the next colour of the Axes' cycle. Returns the
    ``StepPatch``.

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


# --------------------------------------------------------------------------------------------------
# Fig. 1: mask anatomy

#: Hatches for the parameter blocks, so input and recurrent bars differ without colour.
BLOCK_HATCH = {"input": "", "recurrent": "////", "cell": "....", "bias": "xx"}
_BLOCK_ORDER = ("input", "recurrent", "cell", "bias")


def _rows_frame(fn: str, name: str, rows: Any) -> pd.DataFrame:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    missing = [c for c in ("gate", "block", "fraction") if c not in df.columns]
    if missing:
        raise fail(fn, f"{name} rows with columns gate, block, fraction", f"missing {missing}")
    frac = pd.to_numeric(df["fraction"], errors="coerce")
    if frac.isna().any() or ((frac < 0) | (frac > 1)).any():
        raise fail(fn, f"{name} fractions in [0, 1]", df["fraction"].tolist())
    return df.assign(fraction=frac.astype(float))


def anatomy_bars(ax: Axes, anatomy: Mapping[str, Any], *,
                 ir_ratios: Mapping[str, float] | None = None, density: float | None = None,
                 gates: Sequence[str] | None = None) -> list:
    r"""Grouped bars of the kept fraction per gate and block, one group per method (paper Fig. 1).

    ``anatomy`` maps a method label to its anatomy rows (a DataFrame or a list of dicts with columns
    ``gate``, ``block``, ``fraction`` = kept / total of that gate's block). Within a group there is
    one bar per (gate, block): colour = gate, hatch = block (:data:`BLOCK_HATCH`: input plain,
    recurrent hatched). Each bar series is one ``BarContainer`` labelled ``"<gate> <block>"`` whose
    i-th bar belongs to the i-th method. ``ir_ratios`` (method → I/R = kept input / kept recurrent)
    is written above each group; ``density`` draws the uniform-mask reference line (every block
    keeps that fraction under a uniform random mask). Returns the containers.
    """
    fn = "anatomy_bars"
    _check_ax(fn, ax)
    if not isinstance(anatomy, Mapping) or not anatomy:
        raise fail(fn, "anatomy as a non-empty mapping method -> rows", type(anatomy).__name__)
    frames = {str(m): _rows_frame(fn, f"anatomy[{m!r}]", r) for m, r in anatomy.items()}
    methods = list(frames)
    if gates is None:
        gates = list(dict.fromkeys(g for df in frames.values() for g in df["gate"].astype(str)))
    blocks = [b for b in _BLOCK_ORDER if any((df["block"] == b).any() for df in frames.values())]
    series = [(g, b) for g in gates for b in blocks
              if any(((df["gate"] == g) & (df["block"] == b)).any() for df in frames.values())]
    colors = _cycle_colors(ax, len(gates))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(methods), dtype=float)
    containers = []
    for k, (g, b) in enumerate(series):
        heights = []
        for m in methods:
            sel = frames[m][(frames[m]["gate"] == g) & (frames[m]["block"] == b)]
            if len(sel) > 1:
                raise fail(fn, f"one row per (gate, block) for method {m!r}",
                           f"{len(sel)} rows for ({g!r}, {b!r})")
            heights.append(float(sel["fraction"].iloc[0]) if len(sel) else np.nan)
        c = colors[gates.index(g)]
        cont = ax.bar(x - 0.4 + width * (k + 0.5), heights, width, label=f"{g} {b}",
                      color=to_rgba(c, 0.85 if b == "input" else 0.45), edgecolor=c,
                      hatch=BLOCK_HATCH.get(b, ""), linewidth=0.5)
        containers.append(cont)
    if density is not None:
        ax.axhline(float(density), color="0.3", linestyle=":", linewidth=0.8, marker="none",
                   label=f"uniform ({float(density):.3g})")
    values = [np.asarray(c.datavalues, dtype=float) for c in containers]
    top = max([float(np.nanmax(v)) for v in values if np.isfinite(v).any()] + [0.0])
    ax.set_ylim(0, max(top * 1.22, 1e-3))
    if ir_ratios is not None:
        for i, m in enumerate(methods):
            if m in ir_ratios:  # NOTE [Undefined values]: ∞ and — as in the tables
                v = ir_ratios[m]
                ax.annotate(f"I/R {value_text(None if v is None else float(v))}", (x[i], 1.0),
                            xycoords=("data", "axes fraction"), ha="center", va="top",
                            fontsize="small")
    ax.set_xticks(x, methods)
    ax.set_ylabel("kept fraction")
    ax.grid(axis="x", visible=False)
    return containers


def ir_ratio_bars(ax: Axes, ir_ratios: Mapping[str, float], dense_ir_ratio: float | None = None):
    r"""Bars of the input/recurrent ratio I/R = kept input / kept recurrent weights per method.

    ``dense_ir_ratio`` (the unpruned layer's ratio, D/N for the built-ins: 0.07 at D=28, N=400) is
    drawn as a dashed reference line. The y axis is logarithmic when the ratios span more than a
    decade. Returns the ``BarContainer`` (bars in the order of ``ir_ratios``).
    """
    fn = "ir_ratio_bars"
    _check_ax(fn, ax)
    if not isinstance(ir_ratios, Mapping) or not ir_ratios:
        raise fail(fn, "ir_ratios as a non-empty mapping method -> ratio", type(ir_ratios).__name__)
    methods = [str(m) for m in ir_ratios]
    vals = np.array([np.nan if v is None else float(v) for v in ir_ratios.values()], dtype=float)
    if (vals[~np.isnan(vals)] < 0).any():
        raise fail(fn, "non-negative ratios (None or inf where nothing recurrent is kept)",
                   dict(ir_ratios))
    # one colour: the methods are named on the x axis; colour means gate in the anatomy panel
    cont = ax.bar(np.arange(len(methods)), np.where(np.isfinite(vals), vals, np.nan), 0.6,
                  color=to_rgba("0.45", 0.8), edgecolor="0.3", linewidth=0.5)
    pos = np.concatenate([vals[np.isfinite(vals) & (vals > 0)],
                          [dense_ir_ratio] if dense_ir_ratio else []])
    if pos.size and pos.max() / pos.min() > 10:
        ax.set_yscale("log")
    if dense_ir_ratio is not None:
        ax.axhline(float(dense_ir_ratio), color="0.3", linestyle="--", linewidth=0.8, marker="none",
                   label=f"dense ({float(dense_ir_ratio):.3g})")
    if pos.size:  # headroom above the bars for the value labels and the legend
        top = pos.max()
        if ax.get_yscale() == "log":
            ax.set_ylim(pos.min() / 2, top * 6)
        else:
            ax.set_ylim(0, top * 1.35)
    log = ax.get_yscale() == "log"
    for i, v in enumerate(vals):  # value labels; a zero or missing ratio goes at the axis bottom
        text = value_text(float(v))  # NOTE [Undefined values]: ∞ or —, as in the tables
        if np.isfinite(v) and (v > 0 or not log):
            ax.annotate(text, (i, v), xytext=(0, 1), textcoords="offset points", ha="center",
                        va="bottom", fontsize="small")
        else:
            ax.annotate(text, (i, 0.0), xycoords=("data", "axes fraction"), xytext=(0, 1),
                        textcoords="offset points", ha="center", va="bottom", fontsize="small")
    if dense_ir_ratio is not None:
        ax.legend(loc="upper left", fontsize="x-small")
    ax.set_xticks(np.arange(len(methods)), methods)
    ax.set_ylabel("I/R ratio")
    ax.grid(axis="x", visible=False)
    return cont


# --------------------------------------------------------------------------------------------------
# Fig. 3: connection maps

def connection_map(ax: Axes, mask: Any, *, row_blocks: Sequence[tuple[str, int]] | None = None,
                   gates: Sequence[str] | None = None, title: str | None = None):
    r"""Draw a kept/pruned connection map (paper Fig. 3): kept = dark, pruned = white.

    ``mask`` (R, C) bool: rows are presynaptic ([input; hidden], plus ``cell`` rows for the peephole
    LSTM), columns are gates × units in gate order. ``row_blocks`` ``[(name, rows), ...]`` (summing
    to R) draws horizontal separators between the blocks and labels them; ``gates`` (dividing C)
    draws vertical gate boundaries and labels each gate. The image's ``get_array()`` is the mask as
    0/1. Returns the ``AxesImage``.
    """
    fn = "connection_map"
    _check_ax(fn, ax)
    m = np.asarray(mask)
    if m.ndim != 2 or m.size == 0:
        raise fail(fn, "mask as a non-empty 2-D array (R, C)", f"shape {m.shape}")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise fail(fn, "a boolean (0/1) mask", f"values {np.unique(m)[:5].tolist()}")
        m = m.astype(bool)
    R, C = m.shape
    cmap = ListedColormap(["white", "0.1"])
    img = ax.imshow(m.astype(np.uint8), cmap=cmap, vmin=0, vmax=1, interpolation="nearest",
                    aspect="auto", origin="upper")
    ax.grid(False)
    if row_blocks is not None:
        sizes = [int(n) for _, n in row_blocks]
        if sum(sizes) != R:
            raise fail(fn, f"row_blocks summing to the mask's {R} rows", list(row_blocks))
        bounds = np.cumsum([0] + sizes)
        for b in bounds[1:-1]:
            ax.axhline(b - 0.5, color="C1", linewidth=0.8, marker="none")
        ax.set_yticks((bounds[:-1] + bounds[1:]) / 2 - 0.5, [str(n) for n, _ in row_blocks])
        ax.tick_params(axis="y", length=0)
    if gates is not None:
        if C % len(gates):
            raise fail(fn, f"{C} columns divisible by {len(gates)} gates", list(gates))
        w = C // len(gates)
        for k in range(1, len(gates)):
            ax.axvline(k * w - 0.5, color="C0", linewidth=0.8, marker="none")
        ax.set_xticks(np.arange(len(gates)) * w + w / 2 - 0.5, [str(g) for g in gates])
        ax.tick_params(axis="x", length=0)
    if title is not None:
        ax.set_title(title)
    return img


# --------------------------------------------------------------------------------------------------
# Figs. 4-5 and the spectra beyond the paper: lines with a ±std band over seeds

def mean_std(frames: Sequence[Any], x: str, y: str) -> pd.DataFrame:
    r"""Mean and std (ddof=1) of column ``y`` over seeds, aligned on column ``x``.

    ``frames``: one table per seed (DataFrame or dict of equal-length columns). Rows whose ``y`` is
    missing (NaN/None) are dropped per seed, so a seed that stopped early or evaluated less often
    contributes only where it has values. Returns a DataFrame indexed by ``x`` (sorted) with columns
    ``mean``, ``std`` (NaN where n < 2) and ``n``.

    >>> mean_std([{"step": [1, 2], "loss": [1.0, 3.0]}, {"step": [1, 2], "loss": [3.0, 5.0]}],
    ...          "step", "loss")["mean"].tolist()
    [2.0, 4.0]
    """
    fn = "mean_std"
    cols = []
    for i, f in enumerate(frames):
        df = f if isinstance(f, pd.DataFrame) else pd.DataFrame(dict(f))
        if x not in df.columns or y not in df.columns:
            raise fail(fn, f"columns {x!r} and {y!r} in table {i}", sorted(map(str, df.columns)))
        s = pd.Series(pd.to_numeric(df[y], errors="coerce").to_numpy(float),
                      index=pd.to_numeric(df[x], errors="coerce").to_numpy(float), name=i).dropna()
        if s.index.has_duplicates:
            raise fail(fn, f"unique {x!r} values in table {i}", "repeated values")
        cols.append(s)
    if not cols:
        raise fail(fn, "at least one table", "none")
    wide = pd.concat(cols, axis=1).sort_index()
    out = pd.DataFrame({"mean": wide.mean(axis=1), "std": wide.std(axis=1, ddof=1),
                        "n": wide.notna().sum(axis=1)})
    out.index.name = x
    return out[out["n"] > 0]


def _band_lines(ax: Axes, stats: Mapping[str, pd.DataFrame], *, band: bool,
                n_markers: int) -> dict[str, tuple[Any, Any]]:
    out = {}
    for label, st in stats.items():
        xs, mu, sd = st.index.to_numpy(float), st["mean"].to_numpy(float), st["std"].to_numpy(float)
        (line,) = ax.plot(xs, mu, label=str(label), markevery=_markevery(len(xs), n_markers))
        poly = None
        if band and np.isfinite(sd).any():
            sd = np.where(np.isfinite(sd), sd, 0.0)
            poly = ax.fill_between(xs, mu - sd, mu + sd, color=line.get_color(), alpha=0.2,
                                   linewidth=0)
        out[str(label)] = (line, poly)
    return out


def _markevery(n: int, n_markers: int) -> int:
    return max(1, int(np.ceil(n / max(n_markers, 1))))


def training_curves(ax: Axes, histories: Mapping[str, Sequence[Any]], *, y: str = "train_loss",
                    x: str = "step", log: bool = True, band: bool = True, n_markers: int = 10,
                    ylabel: str | None = None) -> dict[str, tuple[Any, Any]]:
    r"""Training curves (paper Figs. 4–5): per method the mean over seeds of ``y`` vs ``x``, ± std.

    ``histories`` maps a method label to its per-seed history tables (DataFrame or dict of
    equal-length columns, e.g. a trial's ``history``). Each line's y-data is exactly
    :func:`mean_std`'s ``mean``; the band is mean ± std (ddof=1) where two or more seeds have the
    point. Lines carry markers (NOTE [Markers]); ``log`` puts y on a log scale (log training loss or
    perplexity). Returns ``{label: (Line2D, band PolyCollection or None)}``.
    """
    fn = "training_curves"
    _check_ax(fn, ax)
    if not isinstance(histories, Mapping) or not histories:
        raise fail(fn, "histories as a non-empty mapping method -> tables",
                   type(histories).__name__)
    stats = {m: mean_std(list(h), x, y) for m, h in histories.items()}
    out = _band_lines(ax, stats, band=band, n_markers=n_markers)
    if log:
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        if hi / lo < 100:  # under two decades: ticks at 1, 2, 5 × 10^k read better than 2 × 10^0
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            if hi / lo < 2:  # a narrow range: a few evenly spaced round values read best
                ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    if x == "step":
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or y.replace("_", " "))
    return out


def lyapunov_spectrum(ax: Axes, exponents: Mapping[str, Any], *, band: bool = True,
                      n_markers: int = 10) -> dict[str, tuple[Any, Any]]:
    r"""Lyapunov spectra: exponent λ_k against index k = 1..K, one line per method.

    ``exponents`` maps a method label to an array (K,) or (seeds, K), sorted descending as stored;
    with several seeds the line is the mean and the band ± std. λ = 0 (the edge of chaos) is drawn
    as a reference. Returns ``{label: (Line2D, band or None)}``.
    """
    fn = "lyapunov_spectrum"
    _check_ax(fn, ax)
    stats = {m: mean_std([{"index": np.arange(1, len(r) + 1), "exponent": r}
                          for r in _seed_rows(fn, m, e)], "index", "exponent")
             for m, e in _nonempty(fn, "exponents", exponents).items()}
    out = _band_lines(ax, stats, band=band, n_markers=n_markers)
    ax.axhline(0.0, color="0.4", linewidth=0.6, linestyle=":", marker="none")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_xlabel("index $k$")
    ax.set_ylabel("Lyapunov exponent $\\lambda_k$")
    return out


def spectrum_steps(ax: Axes, sigma: Mapping[str, Any], *, band: bool = True, n_markers: int = 10,
                   log: bool = False) -> dict[str, tuple[Any, Any]]:
    r"""Mean singular value σ̄_t = mean_i σ_i(J_t) along the sequence, one line per method.

    ``sigma`` maps a method label to per-seed tables with columns ``step`` and ``mean_sigma`` (a
    DataFrame, a dict, or a list of them); the line is the mean over seeds, the band ± std.
    σ̄ = 1 is drawn as a reference when the data reach 0.8 or more.
    Returns ``{label: (Line2D, band or None)}``.
    """
    fn = "spectrum_steps"
    _check_ax(fn, ax)
    stats = {}
    for m, tabs in _nonempty(fn, "sigma", sigma).items():
        tabs = [tabs] if isinstance(tabs, (Mapping, pd.DataFrame)) else list(tabs)
        stats[m] = mean_std(tabs, "step", "mean_sigma")
    out = _band_lines(ax, stats, band=band, n_markers=n_markers)
    if log:
        ax.set_yscale("log")
    top = max(float((st["mean"] + st["std"].fillna(0.0)).max()) for st in stats.values())
    if top >= 0.8:  # the σ̄ = 1 reference, only when the data come near it
        ax.axhline(1.0, color="0.4", linewidth=0.6, linestyle=":", marker="none")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_xlabel("step $t$")
    ax.set_ylabel("mean singular value $\\bar\\sigma_t$")
    return out


def _nonempty(fn: str, name: str, d: Any) -> Mapping[str, Any]:
    if not isinstance(d, Mapping) or not d:
        raise fail(fn, f"{name} as a non-empty mapping method -> data", type(d).__name__)
    return d


def _seed_rows(fn: str, label: Any, e: Any) -> list[np.ndarray]:
    a = np.asarray(e, dtype=float)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] == 0:
        raise fail(fn, f"exponents[{label!r}] shaped (K,) or (seeds, K)", f"shape {a.shape}")
    return list(a)


def _cycle_colors(ax: Axes, n: int) -> list:
    """The first ``n`` colours of the active prop cycle (the Axes' own cycle is left untouched)."""
    import matplotlib as mpl

    colors = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    return [colors[i % len(colors)] for i in range(n)]
