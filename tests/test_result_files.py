"""Result files: one reader (``read_trial_file``) that turns every ill-formed trial file into a
reason, a warning and a rerun; and figures and tables that read only the trials of the resolved
study, and say what they left out."""

from __future__ import annotations

import json

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import StudyWarning, run_study
from tests.study_fake import expected_error, study_toml

ALLOW = {"allow_trial_code": True}


def _bad_variants(good: dict) -> dict[str, bytes]:
    def dump(d):
        return json.dumps(d).encode()
    return {
        "not-utf8": b"\xff\xfe\x00\x80 not text",
        "latin1-in-json": dump(good).replace(b'"ok"', b'"ok\xe9"'),
        "truncated": dump(good)[:40],
        "empty": b"",
        "array": b"[1, 2, 3]",
        "number": b"5",
        "config-5": dump({**good, "config": 5}),
        "config-list": dump({**good, "config": [1, 2]}),
        "no-status": dump({k: v for k, v in good.items() if k != "status"}),
        "no-config": dump({k: v for k, v in good.items() if k != "config"}),
        "bad-status": dump({**good, "status": 7}),
        "metrics-5": dump({**good, "metrics": 5}),
        "history-list": dump({**good, "history": [1]}),
        "artifacts-str": dump({**good, "artifacts": "x"}),
        "other-key": dump({**good, "key": "0" * 64}),
        "schema-0": dump({**good, "schema_version": 0}),
        "nan": dump(good).replace(b'"ok"', b"NaN", 1),
    }


@pytest.fixture
def done_study(tmp_path):
    """A finished fake study: 2 hidden sizes x 2 methods x 1 seed, all ok."""
    toml = study_toml(tmp_path, hidden=(8, 16), methods=("jacobian", "random"))
    run = run_study(toml, out=str(tmp_path / "out"), progress=False, **ALLOW)
    assert run.statuses["ok"] == 4
    return toml, run


def test_one_reader_turns_every_ill_formed_trial_file_into_a_reason(done_study):
    """read_trial_file never raises; it names why a file cannot be used."""
    from spectrumkit.study.store import read_trial_file

    _, run = done_study
    key = run.study.keys[0]
    path = run.dir / "trials" / f"{key}.json"
    good = json.loads(path.read_text())
    data, why = read_trial_file(path, key)
    assert data == good and why is None
    for name, raw in _bad_variants(good).items():
        path.write_bytes(raw)
        data, why = read_trial_file(path, key)
        assert data is None and isinstance(why, str) and why, name
        assert "\n" not in why, name
    path.unlink()
    assert read_trial_file(path, key) == (None, None)  # absent: no result, nothing to say


@pytest.mark.parametrize("variant", ["not-utf8", "latin1-in-json", "truncated", "config-5",
                                     "no-status", "metrics-5", "nan"])
def test_ill_formed_trial_file_is_a_warning_and_a_rerun(done_study, variant):
    """A non-UTF-8 (or otherwise ill-formed) result file is a warning naming the file, and its
    trial runs again; the figures skip it with a warning."""
    from spectrumkit.figures import render

    toml, run = done_study
    key = run.study.keys[1]
    path = run.dir / "trials" / f"{key}.json"
    good = json.loads(path.read_text())
    path.write_bytes(_bad_variants(good)[variant])
    with pytest.warns(StudyWarning, match=rf"corrupt result file {path}: .*the trial again"):
        paths = render(run.dir, formats="png")
    assert [p.name for p in paths] == ["paper.md", "paper.tex", "paper.csv"]
    md = (run.dir / "tables" / "paper.md").read_text()
    assert "n=1" in md  # the three good trials, one seed each; the bad one is left out
    with pytest.warns(StudyWarning, match=rf"corrupt result file {path}"):
        again = run_study(toml, out=str(run.dir.parent), progress=False, **ALLOW)
    assert (again.already_done, again.ran) == (3, 1)
    assert json.loads(path.read_text())["metrics"] == good["metrics"]


# ------------------------------------------------------- figures read the resolved study only


def test_figures_and_paper_table_pool_only_the_resolved_trials(tmp_path):
    """After a paper run (3 seeds) and a quick run (1 seed) into one folder, paper.md and
    summary.md both count the quick trials only (n=1, not n=3), and the output says what was left
    out."""
    from spectrumkit.figures import read_results as load_results
    from spectrumkit.figures import render

    toml = study_toml(tmp_path, hidden=(8,), methods=("random",), seeds=1, paper_seeds=3)
    out = tmp_path / "out"
    run_study(toml, preset="paper", out=str(out), progress=False, **ALLOW)
    quick = run_study(toml, preset="quick", out=str(out), progress=False, **ALLOW)
    assert quick.pivot.iloc[0, 0] == f"{expected_error(8, 0, 'random'):.2f} (n=1)"
    with pytest.warns(StudyWarning, match=r"2 trial files in .*trials are not trials of study "
                                          r"'fake' as resolved in spec.json \(preset quick\); "
                                          r"left out"):
        res = load_results(quick.dir)
    assert [t["key"] for t in res.trials] == quick.study.keys
    assert res.left_out == 2
    with pytest.warns(StudyWarning, match="left out"):
        render(quick.dir, formats="png")
    md = (quick.dir / "tables" / "paper.md").read_text()
    assert "(n=1)" in md and "(n=3)" not in md
    assert f"{expected_error(8, 0, 'random'):.2f}" in md


# ------------------------------------------------------------------- failures are visible


def test_render_of_a_study_without_ok_trials_says_so_in_one_line(tmp_path):
    """Figures/tables of a study with no ok trial: one line saying so."""
    from spectrumkit.figures import render

    toml = study_toml(tmp_path, hidden=(8,), data="{ fail = true }")
    run = run_study(toml, out=str(tmp_path / "out"), progress=False, **ALLOW)
    assert run.statuses["failed"] == 1
    with pytest.raises(SpectrumkitError) as e:
        render(run.dir)
    assert str(e.value) == ("render: expected at least one trial of status ok in study 'fake' "
                            "to draw its figures and tables, got none of 1 (1 failed)")
