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
    # the parser does see a Type 3 font when there is one (matplotlib's default pdf.fonttype 3)
    with style(rc={"pdf.fonttype": 3}):
        fig, ax = new_figure()
        ax.set_title("plain text")
        fig.savefig(tmp_path / "type3.pdf")
    assert "Type3" in pdf_fonts((tmp_path / "type3.pdf").read_bytes())[0]


def test_save_figure_unknown_format_lists_accepted(tmp_path):
    with style():
        fig, _, _ = _hist_figure()
    with pytest.raises(SpectrumkitError,
                       match=r"save_figure: expected formats among pdf, png, svg, got jpeg"):
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


# --------------------------------------------------------------------------------------------------
# A results folder in the docs/results-schema.md format (tests/figures_fixture.py), rendered once.

import base64
import json
import shutil
import subprocess

import pandas as pd

from spectrumkit.figures import (render, render_figure, results_table, table_csv,
                                 table_latex, table_markdown)
from spectrumkit.figures import read_results as load_study
from spectrumkit.study.results import StudyResults

from . import figures_fixture as ff


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    d = ff.build(root)
    paths = render(d)
    return d, paths


def _trials(d, status="ok"):
    ts = [json.loads(p.read_text()) for p in sorted((d / "trials").glob("*.json"))]
    return [t for t in ts if status is None or t["status"] == status]


def _by_method(d):
    out = {}
    for t in _trials(d):
        out.setdefault(t["config"]["score"]["method"], []).append(t)  # schema 3: score.method
    return {m: sorted(ts, key=lambda t: t["config"]["seed"]) for m, ts in out.items()}


def test_render_writes_every_declared_figure_and_table(study):
    d, paths = study
    names = sorted(p.name for p in paths)
    expected = sorted([f"{f}.{x}" for f in ff.FIGURE_NAMES for x in ("pdf", "png")]
                      + ["paper.md", "paper.tex", "paper.csv"])
    assert names == expected
    assert all(p.stat().st_size > 0 for p in paths)


def _bits(art):
    """The connection map's bits, decoded here independently of spectrumkit.figures."""
    R, C = art["shape"]
    raw = np.frombuffer(base64.b64decode(art["packbits"]), dtype=np.uint8)
    return np.unpackbits(raw)[: R * C].reshape(R, C).astype(bool)


def test_anatomy_bar_heights_are_the_stored_fractions(study):
    d, _ = study
    res = load_study(d)
    with style():
        fig = render_figure(res, "anatomy")
    ax, ax2 = fig.axes[:2]
    by_m = _by_method(d)
    labels = {"jacobian": "Jacobian", "random": "random"}
    assert [t.get_text() for t in ax.get_xticklabels()] == [labels[m] for m in ff.METHODS]
    checked = 0
    for cont in ax.containers:
        gate, block = cont.get_label().split()
        g = "rzn".index(gate)
        rows = slice(0, ff.D) if block == "input" else slice(ff.D, ff.D + ff.N)
        for i, m in enumerate(ff.METHODS):
            fr = [r["fraction"] for t in by_m[m] for r in t["artifacts"]["anatomy"]["rows"]
                  if (r["gate"], r["block"]) == (gate, block)]
            # the stored fractions agree with the stored mask (kept / total of that gate's block)
            from_map = [_bits(t["artifacts"]["connection_map"])[rows, g * ff.N:(g + 1) * ff.N].mean()
                        for t in by_m[m]]
            assert len(fr) == len(ff.SEEDS) and fr == pytest.approx(from_map, abs=1e-12)
            assert cont.patches[i].get_height() == pytest.approx(np.mean(fr), abs=1e-12), (m, gate)
            checked += 1
    assert checked == 2 * 3 * 2  # methods × gates × {input, recurrent}
    ir = [np.mean([t["artifacts"]["anatomy"]["summary"]["ir_ratio"] for t in by_m[m]])
          for m in ff.METHODS]
    assert [t.get_text() for t in ax.texts] == [f"I/R {v:.3g}" for v in ir]
    assert [p.get_height() for p in ax2.containers[0].patches] == pytest.approx(ir)
    # dense I/R = 3·N·D input weights / 3·N·N recurrent ones; uniform line at K/P kept
    assert [ln.get_ydata()[0] for ln in ax2.lines] == pytest.approx([ff.D / ff.N])
    kept = round((1 - ff.SPARSITY) * ff.PRUNABLE)
    assert [ln.get_ydata()[0] for ln in ax.lines] == pytest.approx([kept / ff.PRUNABLE])


