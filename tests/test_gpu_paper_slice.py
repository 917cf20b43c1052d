"""benchmarks/gpu_paper_slice.sh: its CPU dry run prints the table and the per-trial lines of the
trial results it stored; without CUDA the real run is one line and exit status 0."""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_paper_slice.sh"


def _run(env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
@pytest.mark.slow
def test_without_cuda_the_slice_is_one_line_and_exit_zero():
    r = _run({"GPU_SLICE_DRY": "0"}, 120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["gpu_paper_slice: skipped: no CUDA device visible to torch "
                                     "(torch.cuda.is_available() is False)"]


@pytest.mark.slow
def test_dry_run_prints_the_table_and_trials_it_stored(tmp_path):
    r = _run({"GPU_SLICE_DRY": "1", "GPU_SLICE_OUT": str(tmp_path)}, 600)
    assert r.returncode == 0, r.stdout + r.stderr
    trials = [json.loads(p.read_text())
              for p in sorted((tmp_path / "slice" / "gpu-paper-slice" / "trials").glob("*.json"))]
    assert len(trials) == 6 and {t["status"] for t in trials} == {"ok"}
    assert {(t["config"]["score"]["method"], t["config"]["seed"]) for t in trials} == \
        {(m, s) for m in ("jacobian", "random") for s in range(3)}
    assert {(t["config"]["hidden_size"], t["config"]["init"], t["metrics"]["steps"])
            for t in trials} == {(16, "glorot", 20)}
    # the table: mean ± std (ddof=1) of the stored validation errors, per method
    row = re.search(r"^\| glorot \| (\S+) ± (\S+) \(n=3\) \| (\S+) ± (\S+) \(n=3\) \|$", r.stdout,
                    re.MULTILINE)
    assert row is not None, r.stdout
    for i, method in enumerate(("jacobian", "random")):
        errs = [t["metrics"]["val_error_pct"] for t in trials
                if t["config"]["score"]["method"] == method]
        assert float(row.group(2 * i + 1)) == pytest.approx(statistics.mean(errs), abs=0.006)
        assert float(row.group(2 * i + 2)) == pytest.approx(statistics.stdev(errs), abs=0.006)
    # one line per trial: its epochs, steps, time per step and error, as stored
    for t in trials:
        m = t["metrics"]
        line = (f"gpu_paper_slice:   {t['config']['score']['method']:<9} {t['config']['seed']} "
                f"{m['epochs']:.4f} {m['steps']} {m['train_seconds'] / m['steps'] * 1e3:.2f} "
                f"{m['val_error_pct']:.2f}")
        assert line in r.stdout.splitlines(), line
    # epochs reached: 20 steps of batches of 64 over 63,000 digits (the authors' split of the full
    # MNIST) or over the bundled 8,000
    n_train = 8000 if "bundled" in r.stdout.splitlines()[0] else 63000
    epochs = 20 / math.ceil(n_train / 64)
    assert {round(t["metrics"]["epochs"], 12) for t in trials} == {round(epochs, 12)}
    assert f"epochs reached {epochs:.4f}-{epochs:.4f}; time per step " in r.stdout
