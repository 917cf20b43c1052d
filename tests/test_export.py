"""`spectrumkit export`: a finished train run into torch.nn modules and safetensors, round trip."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spectrumkit import load_masks, load_task, make_model

safetensors = pytest.importorskip("safetensors")

TASK = {"T": 5, "n_train": 32, "n_val": 16, "n_test": 16}
NN = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN, "rnn_relu": torch.nn.RNN}


def _train(out: Path, cell: str) -> Path:
    from click.testing import CliRunner

    from spectrumkit.cli import main

    args = ["train", "--data", "adding", *sum((["--data-option", f"{k}={v}"]
                                               for k, v in TASK.items()), []),
            "--cell", cell, "--hidden-size", "6", "--steps", "3", "--batch-size", "8",
            "--method", "random", "--sparsity", "0.5", "--seed", "1", "--device", "cpu",
            "--out", str(out)]
    r = CliRunner().invoke(main, args, prog_name="spectrumkit")
    assert r.exit_code == 0, (r.output, r.exception)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {cell: _train(root / cell, cell) for cell in (*NN, "peephole_lstm")}


def _toolkit_model(run: Path, cell: str):
    model = make_model(load_task("adding", **TASK), cell, 6, seed=1)
    ck = torch.load(run / "checkpoint" / "checkpoint.pt", weights_only=True)
    model.load_state_dict(ck["model"])
    return model


def _xs(seed: int) -> torch.Tensor:
    return torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(seed))  # (B, T, D)


def _compare(module: torch.nn.Module, readout: dict, model, cell: str) -> None:
    xs = _xs(0)
    with torch.no_grad():
        seq, _ = module(xs.transpose(0, 1))  # (T, B, N)
        toolkit_h = model.cell.output(model.states(xs.transpose(0, 1)))[1:]
        pred = (seq[-1] @ readout["head.weight"].T + readout["head.bias"]).squeeze(-1)  # (B,)
        torch.testing.assert_close(seq, toolkit_h, atol=1e-6, rtol=0)
        torch.testing.assert_close(pred, model(xs), atol=1e-6, rtol=0)


def _run_mask(run):
    """The mask the run trained with, as ``spectrumkit train`` wrote it (one method per file)."""
    masks, _ = load_masks(run / "mask.pt")
    (mask,) = masks.values()
    return mask


@pytest.mark.parametrize("cell", list(NN))
def test_torch_export_loads_into_the_torch_nn_twin_with_equal_outputs(cli, runs, cell, tmp_path):
    out = tmp_path / "net.pt"
    cli("export", runs[cell], "--format", "torch", "--out", out).ok()
    d = torch.load(out, weights_only=True)
    assert d["module"] == NN[cell].__name__ and d["cell"] == cell
    module = getattr(torch.nn, d["module"])(**d["kwargs"])
    module.load_state_dict(d["state_dict"])  # strict: exactly the twin's parameters
    if cell.startswith("rnn"):
        assert module.nonlinearity == ("relu" if cell == "rnn_relu" else "tanh")
    _compare(module, d["readout"], _toolkit_model(runs[cell], cell), cell)
    run_mask = _run_mask(runs[cell])
    assert set(d["mask"]) == {f"{k}_l0" for k in run_mask}
    for k, m in run_mask.items():
        assert torch.equal(d["mask"][f"{k}_l0"], m)
        w = d["state_dict"][f"{k}_l0"]
        assert torch.count_nonzero(w[~m]) == 0  # pruned weights are exactly zero
    kept = sum(int(m.sum()) for m in run_mask.values())
    assert kept == sum(m.numel() for m in run_mask.values()) // 2  # sparsity 0.5, global


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_safetensors_export_holds_the_weights_and_the_run_mask(cli, runs, cell, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file
    from safetensors.torch import load_file as load_torch

    out = tmp_path / "net.safetensors"
    cli("export", runs[cell], "--format", "safetensors", "--out", out).ok()
    arrays = load_file(out)
    run_mask = _run_mask(runs[cell])
    for k, m in run_mask.items():
        assert arrays[f"mask.{k}_l0"].dtype == np.bool_
        np.testing.assert_array_equal(arrays[f"mask.{k}_l0"], m.numpy())
    with safe_open(out, "pt") as f:
        meta = f.metadata()
    assert meta["module"] == NN[cell].__name__ and meta["cell"] == cell
    tensors = load_torch(out)
    module = NN[cell](int(meta["input_size"]), int(meta["hidden_size"]),
                      **({"nonlinearity": meta["nonlinearity"]} if cell == "rnn" else {}))
    module.load_state_dict({k: v for k, v in tensors.items()
                            if not k.startswith(("mask.", "readout."))})
    readout = {k.removeprefix("readout."): v for k, v in tensors.items()
               if k.startswith("readout.")}
    _compare(module, readout, _toolkit_model(runs[cell], cell), cell)


def test_export_of_a_cell_without_a_torch_nn_twin_is_one_line(cli, runs, tmp_path):
    line = cli("export", runs["peephole_lstm"], "--out", tmp_path / "x.pt").error_line()
    assert "torch.nn twin" in line and "'peephole_lstm'" in line
    assert not (tmp_path / "x.pt").exists()


def test_export_of_a_run_without_a_finished_result_is_one_line(cli, runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["gru"], run)
    record = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**record, "status": "diverged"}))
    line = cli("export", run, "--out", tmp_path / "x.pt").error_line()
    assert "status ok" in line and "'diverged'" in line
    (run / "metrics.json").unlink()  # interrupted: a checkpoint but no result
    line = cli("export", run, "--out", tmp_path / "x.pt").error_line()
    assert "without metrics.json" in line
    (run / "metrics.json").write_text(json.dumps(record))
    shutil.rmtree(run / "checkpoint")  # --no-resume: no weights kept
    line = cli("export", run, "--out", tmp_path / "x.pt").error_line()
    assert "checkpoint/checkpoint.pt" in line
    (run / "trials").mkdir()  # a study folder
    line = cli("export", run, "--out", tmp_path / "x.pt").error_line()
    assert "study trials store no weights" in line
    assert not (tmp_path / "x.pt").exists()


def test_safetensors_export_without_safetensors_is_one_line(cli, runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    line = cli("export", runs["gru"], "--format", "safetensors",
               "--out", tmp_path / "x.safetensors").error_line()
    assert "spectrumkit[safetensors]" in line
