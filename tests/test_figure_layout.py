"""Every figure of every shipped study, drawn from stored tiny results, has no overlapping text.

The results: each shipped study resolved at its quick preset, every trial file holding the records
of a real tiny trial (``tests/figures_fixture.py``, a 6-unit GRU) under that trial's own config and
key, so the figures see the study's own grid, rows and labels. Text boxes are matplotlib's own
extents (``Text.get_window_extent`` after ``canvas.draw()``).
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path

import pytest

from spectrumkit.figures import read_results as load_results
from spectrumkit.figures import render_figure, style
from spectrumkit.figures.rendering import MAX_COLS
from spectrumkit.study import list_studies, load_study
from spectrumkit.study.config import SCHEMA_VERSION
from tests import figures_fixture as ff

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fixture_trials(tmp_path_factory) -> list[dict]:
    d = ff.build(tmp_path_factory.mktemp("fixture"))
    return [json.loads(p.read_text()) for p in sorted((d / "trials").glob("*.json"))]


def _write_study(root: Path, name: str, donors: list[dict]) -> Path:
    """The shipped study ``name`` at its quick preset, each trial filled from a donor trial."""
    spec = load_study(name, "quick")
    folder = root / spec.name
    (folder / "trials").mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps({**spec.to_json(),
                                                  "schema_version": SCHEMA_VERSION}))
    for i, (cfg, key) in enumerate(zip(spec.configs, spec.keys)):
        donor = donors[i % len(donors)]
        metrics = {k: (v + 0.37 * (i % 7) if isinstance(v, float) else v)
                   for k, v in donor["metrics"].items()}
        for metric in [t.metric for t in [spec.report.table, *spec.report.tables] if t]:
            metrics.setdefault(metric, 1.0 + 0.1 * i)  # a metric the fixture does not record
        result = {**donor, "key": key, "study": spec.name, "metrics": metrics,
                  "config": cfg.model_dump(mode="json"),
                  "data": {**spec.data[cfg.task], "root": None, "description": "stored"}}
        (folder / "trials" / f"{key}.json").write_text(json.dumps(result))
    return folder


def _drawn_texts(fig) -> list:
    """The text artists a reader sees: titles, labels, tick labels in view, legends, notes."""
    out = list(fig.texts)
    for leg in fig.legends:
        out += [*leg.get_texts(), leg.get_title()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        out += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            out += [axis.label, axis.get_offset_text()]
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                loc = tick.get_loc()
                if loc is not None and lo - 1e-9 * abs(hi - lo) <= loc <= hi + 1e-9 * abs(hi - lo):
                    out += [tick.label1 if tick.label1.get_visible() else None,
                            tick.label2 if tick.label2.get_visible() else None]
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            out += [*leg.get_texts(), leg.get_title()]
    return [t for t in out if t is not None and t.get_visible() and str(t.get_text()).strip()]


def _overlaps(fig) -> tuple[list[tuple[str, str]], list[str]]:
    """(pairs of visible texts whose extents overlap, texts reaching outside the figure)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [(str(t.get_text()), t.get_window_extent(renderer)) for t in _drawn_texts(fig)]
    page = fig.bbox
    outside = [s for s, b in texts if b.x0 < page.x0 - 1 or b.y0 < page.y0 - 1
               or b.x1 > page.x1 + 1 or b.y1 > page.y1 + 1]
    pairs = []
    for (s1, b1), (s2, b2) in itertools.combinations(texts, 2):
        w = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
        h = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
        if w > 1 and h > 1:  # more than a pixel each way
            pairs.append((s1, s2))
    return pairs, outside


SHIPPED = [(s, f) for s in list_studies() for f in load_study(s, "quick").report.figures]


def test_every_shipped_study_declares_figures_that_are_checked():
    names = {f for _, f in SHIPPED}
    assert names == set(ff.FIGURE_NAMES), names
    assert len({s for s, _ in SHIPPED}) >= 9


@pytest.mark.parametrize(("study", "figure"), SHIPPED, ids=[f"{s}-{f}" for s, f in SHIPPED])
def test_figure_text_does_not_overlap(study, figure, fixture_trials, tmp_path):
    folder = _write_study(tmp_path, study, fixture_trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a layout warning would be caught below as overlap
        res = load_results(folder)
    with style():
        fig = render_figure(res, figure)
        pairs, outside = _overlaps(fig)
    assert not outside, f"{study}/{figure}: text outside the figure: {outside}"
    assert not pairs, f"{study}/{figure}: overlapping text: {pairs[:8]}"
    # facets wrap: no row of panels holds more than MAX_COLS visible axes with a title
    rows: dict[float, int] = {}
    for ax in fig.axes:
        if ax.get_visible() and ax.get_title():
            y = round(ax.get_position().y1, 3)
            rows[y] = rows.get(y, 0) + 1
    assert max(rows.values(), default=0) <= MAX_COLS, rows
    assert math.isfinite(fig.get_figwidth()) and fig.get_figwidth() <= 7.0


def test_overlap_check_finds_overlapping_and_clipped_text():
    from spectrumkit.figures import new_figure

    with style():
        fig, ax = new_figure("single")
        ax.set_title("a title much too long to fit into a single-column figure of 3.25 inches")
        ax.text(0.5, 0.5, "first", transform=ax.transAxes)
        ax.text(0.5, 0.5, "second", transform=ax.transAxes)
        pairs, outside = _overlaps(fig)
    assert ("first", "second") in pairs
    assert outside == ["a title much too long to fit into a single-column figure of 3.25 inches"]
