r"""Figures and tables for papers, made only from stored study results.

The package is split by concern:

* :mod:`spectrumkit.figures._style`: the shipped ``.mplstyle``, :func:`style`, :func:`save_figure`;
* :mod:`spectrumkit.figures.plots`: plot functions taking an ``ax`` and plain data.
"""

from ._style import (DOUBLE_COLUMN, FORMATS, MARKERS, SINGLE_COLUMN, STYLE_FILE, new_figure,
                     save_figure, style)
from .plots import sv_histogram

__all__ = ["DOUBLE_COLUMN", "FORMATS", "MARKERS", "SINGLE_COLUMN", "STYLE_FILE", "new_figure",
           "save_figure", "style", "sv_histogram"]
