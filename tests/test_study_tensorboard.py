"""`spectrumkit study NAME --log tensorboard`: one live run per trial whose scalars equal the
trial's stored history and whose singular-value histograms equal its recorded sv_hist."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from spectrumkit.study import run_study

pytest.importorskip("tensorboard")

STUDY = """name = "tbs"
[grid]
method = ["random"]
[fixed]
hidden_size = 6
steps = 4
eval_every = 2
batch_size = 16
score_batch = 16
lr = 0.002
record = ["sv_hist", "anatomy"]
data = { limit = 64, val_limit = 32 }
[presets.quick]
seeds = 1
[report]
table = { rows = "method", metric = "val_error_pct" }
"""


def _events(logdir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    ea = EventAccumulator(str(logdir), size_guidance={"tensors": 0, "histograms": 0})
    ea.Reload()
    scalars = {tag: {e.step: float(tensor_util.make_ndarray(e.tensor_proto))
                     for e in ea.Tensors(tag)} for tag in ea.Tags()["tensors"]}
    hists = {e.step: e.histogram_value for e in ea.Histograms("sv_hist")}
    return scalars, hists


@pytest.mark.slow
def test_study_log_tensorboard_equals_the_stored_history_and_sv_hist(tmp_path, cli):
    toml = tmp_path / "tbs.toml"
    toml.write_text(STUDY)
    cli("study", toml, "--out", tmp_path / "out", "--device", "cpu", "--threads", "1",
        "--log", "tensorboard", "--no-figures").ok()
    (trial,) = (json.loads(p.read_text()) for p in (tmp_path / "out/tbs/trials").glob("*.json"))
    scalars, hists = _events(tmp_path / "out/tbs/tensorboard" / trial["key"])
    hist = trial["history"]
    assert hist["step"] == [2, 4]
    for col in hist:
        if col != "step":
            assert scalars[col] == dict(zip(hist["step"], map(float, hist[col]))), col
    assert scalars["lr"] == {2: 0.002, 4: 0.002}
    m = trial["metrics"]
    assert scalars["mask/ir_ratio"] == {0: m["ir_ratio"]}
    assert {k: v[0] for k, v in scalars.items() if k.startswith("mask/gate_share/")} == \
        pytest.approx({f"mask/gate_share/{g}": m[f"share_{g}"] for g in "rzn"}, abs=1e-15)
    # the histogram at step 0 is the record at initialization, at the last evaluation the
    # record after training, bin for bin
    assert sorted(hists) == [0, 2, 4]
    for step, rec in ((0, trial["artifacts"]["sv_hist"]["init"]),
                      (4, trial["artifacts"]["sv_hist"]["trained"])):
        h = hists[step]
        assert list(h.bucket) == rec["counts"] and list(h.bucket_limit) == rec["edges"][1:]
        assert (h.min, h.max, h.num) == (rec["edges"][0], rec["edges"][-1], rec["n"])
        assert scalars["sv_mean"][step] == rec["mean"]
    assert math.isnan(hists[0].sum_squares)
    # logging changes no number: the same study without it stores the same history
    cli("study", toml, "--out", tmp_path / "plain", "--device", "cpu", "--threads", "1",
        "--no-figures").ok()
    plain = json.loads((tmp_path / "plain/tbs/trials" / f"{trial['key']}.json").read_text())
    drop = {"seconds"}
    assert {k: v for k, v in plain["history"].items() if k not in drop} == \
        {k: v for k, v in hist.items() if k not in drop}


def test_study_log_tensorboard_without_tensorboard_is_one_line(tmp_path, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    toml = tmp_path / "tbs.toml"
    toml.write_text(STUDY)
    line = cli("study", toml, "--out", tmp_path / "out", "--log", "tensorboard").error_line()
    assert "spectrumkit[tensorboard]" in line and "--log tensorboard" in line
    assert not (tmp_path / "out").exists()


def test_study_log_tensorboard_with_ray_is_one_line(tmp_path, cli):
    toml = tmp_path / "tbs.toml"
    toml.write_text(STUDY)
    line = cli("study", toml, "--out", tmp_path / "out", "--log", "tensorboard",
               "--executor", "ray").error_line()
    assert "--executor ray" in line and "study tensorboard" in line
