r"""The shipped style, figure construction without pyplot, and deterministic atomic saving.

NOTE [No pyplot]
Figures are built as ``matplotlib.figure.Figure`` objects attached to a ``FigureCanvasAgg``: no
pyplot state machine, no global backend switch (``matplotlib.use`` is never called), nothing left
open in a global figure registry. Saving a PDF from such a figure goes through matplotlib's PDF
backend by file format, so the user's interactive backend is untouched.

NOTE [Markers]
Every line carries a marker as well as a colour, so a figure printed in grey or read by a
colour-blind reader still tells the methods apart. :func:`style` zips a marker cycle onto the colour
cycle; the plot functions pass explicit ``markevery`` so dense curves stay readable.

NOTE [Deterministic files]
Regenerating a figure from the same stored results must give the same bytes. PDF: matplotlib writes
the creation date and the producer into the Info dictionary; we pass ``CreationDate=None`` (dropped)
and fixed ``Producer``/``Creator`` strings, and fonts are embedded as TrueType subsets
(``pdf.fonttype 42``, never Type 3), whose subsetting is a pure function of the glyphs used. PNG:
the ``Software`` text chunk is fixed. Files are written to a temporary name in the same folder,
fsynced, then ``os.replace``-d, so a reader never sees a half-written figure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib
import matplotlib.style
from cycler import cycler
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._io import write_atomic
from ..errors import fail

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = ["STYLE_FILE", "SINGLE_COLUMN", "DOUBLE_COLUMN", "FORMATS", "MARKERS", "style",
           "new_figure", "save_figure", "check_formats"]

#: The ``.mplstyle`` file shipped inside the package.
STYLE_FILE = Path(__file__).resolve().parent.parent / "spectrumkit.mplstyle"
#: Width in inches of one column of a two-column paper.
SINGLE_COLUMN = 3.25
#: Width in inches of the full text block of a two-column paper.
DOUBLE_COLUMN = 6.75
#: File formats :func:`save_figure` writes.
FORMATS = ("pdf", "png", "svg")
#: The marker cycle zipped onto the colour cycle (NOTE [Markers]); 10 entries like the palettes.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")

_PDF_METADATA = {"CreationDate": None, "Creator": "spectrumkit", "Producer": "spectrumkit"}
_PNG_METADATA = {"Software": "spectrumkit"}
_SVG_METADATA = {"Date": None, "Creator": "spectrumkit"}


def _palette() -> list[str]:
    """petroff10 when the installed matplotlib ships it (>= 3.10), else tableau-colorblind10."""
    lib = matplotlib.style.library
    name = "petroff10" if "petroff10" in lib else "tableau-colorblind10"
    return list(lib[name]["axes.prop_cycle"].by_key()["color"])


def _style_rc() -> dict[RcKeyType, Any]:
    rc = dict(matplotlib.rc_params_from_file(str(STYLE_FILE), use_default_template=False))
    colors = _palette()
    rc["axes.prop_cycle"] = cycler(color=colors) + cycler(marker=list(MARKERS[: len(colors)]))
    rc["patch.facecolor"] = colors[0]
    return rc


@contextlib.contextmanager
def style(rc: Mapping[str, Any] | None = None) -> Iterator[None]:
    r"""Apply spectrumkit's shipped style inside a ``with`` block; rcParams are restored after.

    The style (``spectrumkit.mplstyle``): a colour-blind-safe palette (petroff10 if available, else
    tableau-colorblind10) with markers zipped on (NOTE [Markers]), ``pdf.fonttype``/``ps.fonttype``
    42 (embedded TrueType, never Type 3), 8 pt text (9 pt titles), constrained layout, and a default
    size one column wide (:data:`SINGLE_COLUMN` = 3.25 in; :data:`DOUBLE_COLUMN` = 6.75 in).
    ``rc`` overrides individual keys.

    >>> import matplotlib as mpl
    >>> before = mpl.rcParams["pdf.fonttype"]
    >>> with style():
    ...     mpl.rcParams["pdf.fonttype"], mpl.rcParams["figure.figsize"][0]
    (42, 3.25)
    >>> mpl.rcParams["pdf.fonttype"] == before
    True
    """
    params = _style_rc()
    if rc is not None:
        # the caller's keys are plain strings; matplotlib validates each one when it is set
        params.update(cast("dict[RcKeyType, Any]", dict(rc)))
    with matplotlib.rc_context(params):
        yield


def new_figure(width: float | str = "single", height: float | None = None, **subplots: Any
               ) -> tuple[Figure, Any]:
    r"""A pyplot-free ``Figure`` (NOTE [No pyplot]) with ``fig.subplots(**subplots)`` axes.

    Call inside :func:`style` so the artists pick up the style. ``width`` is ``"single"`` (3.25 in),
    ``"double"`` (6.75 in) or inches; ``height`` defaults to 0.72 · width for one row.
    Returns ``(fig, axes)`` as ``Figure.subplots`` returns them.
    """
    if isinstance(width, str):
        if width not in ("single", "double"):
            raise fail("new_figure", "width 'single', 'double' or a number of inches", repr(width))
        width = SINGLE_COLUMN if width == "single" else DOUBLE_COLUMN
    if height is None:
        height = 0.72 * float(width) if float(width) <= SINGLE_COLUMN else 0.4 * float(width)
    fig = Figure(figsize=(float(width), float(height)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots)
    return fig, axes


def check_formats(fn: str, formats: Any) -> tuple[str, ...]:
    """``formats``: a comma-separated string or an iterable of names from :data:`FORMATS`."""
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",")]
    try:
        formats = tuple(str(f).lower().lstrip(".") for f in formats)
    except TypeError:
        raise fail(fn, f"formats among {', '.join(FORMATS)}", repr(formats)) from None
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise fail(fn, f"formats among {', '.join(FORMATS)}", ", ".join(bad) if bad else "none")
    return tuple(dict.fromkeys(formats))  # drop repeats, keep order


def _atomic_savefig(fig: Figure, path: Path, fmt: str) -> None:
    kwargs: dict[str, Any] = {"format": fmt}
    if fmt == "pdf":
        kwargs["metadata"] = _PDF_METADATA
    elif fmt == "png":
        kwargs["metadata"] = _PNG_METADATA
    else:
        kwargs["metadata"] = _SVG_METADATA
    # pdf/ps fonttype are read at save time: pin them here whatever style is active.
    with matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42,
                                "svg.hashsalt": "spectrumkit"}):
        write_atomic(path, lambda fh: fig.savefig(fh, **kwargs))  # NOTE [Atomic writes]


def save_figure(fig: Figure, path: str | os.PathLike, formats: Iterable[str] | str = ("pdf", "png")
                ) -> list[Path]:
    r"""Write ``fig`` to ``path`` + ``.<format>`` for each format; return the paths written.

    ``path`` is given without a suffix (a suffix that names a format is dropped). Files are written
    atomically and deterministically (NOTE [Deterministic files]): the same figure gives the same
    bytes. Parent folders are created. Unknown formats raise :class:`~spectrumkit.SpectrumkitError`
    listing :data:`FORMATS`. Call it inside the same :func:`style` block that built the figure:
    matplotlib creates tick labels lazily at draw time, from the rcParams active then.
    """
    if not isinstance(fig, Figure):
        raise fail("save_figure", "a matplotlib.figure.Figure", type(fig).__name__)
    fmts = check_formats("save_figure", formats)
    base = Path(path)
    if base.suffix.lower().lstrip(".") in FORMATS:
        base = base.with_suffix("")
    if base.name in ("", ".", ".."):
        raise fail("save_figure", "a file path without suffix", repr(str(path)))
    base.parent.mkdir(parents=True, exist_ok=True)
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    out = []
    for fmt in fmts:
        target = base.with_name(f"{base.name}.{fmt}")
        _atomic_savefig(fig, target, fmt)
        out.append(target)
    return out

