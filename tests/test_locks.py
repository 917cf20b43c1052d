"""One run per output folder: ``study`` and ``train`` lock theirs (``FOLDER/.lock``, filelock).

A second run into a locked folder is refused at once with one line (exit 2) and writes nothing;
the lock goes with its process, kill -9 included. ``train``'s ``metrics.json`` is written last:
where it exists, the outputs beside it are of its run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from tests.study_fake import expected_error

FAKE_STUDY = """name = "fake"
[grid]
hidden_size = [8]
method = ["random"]
[fixed]
trial = "tests.study_fake:run"
epochs = 1
[presets.quick]
seeds = 1
[report]
table = { rows = "hidden_size", cols = "method", metric = "val_error_pct" }
"""

TRAIN = ("train", "--cell", "gru", "--hidden-size", "4", "--data", "seq-mnist", "--data-option",
         "limit=16", "--data-option", "val_limit=8", "--steps", "2", "--batch-size", "8",
         "--method", "random", "--sparsity", "0.5", "--device", "cpu")


def _study(cli, tmp_path: Path, out: Path):
    toml = tmp_path / "fake.toml"
    toml.write_text(FAKE_STUDY)
    return cli("study", toml, "--out", out, "--allow-trial-code")


def test_a_study_folder_in_use_is_refused_in_one_line(cli, tmp_path):
    out = tmp_path / "out"
    (out / "fake").mkdir(parents=True)
    with FileLock(out / "fake" / ".lock", timeout=0):  # another run holds the study folder
        r = _study(cli, tmp_path, out)
        assert r.error_line() == (f"error: run_study: expected no other run using the study "
                                  f"folder, got {out / 'fake'} locked by another process")
        assert not list((out / "fake").glob("trials/*.json"))
    _study(cli, tmp_path, out).ok()  # released: the run proceeds
    (result,) = [json.loads(p.read_text()) for p in (out / "fake" / "trials").glob("*.json")]
    assert result["metrics"]["val_error_pct"] == expected_error(8, 0, "random") == 2.0


def test_a_lock_is_released_when_its_process_is_killed(cli, tmp_path):
    """A lock held by another process refuses the run; after kill -9 of it the run proceeds."""
    out = tmp_path / "out"
    (out / "fake").mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from filelock import FileLock; lock = FileLock("
         f"{str(out / 'fake' / '.lock')!r}); lock.acquire(); print('held', flush=True); "
         "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert "locked by another process" in _study(cli, tmp_path, out).error_line()
        holder.kill()
        holder.wait()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()
    _study(cli, tmp_path, out).ok()


def test_a_train_folder_in_use_is_refused_and_left_as_it_was(cli, tmp_path):
    out = tmp_path / "run"
    cli(*TRAIN, "--out", out).ok()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"history.csv", "metrics.json", "mask.pt"} <= set(before)
    with FileLock(out / ".lock", timeout=0):  # a concurrent train into the same --out
        r = cli(*TRAIN, "--seed", "1", "--no-resume", "--out", out)
        assert r.error_line() == (f"error: spectrumkit train --out: expected no other run using "
                                  f"the output folder, got {out} locked by another process")
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    cli(*TRAIN, "--seed", "1", "--no-resume", "--out", out).ok()
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1


def test_train_writes_metrics_json_last(cli, tmp_path, monkeypatch):
    """A run that fails while writing its outputs leaves no ``metrics.json`` (the completion
    record) beside a history of another run."""
    import spectrumkit._io as io

    out = tmp_path / "run"
    cli(*TRAIN, "--out", out).ok()
    assert (out / "metrics.json").is_file()
    real = io.write_text_atomic

    def failing(path, text, *a, **k):
        if Path(path).name == "history.csv":
            raise OSError(28, "No space left on device", str(path))
        return real(path, text, *a, **k)

    monkeypatch.setattr(io, "write_text_atomic", failing)
    r = cli(*TRAIN, "--steps", "3", "--resume", "--out", out)
    assert r.error_line() == f"error: {out / 'history.csv'}: No space left on device"
    assert not (out / "metrics.json").exists()