def test_sv_histogram_counts_sum_to_number_of_singular_values(study):
    d, _ = study
    with style():
        fig = render_figure(load_study(d), "sv_hist")
    by_m = _by_method(d)
    n_sv = ff.T * ff.SPECTRUM_BATCH * ff.N  # steps × sequences × S singular values per trial
    for ax, m in zip(fig.axes, ff.METHODS):
        patches = [p for p in ax.patches if hasattr(p, "get_data")]
        assert len(patches) == 2  # init and trained
        for patch, phase in zip(patches, ("init", "trained")):
            values, edges, _ = patch.get_data()
            hs = [t["artifacts"]["sv_hist"][phase] for t in by_m[m]]
            pooled = [h for h in hs if np.array_equal(h["edges"], hs[0]["edges"])]
            assert values.sum() == n_sv * len(pooled)
            np.testing.assert_array_equal(edges, hs[0]["edges"])
            np.testing.assert_array_equal(values, np.sum([h["counts"] for h in pooled], axis=0))
        means = [ln.get_xdata()[0] for ln in ax.lines]
        expected = []
        for ph in ("init", "trained"):
            hs = [t["artifacts"]["sv_hist"][ph] for t in by_m[m]]
            expected.append(np.mean([h["mean"] for h in hs
                                     if np.array_equal(h["edges"], hs[0]["edges"])]))
        assert means == pytest.approx(expected, abs=1e-12)


def test_connection_map_image_is_the_mask(study):
    d, _ = study
    with style():
        fig = render_figure(load_study(d), "connection_maps")
    by_m = _by_method(d)
    for ax, m in zip(fig.axes, ff.METHODS):
        t = by_m[m][0]  # the lowest seed
        mask = _bits(t["artifacts"]["connection_map"])
        assert mask.shape == (ff.D + ff.N, 3 * ff.N) and mask.sum() == t["metrics"]["kept"]
        (img,) = ax.images
        np.testing.assert_array_equal(np.asarray(img.get_array()), mask.astype(np.uint8))
        # gate boundaries at multiples of N, one input/hidden separator after D rows
        vert = sorted(ln.get_xdata()[0] for ln in ax.lines
                      if ln.get_xdata()[0] == ln.get_xdata()[1] and ln.get_xdata()[0] > 0)
        horiz = [ln.get_ydata()[0] for ln in ax.lines if ln.get_ydata()[0] == ln.get_ydata()[1]]
        assert vert == [ff.N - 0.5, 2 * ff.N - 0.5] and horiz == [ff.D - 0.5]
        assert [x.get_text() for x in ax.get_yticklabels()] == ["input", "hidden"]
        assert ax.get_title() == f"{'Jacobian' if m == 'jacobian' else m} (seed {ff.SEEDS[0]})"


def test_curve_is_mean_of_history_tables_with_std_band(study):
    d, _ = study
    with style():
        fig = render_figure(load_study(d), "curves")
    ax_loss, ax_err = fig.axes[:2]
    by_m = _by_method(d)
    for line, m in zip(ax_loss.lines, ff.METHODS):
        table = np.array([t["history"]["train_loss"] for t in by_m[m]])  # (seeds, evaluations)
        np.testing.assert_allclose(line.get_ydata(), table.mean(axis=0), rtol=0, atol=1e-14)
        np.testing.assert_array_equal(line.get_xdata(), by_m[m][0]["history"]["step"])
        assert line.get_marker() not in (None, "", "None", "none")
    assert ax_loss.get_yscale() == "log"
    # the band of the first method: mean ± std (ddof=1)
    table = np.array([t["history"]["train_loss"] for t in by_m[ff.METHODS[0]]])
    verts = ax_loss.collections[0].get_paths()[0].vertices
    lo = table.mean(0) - table.std(0, ddof=1)
    hi = table.mean(0) + table.std(0, ddof=1)
    assert np.isclose(verts[:, 1].min(), lo.min()) and np.isclose(verts[:, 1].max(), hi.max())
    for line, m in zip(ax_err.lines, ff.METHODS):
        errs = np.array([t["history"]["val_error_pct"] for t in by_m[m]])
        np.testing.assert_allclose(line.get_ydata(), errs.mean(0), atol=1e-12)
    np.testing.assert_array_equal(ax_err.lines[0].get_xdata(), [2, 4])


