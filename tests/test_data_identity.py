"""Data identity (NOTE [Data identity]): the trial key and every result name the data a trial
used, by its files' fingerprint, not by where they lie."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import StudyWarning, run_study, trial_key
from tests.study_fake import study_toml

ALLOW = {"allow_trial_code": True}


def _idx(path: Path, arr) -> None:
    import struct

    import numpy as np
    a = np.asarray(arr, dtype=np.uint8)
    path.write_bytes(bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
                     + a.tobytes())


def _mnist_root(root: Path, fill: int = 0) -> Path:
    import numpy as np
    root.mkdir(parents=True)
    for prefix, n in (("train", 6), ("t10k", 3)):
        _idx(root / f"{prefix}-images-idx3-ubyte", np.full((n, 28, 28), fill))
        _idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return root


def test_data_identity_bundled_root_and_fingerprint(tmp_path):
    """The data identity is 'bundled' or a root's file fingerprint; the root path itself is not
    part of it (the same files elsewhere are the same data)."""
    from spectrumkit.data import data_identity

    bundled = data_identity("seq-mnist", None)
    assert bundled["source"] == "bundled" and len(bundled["fingerprint"]) == 64
    a = data_identity("seq-mnist", _mnist_root(tmp_path / "a"))
    assert a["source"] == "root" and a["fingerprint"] != bundled["fingerprint"]
    b = tmp_path / "b"
    shutil.copytree(tmp_path / "a", b)                 # same bytes, other path, other mtimes
    os.utime(b / "train-images-idx3-ubyte", (1, 1))
    assert data_identity("seq-mnist", b) == a
    c = _mnist_root(tmp_path / "c", fill=7)            # same names and sizes, other pixels
    assert data_identity("seq-mnist", c)["fingerprint"] != a["fingerprint"]
    assert data_identity("adding", None) == {"source": "generated", "fingerprint": None}
    with pytest.raises(SpectrumkitError, match="data_identity: expected MNIST train images at "
                                               "one of: .*nonexistent"):
        data_identity("seq-mnist", tmp_path / "nonexistent")
    with pytest.raises(SpectrumkitError, match="root=None for the synthetic task 'adding'"):
        data_identity("adding", tmp_path / "a")


def test_the_key_and_the_result_depend_on_the_data(tmp_path):
    """A --data-root run is other trials than a bundled-data run (never 'already done'), and each
    result says which data it used."""
    from spectrumkit.data import data_identity
    from spectrumkit.study.config import TrialConfig

    cfg = TrialConfig(epochs=1, method="random", hidden_size=8)
    root = _mnist_root(tmp_path / "mnist")
    ident = data_identity("seq-mnist", root)
    assert trial_key(cfg) == trial_key(cfg, data=data_identity("seq-mnist", None))
    assert trial_key(cfg, data=ident) != trial_key(cfg)
    toml = study_toml(tmp_path, hidden=(8,))
    out = tmp_path / "out"
    a = run_study(toml, out=str(out), progress=False, **ALLOW)
    b = run_study(toml, out=str(out), data_root=str(root), progress=False, **ALLOW)
    assert (b.already_done, b.ran) == (0, 1) and a.study.keys != b.study.keys
    assert b.study.keys == [trial_key(c, data=ident) for c in b.study.configs]
    ra = json.loads((a.dir / "trials" / f"{a.study.keys[0]}.json").read_text())
    rb = json.loads((b.dir / "trials" / f"{b.study.keys[0]}.json").read_text())
    # the fake trial does not describe its data (the real one does: the next test)
    assert ra["data"] == {**data_identity("seq-mnist", None), "root": None, "description": None}
    assert rb["data"] == {**ident, "root": str(root), "description": None}
    # the same files under another path are the same data: nothing runs again
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    c = run_study(toml, out=str(out), data_root=str(moved), progress=False, **ALLOW)
    assert (c.already_done, c.ran) == (1, 0)
    # a result whose data block was edited no longer matches its key: warned and rerun
    p = b.dir / "trials" / f"{b.study.keys[0]}.json"
    p.write_text(json.dumps({**rb, "data": {**rb["data"], "fingerprint": "0" * 64}}))
    with pytest.warns(StudyWarning, match="its config and data do not hash to its key"):
        d = run_study(toml, out=str(out), data_root=str(root), progress=False, **ALLOW)
    assert d.ran == 1


def test_real_trial_records_its_data_description(tmp_path):
    """Every result says which data the trial used (the loader's description)."""
    toml = tmp_path / "real.toml"
    toml.write_text("""
name = "real"
[fixed]
method = "magnitude"
hidden_size = 4
steps = 0
score_batch = 8
data = { limit = 16, val_limit = 8 }
[presets.quick]
seeds = 1
[report]
table = { rows = "method", metric = "val_error_pct" }
""")
    run = run_study(toml, out=str(tmp_path / "out"), device="cpu", threads=1, progress=False)
    r = json.loads((run.dir / "trials" / f"{run.study.keys[0]}.json").read_text())
    assert r["status"] == "ok", r["error"]
    assert r["data"]["source"] == "bundled" and r["data"]["root"] is None
    assert r["data"]["description"].startswith("seq-MNIST (row")
    assert "train 16, val 8" in r["data"]["description"]
