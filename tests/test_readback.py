"""Files read back (trial results, spec.json, study TOMLs) are trusted only once checked: a
regular file (a FIFO never blocks), decoded with an explicit error path, every field of the
stored format validated by type."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import StudyWarning, load_study, run_study
from tests.study_fake import study_toml

ALLOW = {"allow_trial_code": True}

pytestmark = pytest.mark.filterwarnings("ignore::spectrumkit.study.StudyWarning")


@pytest.fixture
def done_study(tmp_path):
    """A finished fake study: 2 hidden sizes x 1 method x 1 seed, all ok."""
    toml = study_toml(tmp_path, hidden=(8, 16), methods=("random",))
    run = run_study(toml, out=str(tmp_path / "out"), progress=False, **ALLOW)
    assert run.statuses["ok"] == 2
    return toml, run


def _rewrite(path: Path, change) -> dict:
    good = json.loads(path.read_text())
    bad = json.loads(path.read_text())
    change(bad)
    path.write_text(json.dumps(bad))
    return good


@pytest.mark.parametrize("metric", ["abc", [1, 2], "missing", {"a": 1}, True])
def test_a_trial_file_with_an_ill_typed_or_missing_metric_is_a_warning_and_a_rerun(
        done_study, metric):
    from spectrumkit.study.store import read_trial_file

    toml, run = done_study
    key = run.study.keys[0]
    path = run.dir / "trials" / f"{key}.json"

    def change(d):
        if metric == "missing":
            del d["metrics"]["val_error_pct"]
        else:
            d["metrics"]["val_error_pct"] = metric
    good = _rewrite(path, change)
    if metric != "missing":  # a wrong type is wrong for every reader
        data, why = read_trial_file(path, key)
        assert data is None and "val_error_pct" in why and "\n" not in why
    with pytest.warns(StudyWarning, match=rf"corrupt result file {path}: .*val_error_pct"):
        again = run_study(toml, out=str(run.dir.parent), progress=False, **ALLOW)
    assert (again.already_done, again.ran) == (1, 1)
    assert json.loads(path.read_text())["metrics"] == good["metrics"]


def test_a_fifo_at_a_trial_path_is_a_reason_and_never_blocks(done_study):
    from spectrumkit.study.store import read_trial_file

    _, run = done_study
    key = run.study.keys[0]
    path = run.dir / "trials" / f"{key}.json"
    path.unlink()
    os.mkfifo(path)
    data, why = read_trial_file(path, key)  # would block for ever on open()
    assert data is None and why == "not a regular file but a FIFO"


def test_a_fifo_at_a_trial_path_is_refused_by_the_study_in_one_line(done_study, cli):
    toml, run = done_study
    path = run.dir / "trials" / f"{run.study.keys[0]}.json"
    path.unlink()
    os.mkfifo(path)
    line = cli("study", str(toml), "--out", str(run.dir.parent), "--allow-trial-code").error_line()
    assert str(path) in line and "FIFO" in line


def test_a_folder_at_a_trial_path_is_refused_before_any_trial_runs(done_study, cli):
    toml, run = done_study
    key = run.study.keys[0]
    path = run.dir / "trials" / f"{key}.json"
    path.unlink()
    path.mkdir()
    log = run.dir / "logs" / f"{key}.log"
    before = log.read_text()
    with pytest.raises(SpectrumkitError, match=rf"{path} \(a folder\)"):
        run_study(toml, out=str(run.dir.parent), progress=False, **ALLOW)
    assert log.read_text() == before  # the trial did not run again
    line = cli("study", str(toml), "--out", str(run.dir.parent), "--allow-trial-code").error_line()
    assert f"{path} (a folder)" in line


@pytest.mark.parametrize("field,value", [("report", 5), ("row_keys", {"a": 5}),
                                         ("row_keys", [1]), ("keys", "abc"),
                                         ("grid", {"method": 5})])
def test_an_ill_typed_spec_json_is_one_line_in_figures(done_study, cli, field, value):
    _, run = done_study
    spec = run.dir / "spec.json"
    d = json.loads(spec.read_text())
    d[field] = value
    spec.write_text(json.dumps(d))
    line = cli("figures", str(run.dir)).error_line()
    assert str(spec) in line and field in line


def test_a_fifo_at_spec_json_is_one_line_in_figures(done_study, cli):
    _, run = done_study
    spec = run.dir / "spec.json"
    spec.unlink()
    os.mkfifo(spec)
    line = cli("figures", str(run.dir)).error_line()
    assert str(spec) in line and "FIFO" in line


def test_a_study_toml_that_is_not_utf8_is_one_line_naming_it(tmp_path, cli):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(SpectrumkitError, match=rf"{bad} \(not UTF-8: byte 0xff at offset 0\)"):
        load_study(bad)
    line = cli("study", str(bad)).error_line()
    assert str(bad) in line and "not UTF-8" in line


def test_a_fifo_given_as_a_study_toml_is_one_line(tmp_path, cli):
    fifo = tmp_path / "f.toml"
    os.mkfifo(fifo)
    line = cli("study", str(fifo)).error_line()
    assert str(fifo) in line