def test_lyapunov_and_sigma_per_step_are_seed_means(study):
    d, _ = study
    by_m = _by_method(d)
    with style():
        fig_l = render_figure(load_study(d), "lyapunov")
        fig_s = render_figure(load_study(d), "spectrum_steps")
    for ax, phase in zip(fig_l.axes, ("init", "trained")):
        for line, m in zip(ax.lines, ff.METHODS):
            exps = np.array([t["artifacts"]["lyapunov"][phase] for t in by_m[m]])
            np.testing.assert_allclose(line.get_ydata(), exps.mean(0), atol=1e-13)
            np.testing.assert_array_equal(line.get_xdata(), np.arange(1, exps.shape[1] + 1))
    for ax, phase in zip(fig_s.axes, ("init", "trained")):
        for line, m in zip(ax.lines, ff.METHODS):
            sig = np.array([t["artifacts"]["spectrum_steps"][phase]["mean_sigma"] for t in by_m[m]])
            np.testing.assert_allclose(line.get_ydata(), sig.mean(0), atol=1e-13)
            np.testing.assert_array_equal(line.get_xdata(), np.arange(1, ff.T + 1))


@pytest.mark.slow
def test_rendering_twice_gives_byte_identical_files(study, tmp_path):
    d, paths = study
    copy = tmp_path / "fixture"
    shutil.copytree(d, copy, ignore=shutil.ignore_patterns("figures", "tables"))
    again = render(copy)
    assert [p.name for p in again] == [p.name for p in paths]
    for a, b in zip(paths, again):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two renders"


def test_pdf_fonts_are_embedded_and_never_type3(study):
    d, paths = study
    pdfs = [p for p in paths if p.suffix == ".pdf"]
    have_pdffonts = shutil.which("pdffonts") is not None
    for p in pdfs:
        data = p.read_bytes()
        fonts, embedded = pdf_fonts(data)
        assert fonts, f"{p.name}: no fonts found"
        assert "Type3" not in fonts, f"{p.name}: Type 3 font"
        assert embedded >= len(fonts), f"{p.name}: {len(fonts)} fonts, {embedded} embedded"
        if have_pdffonts:  # pragma: no cover - not installed on the dev machine
            out = subprocess.run(["pdffonts", str(p)], capture_output=True, text=True).stdout
            rows = out.splitlines()[2:]
            assert rows and all(" yes " in r and "Type 3" not in r for r in rows), out


def test_table_cells_bold_and_formats(study):
    d, _ = study
    md = (d / "tables" / "paper.md").read_text()
    tex = (d / "tables" / "paper.tex").read_text()
    csv_ = pd.read_csv(d / "tables" / "paper.csv")
    errs = {m: np.array([t["metrics"]["val_error_pct"] for t in ts])
            for m, ts in _by_method(d).items()}
    for m, e in errs.items():
        row = csv_[csv_["method"] == {"jacobian": "Jacobian"}.get(m, m)].iloc[0]
        assert row["mean"] == pytest.approx(e.mean()) and row["std"] == pytest.approx(e.std(ddof=1))
        assert row["n"] == len(ff.SEEDS)
        assert f"{e.mean():.2f} ± {e.std(ddof=1):.2f}" in md
    # NOTE [Best in bold]: the best (lowest error) is bold only when it beats the next best by
    # more than the larger of the two standard deviations, each over at least two seeds
    best, second = sorted(errs, key=lambda m: errs[m].mean())[:2]
    clear = bool(errs[second].mean() - errs[best].mean()
             > max(errs[best].std(ddof=1), errs[second].std(ddof=1)))
    cell = f"**{errs[best].mean():.2f} ± {errs[best].std(ddof=1):.2f}**"
    assert (cell in md) is clear and ("**" in md.split("\n", 1)[1]) is clear
    assert "lower is better" in md and "Table 1" in md
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert (f"\\mathbf{{{errs[best].mean():.2f} \\pm" in tex) is clear


