"""Figures: the shipped style, deterministic saving, and what the plot functions draw."""

import re

import matplotlib as mpl
import numpy as np
import pytest

from spectrumkit import SpectrumkitError
from spectrumkit.figures import (DOUBLE_COLUMN, SINGLE_COLUMN, new_figure, save_figure, style,
                                 sv_histogram)


def pdf_fonts(data: bytes) -> tuple[list[str], int]:
    """(Subtype of every simple/descendant /Font object, number of embedded font files) of a PDF.

    Font dictionaries and descriptors are plain objects in matplotlib's PDFs; an embedded TrueType
    font's descriptor carries /FontFile2 (Type 1: /FontFile, CFF: /FontFile3).
    """
    objs = re.findall(rb"\d+ 0 obj\s*(<<.*?>>)\s*endobj", data, flags=re.S)
    fonts = []
    for o in objs:
        if re.search(rb"/Type\s*/Font\b", o) and b"/Subtype" in o:
            sub = re.search(rb"/Subtype\s*/(\w+)", o).group(1).decode()
            if sub == "Type0":  # composite font: its descendant is listed as its own object
                continue
            fonts.append(sub)
    embedded = len(re.findall(rb"/FontFile[23]?\b", data))
    return fonts, embedded


def test_style_is_scoped_and_shipped_values():
    before = dict(mpl.rcParams)
    with style():
        assert mpl.rcParams["pdf.fonttype"] == 42 and mpl.rcParams["ps.fonttype"] == 42
        assert 8 <= mpl.rcParams["font.size"] <= 9
        assert mpl.rcParams["figure.figsize"][0] == SINGLE_COLUMN
        cyc = mpl.rcParams["axes.prop_cycle"].by_key()
        lib = mpl.style.library
        name = "petroff10" if "petroff10" in lib else "tableau-colorblind10"
        assert cyc["color"] == lib[name]["axes.prop_cycle"].by_key()["color"]
        assert len(set(cyc["marker"])) == len(cyc["color"])
    assert dict(mpl.rcParams) == before
    assert (SINGLE_COLUMN, DOUBLE_COLUMN) == (3.25, 6.75)


def _hist_figure():
    fig, ax = new_figure()
    p = sv_histogram(ax, [1, 3, 2], [0.0, 0.5, 1.0, 1.5], label="ours", annotate_mean=0.7)
    sv_histogram(ax, [2, 1, 0], [0.0, 0.5, 1.0, 1.5], label="snip", annotate_mean=0.3)
    ax.legend()
    return fig, ax, p


def test_save_figure_deterministic_atomic_and_fonts(tmp_path):
    digests = []
    for i in range(2):
        with style():
            fig, _, _ = _hist_figure()
            out = save_figure(fig, tmp_path / f"run{i}" / "hist", ("pdf", "png"))
        assert [p.name for p in out] == ["hist.pdf", "hist.png"]
        digests.append([p.read_bytes() for p in out])
    assert digests[0][0] == digests[1][0], "PDF bytes differ between two renders"
    assert digests[0][1] == digests[1][1], "PNG bytes differ between two renders"
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")], "temp file left behind"
    fonts, embedded = pdf_fonts(digests[0][0])
    assert fonts and "Type3" not in fonts, fonts
    assert embedded >= 1
    assert b"CreationDate" not in digests[0][0]


def test_save_figure_unknown_format_lists_accepted(tmp_path):
    with style():
        fig, _, _ = _hist_figure()
    with pytest.raises(SpectrumkitError, match=r"save_figure: expected formats among pdf, png, svg, got jpeg"):
        save_figure(fig, tmp_path / "x", ("pdf", "jpeg"))
    assert not list(tmp_path.iterdir())


def test_sv_histogram_draws_the_counts():
    with style():
        fig, ax, p = _hist_figure()
    values, edges, _ = p.get_data()
    np.testing.assert_array_equal(values, [1, 3, 2])
    np.testing.assert_array_equal(edges, [0.0, 0.5, 1.0, 1.5])
    assert ax.get_legend_handles_labels()[1][0].startswith("ours")
    assert [ln.get_xdata()[0] for ln in ax.lines] == [0.7, 0.3]
    with pytest.raises(SpectrumkitError, match="sv_histogram: expected len\\(edges\\)"):
        sv_histogram(ax, [1, 2], [0.0, 1.0])
