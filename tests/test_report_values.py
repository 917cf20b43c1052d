"""Undefined metric values (I/R = ∞, a NaN) are shown and counted alike in every table and figure,
and a best is marked only where it beats the spread."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from spectrumkit.figures import StudyResults, ir_ratio_bars, results_table, table_markdown
from spectrumkit.study.summary import summarize
from spectrumkit.study.tables import table_csv
from spectrumkit.study.values import metric_value
from spectrumkit.study.spec import TableReport


def _anatomy(kept_input: int, kept_recurrent: int) -> dict:
    rows = [{"gate": "r", "block": "input", "kept": kept_input, "total": 10, "fraction": 0.1},
            {"gate": "r", "block": "recurrent", "kept": kept_recurrent, "total": 10,
             "fraction": 0.0}]
    return {"anatomy": {"rows": rows, "summary": {"ir_ratio": None}}}


# (method, seed) -> (ir_ratio as stored, kept input, kept recurrent)
STORED = {("jacobian", 0): (1.0, 1, 1), ("jacobian", 1): (3.0, 3, 1), ("jacobian", 2): (None, 3, 0),
          ("snip", 0): (None, 2, 0), ("snip", 1): (None, 5, 0),
          ("random", 0): (None, 0, 0), ("random", 1): (0.5, 1, 2)}


def _results(tmp_path) -> StudyResults:
    trials = []
    for (method, seed), (ir, ki, kr) in STORED.items():
        trials.append({"key": f"{method}{seed}", "status": "ok",
                       "config": {"method": method, "seed": seed, "cell": "gru"},
                       "metrics": {"ir_ratio": ir, "kept_input": ki, "kept_recurrent": kr},
                       "artifacts": _anatomy(ki, kr)})
    grid = {"cell": ["gru"], "method": ["jacobian", "snip", "random"]}
    return StudyResults(path=tmp_path, spec={"name": "s", "grid": grid}, trials=tuple(trials))


def test_a_null_ratio_is_infinite_only_when_the_counts_say_so():
    assert metric_value({"metrics": {"ir_ratio": None, "kept_input": 4, "kept_recurrent": 0}},
                        "ir_ratio") == math.inf
    assert math.isnan(metric_value({"metrics": {"ir_ratio": None, "kept_input": 0,
                                                "kept_recurrent": 0}}, "ir_ratio"))
    # the counts may come from the anatomy rows alone (results written before the counts were)
    assert metric_value({"metrics": {"ir_ratio": None}, "artifacts": _anatomy(2, 0)},
                        "ir_ratio") == math.inf
    # a collected table holds NaN for the null
    assert metric_value({"ir_ratio": float("nan"), "kept_input": 2.0, "kept_recurrent": 0.0},
                        "ir_ratio") == math.inf
    assert math.isnan(metric_value({"metrics": {"val_loss": None}}, "val_loss"))


def test_paper_table_shows_and_counts_infinite_and_undefined_values(tmp_path):
    t = results_table(_results(tmp_path), rows="cell", cols="method", metric="ir_ratio",
                      fmt=".3f")
    md = table_markdown(t)
    # jacobian: mean ± std (ddof=1) of 1 and 3 = 2 ± sqrt(2); the third seed's ∞ is counted
    assert "2.000 ± 1.414 (n=2, 1 ∞)" in md
    assert "∞ (2 ∞)" in md                   # snip: every value infinite
    assert "0.500 ± – (n=1, 1 —)" in md      # random: one finite value, one 0/0
    assert ("∞: ir_ratio is infinite in 3 ok trials (no recurrent weight kept); —: ir_ratio is "
            "undefined in 1 ok trial; not averaged in.") in md
    lines = table_csv(t).splitlines()
    assert lines[0].endswith(",n_inf,n_undefined")
    assert [ln.split(",")[-2:] for ln in lines[1:]] == [["1", "0"], ["2", "0"], ["0", "1"]]


def test_summary_table_shows_the_same_cells_as_the_paper_table(tmp_path):
    rows = [{"key": f"{m}{s}", "status": "ok", "cell": "gru", "method": m, "seed": s,
             "ir_ratio": ir, "kept_input": ki, "kept_recurrent": kr}
            for (m, s), (ir, ki, kr) in STORED.items()]
    df = pd.DataFrame(rows)  # as collect() gives it: nulls are NaN
    long, pivot = summarize(df, TableReport(rows="cell", cols="method", metric="ir_ratio",
                                            format=".3f"),
                            order={"method": ["jacobian", "snip", "random"]})
    assert pivot.loc["gru"].tolist() == ["2.000 ± 1.414 (n=2, 1 ∞)", "∞ (2 ∞)",
                                         "0.500 (n=1, 1 —)"]
    assert long["n_inf"].tolist() == [1, 2, 0] and long["n_undefined"].tolist() == [0, 0, 1]
    t = results_table(_results(tmp_path), rows="cell", cols="method", metric="ir_ratio",
                      fmt=".3f")
    assert t.cells["n_inf"].tolist() == long["n_inf"].tolist()
    assert t.cells["n_undefined"].tolist() == long["n_undefined"].tolist()


def _two_seeds(mean: float, std: float) -> list[float]:
    """Two values whose mean and sample std (ddof=1) are ``mean`` and ``std``."""
    d = std / math.sqrt(2)
    return [mean - d, mean + d]


@pytest.mark.parametrize(("a", "b", "bold"), [
    ((84.82, 3.15), (84.75, 1.34), None),       # overlapping: nothing marked
    ((80.00, 1.00), (84.75, 1.34), "Jacobian"),  # 4.75 apart, spread 1.34: the best is marked
    ((84.00, 0.50), (84.75, 1.34), None),       # 0.75 apart < 1.34: not marked
])
def test_best_is_marked_only_beyond_the_spread(tmp_path, a, b, bold):
    trials = []
    for method, (mean, std) in (("jacobian", a), ("random", b)):
        for seed, v in enumerate(_two_seeds(mean, std)):
            trials.append({"key": f"{method}{seed}", "status": "ok",
                           "config": {"method": method, "seed": seed, "cell": "gru"},
                           "metrics": {"val_error_pct": v}})
    res = StudyResults(path=tmp_path, spec={"name": "s", "grid": {
        "cell": ["gru"], "method": ["jacobian", "random"]}}, trials=tuple(trials))
    t = results_table(res, rows="cell", cols="method", metric="val_error_pct")
    assert t.cells["std"].tolist() == pytest.approx([a[1], b[1]])
    assert t.cells.loc[t.cells["best"], "col"].tolist() == ([bold] if bold else [])
    assert "differs from the next best by more than the larger of their stds" in (
        table_markdown(t))


def test_ir_ratio_bars_write_infinite_and_undefined_as_the_tables_do():
    ax = Figure().subplots()
    ir_ratio_bars(ax, {"a": 0.25, "b": math.inf, "c": None}, dense_ir_ratio=0.07)
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["0.25", "∞", "—"]
    # every bar one colour (colour is not a method here)
    assert len({tuple(p.get_facecolor()) for p in ax.patches}) == 1


@pytest.mark.slow
def test_train_record_anatomy_writes_metrics_when_no_recurrent_weight_is_kept(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("train", "--hidden-size", 8, "--method", "random", "--sparsity", 0.999, "--record",
            "anatomy", "--steps", 1, "--out", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    record = json.loads((out / "metrics.json").read_text())
    m = record["metrics"]
    rows = record["artifacts"]["anatomy"]["rows"]
    assert m["kept_input"] == sum(x["kept"] for x in rows if x["block"] == "input")
    assert m["kept_recurrent"] == sum(x["kept"] for x in rows if x["block"] == "recurrent")
    assert m["kept_input"] + m["kept_recurrent"] == m["kept"]
    # 0.1 % of 3*8*(28+8) = 864 weights: one kept, an input weight, so I/R = 1/0
    assert (m["kept_input"], m["kept_recurrent"]) == (1, 0)
    assert m["ir_ratio"] is None and record["artifacts"]["anatomy"]["summary"]["ir_ratio"] is None
    assert metric_value(record, "ir_ratio") == math.inf