def _synthetic(tmp_path, metric, values, grid):
    """A StudyResults over ``grid`` whose trials carry ``metric`` = the given values per condition;
    a value None stands for a diverged trial."""
    trials = []
    axes = list(grid)
    for cond, vals in values.items():
        for seed, v in enumerate(vals):
            cfg = dict(zip(axes, cond), seed=seed)
            trials.append({"schema_version": 1, "key": f"{cond}-{seed}", "config": cfg,
                           "status": "ok" if v is not None else "diverged",
                           "metrics": {metric: v}})
    return StudyResults(path=tmp_path, spec={"name": "s", "grid": grid}, trials=tuple(trials))


def test_best_direction_and_orientation(tmp_path):
    # Table 2 layout: rows = method, cols = width -> best is per column; error: lower is better
    grid = {"method": ["jacobian", "random"], "hidden_size": [100, 400]}
    vals = {("jacobian", 100): [3.0, 3.2], ("random", 100): [2.7, 2.9],
            ("jacobian", 400): [1.4, 1.5], ("random", 400): [1.5, 1.6]}
    t = results_table(_synthetic(tmp_path, "val_error_pct", vals, grid), rows="method",
                      cols="hidden_size", metric="val_error_pct")
    best = t.cells[t.cells["best"]][["row", "col"]].values.tolist()
    assert best == [["Jacobian", "N=400"], ["random", "N=100"]]
    md = table_markdown(t)
    assert "**2.80 ± 0.14** (n=2)" in md and "**1.45 ± 0.07** (n=2)" in md
    # a higher-is-better metric flips the winner; Table 5 layout (rows = init) -> best per row
    grid = {"init": ["glorot", "normal:1"], "method": ["jacobian", "random"]}
    vals = {("glorot", "jacobian"): [90.0, 92.0], ("glorot", "random"): [95.0, 97.0],
            ("normal:1", "jacobian"): [80.0], ("normal:1", "random"): [70.0]}
    t = results_table(_synthetic(tmp_path, "val_acc_pct", vals, grid), rows="init",
                      cols="method", metric="val_acc_pct")
    # N(0, 1) has one seed per method: no spread, so no best is claimed there (NOTE [Best in bold])
    assert t.cells[t.cells["best"]][["row", "col"]].values.tolist() == [["Glorot", "random"]]
    assert "higher is better" in table_markdown(t)
    assert "**96.00 ± 1.41** (n=2)" in table_markdown(t)
    assert "| 80.00 ± – (n=1)" in table_markdown(t) and "**80.00" not in table_markdown(t)
    assert (table_csv(t).splitlines()[0]
            == "init,method,mean,std,n,n_diverged,n_failed,best,n_inf,n_undefined")
    assert "\\mathbf{96.00 \\pm 1.41}" in table_latex(t)
    # a descriptive metric (no better direction): nothing bold, and the caption says so
    t = results_table(_synthetic(tmp_path, "ir_ratio", vals, grid), rows="init", cols="method",
                      metric="ir_ratio", fmt=".3f")
    assert not t.cells["best"].any() and "**" not in table_markdown(t)
    assert "no best marked (ir_ratio has no better direction)" in table_markdown(t)
    assert "96.000 ± 1.414 (n=2)" in table_markdown(t)
    with pytest.raises(SpectrumkitError, match="results_table: expected better to be one of"):
        results_table(_synthetic(tmp_path, "kept", vals, grid), rows="init", cols="method",
                      metric="kept", better="smaller")
    with pytest.raises(SpectrumkitError, match="results_table: expected fmt a float format spec"):
        results_table(_synthetic(tmp_path, "kept", vals, grid), rows="init", cols="method",
                      metric="kept", fmt="%d")
    with pytest.raises(SpectrumkitError, match=r"every varying grid axis to be in rows or cols.*"
                                               r"also \['method'\]"):
        results_table(_synthetic(tmp_path, "val_acc_pct", vals, grid), rows="init", cols=None,
                      metric="val_acc_pct")


def test_setting_a_method_ignores_counts_for_every_column(tmp_path):
    # Table 2 layout: random pruning has no normalization (config None): it is the same experiment
    # under both columns, so it appears in both and competes in both
    grid = {"method": ["snip", "random"], "normalize": ["gamma", "none"]}
    vals = {("snip", "gamma"): [1.9, 2.0], ("snip", "none"): [88.0, 89.0], ("random", None): [1.4, 1.6]}
    t = results_table(_synthetic(tmp_path, "val_error_pct", vals, grid), rows="method",
                      cols="normalize", metric="val_error_pct")
    assert t.col_labels == ("norm.", "unnorm.") and t.row_labels == ("SNIP", "random")
    rnd = t.cells[t.cells["row"] == "random"]
    assert rnd["mean"].tolist() == pytest.approx([1.5, 1.5]) and rnd["n"].tolist() == [2, 2]
    assert t.cells[t.cells["best"]][["row", "col"]].values.tolist() == [["random", "norm."],
                                                                          ["random", "unnorm."]]


