r"""The declared figures of a study: the plain data each is drawn from, and the builder that draws
it from stored results (NOTE [What each figure pools] in :mod:`spectrumkit.figures.rendering`).
"""


from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba

from ..errors import fail
from ..study.results import StudyResults, read_results
from ..study.values import metric_value, split_values
from ._layout import MAX_COLS, shared_legend, wrap_title
from ._style import DOUBLE_COLUMN, SINGLE_COLUMN, new_figure
from .plots import (
    anatomy_bars,
    connection_map,
    ir_ratio_bars,
    lyapunov_spectrum,
    spectrum_steps,
    sv_histogram,
    training_curves,
)

__all__ = ["FIGURES", "TABLE_NAME", "check_figure_name", "figure_data", "render_figure"]

#: The name under which ``render(only=...)`` selects the study's tables.
TABLE_NAME = "table"

def _need(res: StudyResults, figure: str, artifact: str | None) -> dict[tuple, list[dict]]:
    groups = res.conditions(need=artifact)
    if not groups:
        what = f"artifacts.{artifact}" if artifact else "a trial of status ok"
        n_ok = sum(t["status"] == "ok" for t in res.trials)
        raise fail("render", f"{what} in the trials of study {res.name!r} for figure {figure!r} "
                   f"(the trial config's 'record' list)",
                   f"none in {len(res.trials)} trials ({n_ok} ok)")
    return groups


