"""`spectrumkit study export`: one row per trial, equal frames from CSV and Parquet, stored values."""

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from spectrumkit.study import run_study
from spectrumkit.study.config import flat_config
from spectrumkit.study.export import export_table, read_table, trial_table

pytest.importorskip("pyarrow")

FAKE = "tests.study_fake:run"


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    """A tiny study with the stand-in trial: 2 sizes x 2 methods, one diverged (lr = 10)."""
    toml = tmp_path / "fake.toml"
    toml.write_text(f"""name = "fake"
[grid]
hidden_size = [8, 16]
method = ["random", "snip"]
[fixed]
trial = "{FAKE}"
epochs = 1
data = {{}}
[presets.quick]
seeds = 1
[presets.quick.grid]
lr = [0.001, 10.0]
[report]
table = {{ rows = "hidden_size", cols = "method", metric = "val_error_pct" }}
""")
    run = run_study(str(toml), out=str(tmp_path / "out"), allow_trial_code=True)
    return run.dir


def _stored(study_dir: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (study_dir / "trials").glob("*.json")}


def test_csv_and_parquet_exports_give_equal_frames_with_dtypes(cli, study_dir, tmp_path):
    csv, pq = tmp_path / "t.csv", tmp_path / "t.parquet"
    cli("study", "export", study_dir, "--format", "csv", "--out", csv).ok()
    cli("study", "export", study_dir, "--format", "parquet", "--out", pq).ok()
    from_pq = pd.read_parquet(pq)
    plain_csv = pd.read_csv(csv, dtype={"key": str, "study": str, "status": str, "error": str},
                            keep_default_na=False, na_values=[""])
    pd.testing.assert_frame_equal(from_pq, plain_csv, check_dtype=True, check_exact=True)
    pd.testing.assert_frame_equal(read_table(csv), read_table(pq), check_exact=True)
    pd.testing.assert_frame_equal(trial_table(study_dir), from_pq, check_exact=True)
    assert from_pq["hidden_size"].dtype == "int64" and from_pq["lr"].dtype == "float64"
    assert from_pq["include_bias"].dtype == bool


def test_exported_rows_equal_the_stored_trial_files(study_dir, tmp_path):
    stored = _stored(study_dir)
    frame = pd.read_parquet(export_table(study_dir, tmp_path / "t.parquet", "parquet"))
    assert list(frame["key"]) == sorted(stored)
    assert len(stored) == 8
    for row in frame.to_dict("records"):
        trial = stored[row["key"]]
        assert row["status"] == trial["status"] and row["study"] == trial["study"] == "fake"
        flat = flat_config(trial["config"])
        for field in ("hidden_size", "seed", "lr", "cell", "init", "sparsity", "method", "trial",
                      "include_bias", "epochs", "batch_size"):
            assert row[field] == flat[field], (field, row[field], flat[field])
        assert json.loads(row["score_options"]) == flat["score_options"]
        for name, value in trial["metrics"].items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert math.isnan(row[name]), (name, row[name])
            else:
                assert row[name] == value, (name, row[name], value)
    statuses = sorted(frame["status"])
    assert statuses == ["diverged"] * 4 + ["ok"] * 4


def test_parquet_export_without_pyarrow_is_one_line(cli, study_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    line = cli("study", "export", study_dir, "--format", "parquet",
               "--out", tmp_path / "t.parquet").error_line()
    assert "pyarrow" in line and "spectrumkit[parquet]" in line
    assert not (tmp_path / "t.parquet").exists()


def test_study_export_of_a_folder_without_trials_is_one_line(cli, tmp_path):
    (tmp_path / "empty" / "trials").mkdir(parents=True)
    line = cli("study", "export", tmp_path / "empty", "--out", tmp_path / "t.csv").error_line()
    assert "at least one stored trial" in line
    line = cli("study", "export", tmp_path / "nothing", "--out", tmp_path / "t.csv").error_line()
    assert "trials/" in line