def test_references_do_not_compete_and_rows_are_not_broadcast(tmp_path):
    # Table 1 layout with the dense reference: dense is shown but never bold
    grid = {"cell": ["gru"], "method": ["random", "jacobian", "dense"]}
    vals = {("gru", "random"): [1.5, 1.6], ("gru", "jacobian"): [1.4, 1.5, None],
            ("gru", "dense"): [0.8, 0.7]}
    t = results_table(_synthetic(tmp_path, "val_error_pct", vals, grid), rows="cell",
                      cols="method", metric="val_error_pct")
    assert t.cells[t.cells["best"]]["col"].tolist() == ["Jacobian"]
    assert "0.75 ± 0.07 (n=2)" in table_markdown(t)
    # a diverged trial is counted and shown, never averaged in
    assert "**1.45 ± 0.07** (n=2, 1 diverged)" in table_markdown(t)
    assert t.cells.set_index("col").loc["Jacobian", "n_diverged"] == 1
    # horizon study: rows = [method, horizon]; random has no horizon: one row, not one per horizon
    grid = {"method": ["jacobian", "random"], "horizon": [1, "all"]}
    vals = {("jacobian", 1): [2.0, 2.1], ("jacobian", "all"): [1.0, 1.1], ("random", None): [1.5, 1.7]}
    t = results_table(_synthetic(tmp_path, "val_error_pct", vals, grid), rows=["method", "horizon"],
                      cols=None, metric="val_error_pct")
    assert t.row_labels == ("Jacobian, U=1", "Jacobian, U=all", "random")
    assert t.cells[t.cells["best"]]["row"].tolist() == ["Jacobian, U=all"]


# --------------------------------------------------------------------------------------------------
# bad input

def test_errors_name_what_is_expected(study, tmp_path):
    d, _ = study
    with pytest.raises(SpectrumkitError, match=r"render: expected a study results folder "
                                               r"OUT/<study> holding spec.json and trials/\*.json"):
        render(tmp_path)
    (tmp_path / "spec.json").write_text(json.dumps({"name": "empty", "report": {}}))
    with pytest.raises(SpectrumkitError, match="at least one trial result in .*trials, got none"):
        render(tmp_path)
    with pytest.raises(SpectrumkitError, match="render: expected a figure that study 'fixture' "
                                               "declares: anatomy, sv_hist, connection_maps, curves, "
                                               "lyapunov, spectrum_steps, table, got 'loss'"):
        render(d, only="loss")
    with pytest.raises(SpectrumkitError, match="render: expected formats among pdf, png, svg, got eps"):
        render(d, formats="pdf,eps")


def test_missing_artifact_is_an_error_and_writes_nothing(study, tmp_path):
    d, _ = study
    copy = tmp_path / "fixture"
    shutil.copytree(d, copy, ignore=shutil.ignore_patterns("figures", "tables"))
    for p in (copy / "trials").glob("*.json"):
        t = json.loads(p.read_text())
        del t["artifacts"]["lyapunov"]
        p.write_text(json.dumps(t))
    with pytest.raises(SpectrumkitError, match="expected artifacts.lyapunov in the trials of study "
                                               "'fixture' for figure 'lyapunov'"):
        render(copy)
    assert not (copy / "figures").exists()


def test_cli_accepts_out_or_study_folder_and_errors_in_one_line(study, tmp_path, cli):
    d, paths = study
    r = cli("figures", str(d.parent), "--only", "anatomy", "--format", "pdf")  # OUT: every study inside
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(d / "figures" / "anatomy.pdf")]
    assert (d / "figures" / "anatomy.pdf").read_bytes() == paths[0].read_bytes()
    for args, msg in [((str(tmp_path),), "render: expected a study results folder OUT/<study>"),
                      ((str(d), "--format", "jpg"), "expected formats among pdf, png, svg, got jpg"),
                      ((str(d), "--only", "nope"), "declares: anatomy, sv_hist")]:
        r = cli("figures", *args)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and msg in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
