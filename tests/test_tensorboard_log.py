"""TensorBoard curves of a run: the event files' scalars equal history.csv, value for value."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from spectrumkit.config import TrainingConfig
from spectrumkit import load_masks, load_task, make_model, train

pytest.importorskip("tensorboard")

TASK = {"T": 5, "n_train": 32, "n_val": 16, "n_test": 16}
DATA = sum((["--data-option", f"{k}={v}"] for k, v in TASK.items()), [])


def _scalars(logdir: Path) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of every float64 scalar in the event files of ``logdir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    ea = EventAccumulator(str(logdir), size_guidance={"tensors": 0, "scalars": 0})
    ea.Reload()
    out = {}
    for tag in ea.Tags()["tensors"]:
        events = ea.Tensors(tag)
        assert all(e.tensor_proto.dtype == 2 for e in events), tag  # DT_DOUBLE: exact
        out[tag] = {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events}
    return out


@pytest.mark.slow
def test_train_log_tensorboard_scalars_equal_history_csv(cli, tmp_path):
    out = tmp_path / "run"
    cli("train", "--data", "adding", *DATA, "--cell", "gru", "--hidden-size", "6", "--steps", "6",
        "--eval-every", "2", "--batch-size", "8", "--method", "random", "--sparsity", "0.5",
        "--lr", "0.002", "--seed", "1", "--device", "cpu", "--log", "tensorboard",
        "--out", out).ok()
    history = pd.read_csv(out / "history.csv")
    assert list(history["step"]) == [2, 4, 6]
    got = _scalars(out / "tensorboard")
    columns = [c for c in history.columns if c != "step"]
    assert set(columns) <= set(got) and "val_mse" in columns and "train_loss" in columns
    for col in columns:
        expected = dict(zip(history["step"].astype(int), history[col].astype(float)))
        assert got[col] == expected, col  # exact: float64 both ways
    assert got["lr"] == {2: 0.002, 4: 0.002, 6: 0.002}
    # the mask, once at step 0: I/R and the gates' shares of the kept weights (G = 3, N = 6)
    (mask,) = load_masks(out / "mask.pt")[0].values()  # the one mask file format
    ih, hh = int(mask["weight_ih"].sum()), int(mask["weight_hh"].sum())
    assert got["mask/ir_ratio"] == {0: ih / hh}
    per_gate = [int(mask["weight_ih"][g * 6:(g + 1) * 6].sum() + mask["weight_hh"][g * 6:(g + 1) * 6]
                    .sum()) for g in range(3)]
    for gate, kept in zip(("r", "z", "n"), per_gate):
        assert got[f"mask/gate_share/{gate}"] == {0: pytest.approx(kept / (ih + hh), abs=1e-15)}
    assert sum(v[0] for k, v in got.items() if k.startswith("mask/gate_share/")) == \
        pytest.approx(1.0, abs=1e-12)


def test_the_callback_logs_each_evaluation_as_it_happens(tmp_path):
    from spectrumkit.tensorboard_log import TensorBoardLog

    task = load_task("adding", **TASK)
    model = make_model(task, "lstm", 5, seed=0)
    log = TensorBoardLog(tmp_path / "tb", lr=1e-3)
    seen = {}

    def callback(info):
        log(info)
        if "row" in info:  # the evaluation is on disk before training goes on
            seen[info["step"]] = _scalars(tmp_path / "tb")["val_mse"]

    r = train(model, task, training=TrainingConfig(steps=6, eval_every=3, batch_size=8), seed=0, device="cpu",
              callback=callback)
    rows = r.history.to_dict(orient="records")
    assert sorted(seen) == [3, 6]
    assert seen[3] == {3: rows[0]["val_mse"]}
    assert seen[6] == {3: rows[0]["val_mse"], 6: rows[1]["val_mse"]}
    log.finish(r.history)
    assert _scalars(tmp_path / "tb")["train_loss"] == {3: rows[0]["train_loss"],
                                                       6: rows[1]["train_loss"]}


def test_the_training_callback_carries_each_history_row(tmp_path):
    task = load_task("adding", **TASK)
    model = make_model(task, "gru", 4, seed=0)
    infos = []
    r = train(model, task, training=TrainingConfig(steps=5, eval_every=2, batch_size=8), seed=0, device="cpu",
              callback=infos.append)
    assert [i["step"] for i in infos] == [1, 2, 3, 4, 5]
    rows = [i["row"] for i in infos if "row" in i]
    assert [i["step"] for i in infos if "row" in i] == [2, 4, 5]
    pd.testing.assert_frame_equal(pd.DataFrame(rows), r.history)
    assert all(np.isfinite(i["loss"]) for i in infos)


def test_log_tensorboard_without_tensorboard_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    out = tmp_path / "run"
    line = cli("train", "--data", "adding", *DATA, "--hidden-size", "4", "--steps", "2",
               "--batch-size", "8", "--device", "cpu", "--log", "tensorboard",
               "--out", out).error_line()
    assert "spectrumkit[tensorboard]" in line and "--log tensorboard" in line
    assert not (out / "history.csv").exists()


def anatomy_trial(config, ctx):
    """A stand-in trial with a history and the anatomy record's metrics (closed form)."""
    h = config.hidden_size
    return {"status": "ok", "device": "cpu",
            "metrics": {"val_loss": h / 100, "ir_ratio": h / 7, "share_r": 0.25, "share_z": 0.5,
                        "share_n": 0.25},
            "history": {"step": [2, 4], "epoch": [0.5, 1.0], "train_loss": [h / 3, h / 9],
                        "val_loss": [h / 11, h / 13]}}


def test_study_tensorboard_writes_one_run_per_trial_equal_to_the_stored_history(cli, tmp_path):
    import json

    from spectrumkit.study import run_study

    toml = tmp_path / "tb.toml"
    toml.write_text("""name = "tb"
[grid]
hidden_size = [8, 16]
[fixed]
trial = "tests.test_tensorboard_log:anatomy_trial"
epochs = 1
lr = 0.003
[presets.quick]
seeds = 1
[report]
table = { rows = "hidden_size", metric = "val_loss" }
""")
    run = run_study(str(toml), out=str(tmp_path / "out"), allow_trial_code=True)
    cli("study", "tensorboard", run.dir, "--out", tmp_path / "tb").ok()
    stored = [json.loads(p.read_text()) for p in (run.dir / "trials").glob("*.json")]
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == sorted(t["key"] for t in stored)
    for t in stored:
        got = _scalars(tmp_path / "tb" / t["key"])
        hist = t["history"]
        for col in ("epoch", "train_loss", "val_loss"):
            assert got[col] == dict(zip(hist["step"], hist[col])), col
        assert got["lr"] == {2: 0.003, 4: 0.003}
        assert got["mask/ir_ratio"] == {0: t["config"]["hidden_size"] / 7}
        assert {k: v[0] for k, v in got.items() if k.startswith("mask/gate_share/")} == \
            {"mask/gate_share/r": 0.25, "mask/gate_share/z": 0.5, "mask/gate_share/n": 0.25}
    line = cli("study", "tensorboard", run.dir, "--out", tmp_path / "tb").error_line()
    assert "a new or empty folder" in line