def _panels(n: int, *, max_cols: int = 3, panel_h: float = 1.9, width: float | None = None,
            sharex: bool = False, sharey: bool = False):
    ncols = 2 if n == 4 and max_cols >= 2 else min(n, max_cols)  # 2 × 2 rather than 3 + 1
    nrows = -(-n // ncols)
    w = width or (SINGLE_COLUMN if ncols == 1 else DOUBLE_COLUMN)
    fig, axes = new_figure(w, panel_h * nrows + 0.3, nrows=nrows, ncols=ncols, squeeze=False,
                           sharex=sharex, sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# --------------------------------------------------------------------------------------------------
# data extraction: plain data for the plot functions (exposed for tests and custom figures)

def _anatomy_data(res: StudyResults) -> dict[str, Any]:
    groups = _need(res, "anatomy", "anatomy")
    rows, ir = {}, {}
    dense: list[Any] = []
    density: list[Any] = []
    for cond, trials in groups.items():
        label = res.label(cond)
        frames = [pd.DataFrame(t["artifacts"]["anatomy"]["rows"]) for t in trials]
        cat = pd.concat(frames, ignore_index=True)
        by_block = cat.groupby(["gate", "block"], sort=False, as_index=False)
        rows[label] = by_block["fraction"].mean()
        # NOTE [Undefined values]: the mean of the finite ratios; ∞ when all are ∞, else NaN
        finite, n_inf, _ = split_values(metric_value(
            {"metrics": {"ir_ratio": t["artifacts"]["anatomy"]["summary"].get("ir_ratio")},
             "artifacts": t["artifacts"]}, "ir_ratio") for t in trials)
        ir[label] = (float(np.mean(finite)) if finite else math.inf if n_inf else math.nan)
        dense += [t["artifacts"]["anatomy"]["summary"].get("dense_ir_ratio") for t in trials]
        density += [(t.get("metrics") or {}).get("density") for t in trials]
    first = next(iter(groups.values()))[0]["artifacts"]
    gates = list(first.get("connection_map", {}).get("gates", [])) or None
    return {"rows": rows, "ir_ratios": ir, "dense_ir_ratio": _mean_present(dense),
            "density": _mean_present(density), "gates": gates}


def _mean_present(values: list[Any]) -> float | None:
    """The mean of the values that are not None, or None when there are none."""
    present = [float(v) for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _sv_hist_data(res: StudyResults) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cond, trials in _need(res, "sv_hist", "sv_hist").items():
        per = {}
        for phase in ("init", "trained"):
            hs = [t["artifacts"]["sv_hist"][phase] for t in trials
                  if phase in t["artifacts"]["sv_hist"]]
            if not hs:
                continue
            edges = np.asarray(hs[0]["edges"], float)
            same = [h for h in hs if np.array_equal(np.asarray(h["edges"], float), edges)]
            counts = np.sum([np.asarray(h["counts"], float) for h in same], axis=0)
            n = sum(int(h["n"]) for h in same)
            mean = sum(float(h["mean"]) * int(h["n"]) for h in same) / max(n, 1)
            per[phase] = {"counts": counts, "edges": edges, "mean": mean, "n": n,
                          "seeds": len(same), "of": len(hs)}
        out[res.label(cond)] = per
    return out


def _connection_map_data(res: StudyResults) -> dict[str, dict[str, Any]]:
    from ..study.results import decode_connection_map

    out = {}
    for cond, trials in _need(res, "connection_maps", "connection_map").items():
        t = trials[0]
        art = t["artifacts"]["connection_map"]
        row_blocks = [(str(n), int(k)) for n, k in art.get("row_blocks", [])]
        out[res.label(cond)] = {"mask": decode_connection_map(art),
                                "row_blocks": row_blocks or None,
                                "gates": list(art.get("gates", [])) or None,
                                "seed": t["config"].get("seed")}
    return out


def _facet_axis(res: StudyResults) -> str | None:
    """The grid axis to split line figures into panels by (NOTE [What each figure pools])."""
    varying = res.varying_axes
    if len(varying) < 2:
        return None
    for t in res.tables:
        rows = t.get("rows")
        if isinstance(rows, str) and rows in varying and rows != "method":
            return rows
    return next((a for a in varying if a != "method"), None)


def _curves_data(res: StudyResults) -> dict[str, Any]:
    groups = _need(res, "curves", None)
    facet = _facet_axis(res)
    line_axes = [a for a in res.varying_axes if a != facet] or None
    histories = [pd.DataFrame(t.get("history") or {}) for ts in groups.values() for t in ts]
    metrics = ["train_loss"]
    for val in ("val_ppl", "val_error_pct"):
        if any(val in h.columns and pd.to_numeric(h[val], errors="coerce").notna().sum() >= 2
               for h in histories):
            metrics.append(val)
            break
    fi: int | None = None
    panel_keys = [""]
    if facet is not None:
        fi = res.axes.index(facet)
        panel_keys = list(dict.fromkeys(res.label(c, [facet]) for c in groups
                                        if c[fi] is not None))
        if not panel_keys:  # every method ignores the facet's setting: one panel
            fi, panel_keys = None, [""]
    panels: dict[str, dict[str, list[pd.DataFrame]]] = {k: {} for k in panel_keys}
    for cond, trials in groups.items():
        # a method that ignores the facet's setting (None) is drawn in every panel
        targets = (panel_keys if fi is None or facet is None or cond[fi] is None
                   else [res.label(cond, [facet])])
        line = res.label(cond, line_axes) if line_axes is not None else res.label(cond)
        hs = [pd.DataFrame(t.get("history") or {}) for t in trials]
        hs = [h for h in hs if len(h) and {"step", "train_loss"} <= set(h.columns)]
        if hs:
            for k in targets:
                panels[k][line] = hs
    panels = {k: v for k, v in panels.items() if v}
    if not panels:
        raise fail("render", f"histories with 'step' and 'train_loss' in the ok trials of study "
                   f"{res.name!r} for figure 'curves'", "none")
    return {"panels": panels, "metrics": metrics}


def _phase_data(res: StudyResults, figure: str, artifact: str) -> dict[str, dict[str, list]]:
    """{phase: {label: [per-seed data]}} for ``lyapunov`` and ``spectrum_steps``."""
    out: dict[str, dict[str, list]] = {}
    for cond, trials in _need(res, figure, artifact).items():
        for phase in ("init", "trained"):
            data = [t["artifacts"][artifact][phase] for t in trials
                    if t["artifacts"][artifact].get(phase) is not None]
            if data:
                out.setdefault(phase, {})[res.label(cond)] = data
    return out


def figure_data(results: StudyResults | str | Path, name: str) -> dict[str, Any]:
    r"""The plain data a figure of the study is drawn from (what :func:`render` gives the plots)."""
    res = results if isinstance(results, StudyResults) else read_results(results, fn="figure_data")
    check_figure_name("figure_data", res, name, tables=False)
    return _DATA[name](res)


# --------------------------------------------------------------------------------------------------
# figure builders: StudyResults -> Figure (inside style())

def _fig_anatomy(res: StudyResults):
    d = _anatomy_data(res)
    many = len(d["rows"]) > 12  # e.g. a row study: 14 rows x 2 methods
    if 4 < len(d["rows"]) <= 12:  # several groups: wrap the labels so neighbours do not overlap
        wrap = {k: textwrap.fill(k, 11) for k in d["rows"]}
        d["rows"] = {wrap[k]: v for k, v in d["rows"].items()}
        d["ir_ratios"] = {wrap[k]: v for k, v in d["ir_ratios"].items()}
    if len(d["rows"]) <= 4:  # side by side
        fig, (ax, ax2) = new_figure(DOUBLE_COLUMN, 2.5, ncols=2, width_ratios=[3, 1.2])
    else:  # many methods: stacked, full width each (taller when the labels stand upright)
        fig, (ax, ax2) = new_figure(DOUBLE_COLUMN, 8.0 if many else 4.6, nrows=2,
                                    height_ratios=[1.5, 1])
    # with many groups the I/R values are written only once, above the bars of the lower panel
    anatomy_bars(ax, d["rows"], ir_ratios=None if many else d["ir_ratios"], density=d["density"],
                 gates=d["gates"])
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
               fontsize="x-small")
    ax.set_title("kept fraction per gate (plain: input, hatched: recurrent)")
    ir_ratio_bars(ax2, d["ir_ratios"], d["dense_ir_ratio"])
    ax2.set_title("input / recurrent kept")
    if len(d["rows"]) <= 4:
        ax2.tick_params(axis="x", labelrotation=30)
    if many:  # one label per bar group, upright
        for a in (ax, ax2):
            a.tick_params(axis="x", labelrotation=90, labelsize="x-small")
    return fig


def _occupied_range(d: dict[str, dict[str, dict[str, Any]]]) -> tuple[float, float]:
    """The σ range holding every non-empty bin of every panel, padded by 3 % on each side."""
    los, his = [], []
    for per in d.values():
        for h in per.values():
            nz = np.flatnonzero(np.asarray(h["counts"]) > 0)
            if nz.size:
                los.append(float(h["edges"][nz[0]]))
                his.append(float(h["edges"][nz[-1] + 1]))
    if not los:  # every histogram empty: the binned range
        los = [float(h["edges"][0]) for per in d.values() for h in per.values()]
        his = [float(h["edges"][-1]) for per in d.values() for h in per.values()]
    lo, hi = min(los), max(his)
    pad = 0.03 * (hi - lo)
    return lo - pad, hi + pad


#: One colour per phase in every panel of a figure (NOTE [Readable figures]).
_PHASE_COLORS = {"init": "C0", "trained": "C1"}


def _fig_sv_hist(res: StudyResults):
    """NOTE [Readable figures]: the x range follows the data, colour = phase, n in the legend."""
    d = _sv_hist_data(res)
    fig, axes = _panels(len(d), max_cols=3)
    ncols = min(len(d), 3) if len(d) != 4 else 2
    lo, hi = _occupied_range(d)
    for ax, (label, per) in zip(axes, d.items()):
        for phase, h in per.items():
            note = "" if h["seeds"] == h["of"] else f", {h['seeds']}/{h['of']} seeds"
            sv_histogram(ax, h["counts"], h["edges"], label=f"{phase}{note}",
                         annotate_mean=h["mean"], color=_PHASE_COLORS.get(phase))
        n = max((h["n"] for h in per.values()), default=0)
        top = max((float(np.max(h["counts"])) for h in per.values()), default=1.0)
        ax.set_ylim(0, 1.45 * top)  # headroom for the legend
        ax.set_xlim(lo, hi)  # one σ scale for every panel, over the occupied bins
        ax.set_title(wrap_title(label, ncols), fontsize="small")
        ax.legend(loc="upper right", fontsize="x-small", title=f"n = {n:,} per phase",
                  title_fontsize="x-small")
    return fig


def _fig_connection_maps(res: StudyResults):
    d = _connection_map_data(res)
    fig, axes = _panels(len(d), panel_h=2.1)
    for ax, (label, m) in zip(axes, d.items()):
        connection_map(ax, m["mask"], row_blocks=m["row_blocks"], gates=m["gates"],
                       title=f"{label} (seed {m['seed']})")
    return fig


_METRIC_LABELS = {"train_loss": "training loss", "val_ppl": "validation perplexity",
                  "val_error_pct": "validation error (%)"}


def _fig_curves(res: StudyResults):
    """NOTE [Readable figures]: facets wrap at :data:`MAX_COLS`; one y scale per metric."""
    from matplotlib.ticker import MaxNLocator

    d = _curves_data(res)
    panels, metrics = d["panels"], d["metrics"]
    n = len(panels)
    ncols = min(n, MAX_COLS)
    prow = -(-n // ncols)  # rows of facets
    w = SINGLE_COLUMN if ncols == 1 and len(metrics) == 1 else DOUBLE_COLUMN
    nr = prow * len(metrics)
    fig, axes = new_figure(w, 1.55 * nr + 0.8, nrows=nr, ncols=ncols, squeeze=False)
    seeds: list[int] = []
    used = []
    for j, (title, lines) in enumerate(panels.items()):
        pr, col = divmod(j, ncols)
        for i, metric in enumerate(metrics):
            ax = axes[pr * len(metrics) + i, col]
            used.append((ax, metric, col))
            use = {k: [h for h in hs if metric in h.columns] for k, hs in lines.items()}
            use = {k: hs for k, hs in use.items() if hs}
            seeds += [len(hs) for hs in use.values()]
            if use:
                training_curves(ax, use, y=metric, ylabel=_METRIC_LABELS.get(metric, metric),
                                log=metric != "val_error_pct")
            if i == 0 and title:
                ax.set_title(wrap_title(title, ncols), fontsize="small")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
            if i < len(metrics) - 1 or pr < prow - 1 and j + ncols < n:
                ax.set_xlabel("")
            if col > 0:
                ax.set_ylabel("")
    for r in range(nr):  # facets beyond the last one
        for c in range(ncols):
            ax = axes[r, c]
            if not any(ax is u[0] for u in used):
                ax.set_visible(False)
    for metric in metrics:  # one y scale per metric, labelled in the first column only
        axs = [(ax, c) for ax, m, c in used if m == metric and ax.has_data()]
        if not axs:
            continue
        lo = min(ax.get_ylim()[0] for ax, _ in axs)
        hi = max(ax.get_ylim()[1] for ax, _ in axs)
        for ax, c in axs:
            ax.set_ylim(lo, hi)
            if c > 0:
                ax.tick_params(axis="y", labelleft=False)
    shared_legend(fig, [u[0] for u in used], seeds)
    return fig


def _fig_phases(res: StudyResults, figure: str, artifact: str, draw: Callable, prep: Callable):
    d = _phase_data(res, figure, artifact)
    fig, axes = _panels(len(d), max_cols=2, sharey=True,
                        width=SINGLE_COLUMN if len(d) == 1 else DOUBLE_COLUMN)
    # NOTE [Readable figures]: a condition has one colour in both panels, whichever it lacks
    labels = list(dict.fromkeys(k for per in d.values() for k in per))
    cycle = [f"C{i % 10}" for i in range(len(labels))]
    colour = dict(zip(labels, cycle))
    seeds: list[int] = []
    for ax, (phase, per) in zip(axes, d.items()):
        drawn = draw(ax, {k: prep(v) for k, v in per.items()})
        for label, (line, band) in drawn.items():
            line.set_color(colour.get(label, line.get_color()))
            if band is not None:
                band.set_facecolor(to_rgba(colour.get(label, line.get_color()), 0.2))
        seeds += [len(v) for v in per.values()]
        ax.set_title("at initialization" if phase == "init" else "after training")
        if ax is not axes[0]:  # one y scale (sharey): labelled once
            ax.set_ylabel("")
    shared_legend(fig, axes, seeds)
    return fig


def _fig_lyapunov(res: StudyResults):
    def prep(v):
        k = min(len(r) for r in v)  # seeds share K for one condition; guard anyway
        return np.asarray([r[:k] for r in v], float)
    return _fig_phases(res, "lyapunov", "lyapunov", lyapunov_spectrum, prep)


def _fig_spectrum_steps(res: StudyResults):
    return _fig_phases(res, "spectrum_steps", "spectrum_steps", spectrum_steps,
                       lambda v: [pd.DataFrame(x) for x in v])


#: The figures a study may declare (``choices.FIGURES``, docs/results-schema.md), with what
#: draws them.
FIGURES: dict[str, Callable[[StudyResults], Any]] = {
    "anatomy": _fig_anatomy, "sv_hist": _fig_sv_hist, "connection_maps": _fig_connection_maps,
    "curves": _fig_curves, "lyapunov": _fig_lyapunov, "spectrum_steps": _fig_spectrum_steps,
}
_DATA: dict[str, Callable[[StudyResults], Any]] = {
    "anatomy": _anatomy_data, "sv_hist": _sv_hist_data, "connection_maps": _connection_map_data,
    "curves": _curves_data,
    "lyapunov": lambda r: _phase_data(r, "lyapunov", "lyapunov"),
    "spectrum_steps": lambda r: _phase_data(r, "spectrum_steps", "spectrum_steps"),
}


def check_figure_name(fn: str, res: StudyResults, name: Any, *, tables: bool = True) -> str:
    avail = res.declared_figures + ([TABLE_NAME] if tables and res.tables else [])
    if not isinstance(name, str) or name not in avail:
        raise fail(fn, f"a figure that study {res.name!r} declares: "
                   f"{', '.join(avail) or '(none declared)'}", repr(name))
    return name


def render_figure(results: StudyResults, name: str):
    """Build one declared figure of the study as a ``Figure`` (call inside :func:`style`)."""
    check_figure_name("render_figure", results, name, tables=False)
    return FIGURES[name](results)


