r"""Figures and tables for papers, made only from stored study results.

The package is split by concern (dependency arrows point down the list):

* :mod:`spectrumkit.figures._style`: the shipped ``spectrumkit.mplstyle``, :func:`style`,
  :func:`new_figure`, :func:`save_figure` (atomic, byte-deterministic);
* :mod:`spectrumkit.figures.plots`: plot functions taking an ``ax`` and plain data (paper Figs. 1–5,
  Lyapunov spectra, σ̄ per step);
* from :mod:`spectrumkit.study`, whose results they draw: :mod:`~spectrumkit.study.results`
  (reading ``spec.json`` + ``trials/*.json``, :func:`read_results`),
  :mod:`~spectrumkit.study.tables`
  (tables like the paper's, mean ± std (n), best in bold, as Markdown, LaTeX and CSV) and
  :mod:`~spectrumkit.study.values` (how a metric value that is not finite is read, shown and
  counted, alike in every table and figure);
* :mod:`spectrumkit.figures.rendering`: :func:`render`, every declared figure and table of a study;
* :mod:`spectrumkit.figures.outputs` and :mod:`spectrumkit.figures.report`: no stale report files,
  and the study's self-contained page ``report.html``; :mod:`spectrumkit.figures.finish`: the end
  of a ``spectrumkit study`` run (figures, tables, report page).
"""

from ..study.results import StudyResults, decode_connection_map, find_study_dirs, read_results
from ..study.summary import summarize
from ..study.tables import (
    METRIC_BETTER,
    TABLE_FORMATS,
    Table,
    results_table,
    table_csv,
    table_latex,
    table_markdown,
    write_table,
)
from ._style import (
    DOUBLE_COLUMN,
    FORMATS,
    MARKERS,
    SINGLE_COLUMN,
    STYLE_FILE,
    new_figure,
    save_figure,
    style,
)
from .plots import (
    anatomy_bars,
    connection_map,
    ir_ratio_bars,
    lyapunov_spectrum,
    mean_std,
    spectrum_steps,
    sv_histogram,
    training_curves,
)
from .rendering import FIGURES, figure_data, render, render_all, render_figure

__all__ = [
    # style and saving
    "DOUBLE_COLUMN", "FORMATS", "MARKERS", "SINGLE_COLUMN", "STYLE_FILE", "new_figure",
    "save_figure", "style",
    # plot functions (ax + plain data)
    "anatomy_bars", "connection_map", "ir_ratio_bars", "lyapunov_spectrum", "mean_std",
    "spectrum_steps", "sv_histogram", "training_curves",
    # stored results
    "StudyResults", "decode_connection_map", "find_study_dirs", "read_results",
    # tables
    "METRIC_BETTER", "TABLE_FORMATS", "Table", "results_table", "table_csv", "table_latex",
    "table_markdown", "write_table", "summarize",
    # rendering a study
    "FIGURES", "figure_data", "render", "render_all", "render_figure",
]
