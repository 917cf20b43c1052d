"""Issue 12, study side: regression tests for defects 2, 3, 5, 8, 9, 11 and the study items of 13.

Each test names the defect it guards. The infrastructure tests use the stand-in trial
``tests/study_fake.py`` (closed-form metrics, no training), so they run in well under a second
each; the CLI tests run ``python -m spectrumkit.cli`` as a subprocess from the repository root and
check the exit status, a single ``error:`` line and the absence of ``Traceback``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import StudyWarning, load_study, run_study, trial_key
from tests.study_fake import expected_error

ROOT = Path(__file__).resolve().parents[1]
FAKE = "tests.study_fake:run"
#: the explicit opt-in that lets a study TOML name an import path as its trial (defect 13)
ALLOW = {"allow_trial_code": True}
ALLOW_CLI = ("--allow-trial-code",)


def study_toml(tmp_path: Path, *, name: str | None = "fake", hidden=(8,), methods=("random",),
               seeds: int = 1, paper_seeds: int = 3, data: str = "{}", trial: str = FAKE,
               metric: str = "val_error_pct", fixed_extra: str = "", top_extra: str = "",
               file: str = "fake.toml") -> Path:
    """A tiny study with two presets (quick: ``seeds`` seeds, paper: ``paper_seeds``)."""
    head = "" if name is None else f"name = {json.dumps(name)}\n"
    text = f"""{head}{top_extra}
[grid]
hidden_size = {list(hidden)}
method = {json.dumps(list(methods))}
[fixed]
trial = "{trial}"
epochs = 1
data = {data}
{fixed_extra}
[presets.quick]
seeds = {seeds}
[presets.paper]
seeds = {paper_seeds}
[report]
table = {{ rows = "hidden_size", cols = "method", metric = "{metric}" }}
"""
    p = tmp_path / file
    p.write_text(text)
    return p


def cli(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m spectrumkit.cli ARGS`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "spectrumkit.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def one_error_line(r: subprocess.CompletedProcess) -> str:
    """Exit status 2, exactly one ``error:`` line on stderr, no traceback; returns that line."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    return errors[0]


def no_traceback_ok(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "error:" not in r.stderr, r.stderr


# --------------------------------------------------------------------------- defect 11: scores


@pytest.mark.parametrize("B,T", [(0, 5), (4, 0), (0, 0)])
def test_every_score_refuses_an_empty_batch(B, T):
    """Defect 11: SNIP and Foresight gave all-zero scores (and so a positional mask) for B=0 or
    T=0; every method now refuses an empty batch with one line, as jacobian does."""
    from spectrumkit.models import SequenceClassifier
    from spectrumkit.scores import METHODS, compute_scores

    m = SequenceClassifier("gru", 2, 3, 2, seed=0, dtype=torch.float64)
    batch = (torch.ones(B, T, 2, dtype=torch.float64), torch.zeros(B, dtype=torch.long))
    for method in METHODS:
        kw = {"density": 0.5} if method == "synflow" else {}
        with pytest.raises(SpectrumkitError) as e:
            compute_scores(method, m, batch, generator=torch.Generator().manual_seed(0), **kw)
        msg = str(e.value)
        assert msg == (f"compute_scores: expected a non-empty batch (B >= 1 sequences of T >= 1 "
                       f"steps), got B={B}, T={T}"), (method, msg)


# ----------------------------------------------------------------------- defect 2: study name


@pytest.mark.parametrize("bad", ["ABS", "../x", ".", "..", "", "a/b", "a\\b", "x/../..",
                                 " x", "-x", "x\x00y"])
def test_study_name_must_be_a_single_safe_path_component(tmp_path, bad):
    """Defect 2: name = "/abs/dir", "../x" or "." wrote outside --out; refused at load now.
    (The absolute name points into tmp_path, so that the unfixed code wrote nowhere else.)"""
    bad = str(tmp_path / "abs" / "dir") if bad == "ABS" else bad
    toml = study_toml(tmp_path, name=bad)
    with pytest.raises(SpectrumkitError, match=r"load_study: expected a study name that is one "
                                               r"path component"):
        load_study(toml)
    with pytest.raises(SpectrumkitError, match="one path component"):
        run_study(toml, out=str(tmp_path / "out"), progress=False, **ALLOW)
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists()
    assert not (tmp_path / "abs").exists()


def test_study_name_from_an_unsafe_file_name_is_refused(tmp_path):
    """Defect 2: without name =, the file's stem is the name; it must be safe as well."""
    toml = study_toml(tmp_path, name=None, file="my study.toml")
    with pytest.raises(SpectrumkitError, match="one path component.*'my study'"):
        load_study(toml)
    ok = study_toml(tmp_path, name=None, file="fine-name_2.v1.toml")
    assert load_study(ok).name == "fine-name_2.v1"


# ---------------------------------------------------- defect 5 (+ 13 "config": 5): one reader


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
    """Defect 5: read_trial_file never raises; it names why a file cannot be used."""
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
    """Defect 5: a non-UTF-8 (or otherwise ill-formed) file crashed the resume; it is now a
    warning naming the file, and its trial runs again; the figures skip it with a warning."""
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


# ----------------------------------------------- defect 3: figures read the resolved study only


def test_figures_and_paper_table_pool_only_the_resolved_trials(tmp_path):
    """Defect 3: after a paper run (3 seeds) and a quick run (1 seed) into one folder, paper.md
    pooled n=3 while summary.md said n=1. Now both count the quick trials, and the output says
    what was left out."""
    from spectrumkit.figures import load_study as load_results
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


# ----------------------------------------------------------- defect 8: failures are visible


def test_render_of_a_study_without_ok_trials_says_so_in_one_line(tmp_path):
    """Defect 8: figures/tables of a study with no ok trial: one line saying so."""
    from spectrumkit.figures import render

    toml = study_toml(tmp_path, hidden=(8,), data="{ fail = true }")
    run = run_study(toml, out=str(tmp_path / "out"), progress=False, **ALLOW)
    assert run.statuses["failed"] == 1
    with pytest.raises(SpectrumkitError) as e:
        render(run.dir)
    assert str(e.value) == ("render: expected at least one trial of status ok in study 'fake' "
                            "to draw its figures and tables, got none of 1 (1 failed)")


@pytest.mark.parametrize("metric,hint", [("val_eror_pct", "did you mean 'val_error_pct'"),
                                         ("accuracy", "")])
def test_bad_report_metric_is_refused_at_load(tmp_path, metric, hint):
    """Defect 8: a [report] metric that no trial reports was found only after every trial ran."""
    toml = study_toml(tmp_path, trial="prune-train", metric=metric)
    with pytest.raises(SpectrumkitError, match=r"load_study: expected report.table.metric among "
                                               r"the metrics of trial 'prune-train'") as e:
        load_study(toml)
    assert hint in str(e.value) and repr(metric) in str(e.value)


def test_report_metrics_of_the_builtin_trial_are_what_it_reports(tmp_path):
    """The list the [report] check uses equals the metrics a real (tiny) trial returns."""
    from spectrumkit.study.config import TRIAL_METRICS, TrialConfig
    from spectrumkit.study.executors import TrialContext
    from spectrumkit.study.trial import run_trial

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrialConfig(method="snip", hidden_size=4, steps=2, batch_size=8, score_batch=8,
                          data={"limit": 32, "val_limit": 16}, record=("anatomy", "sv_hist"),
                          spectrum_batch=2)
        out = run_trial(cfg, TrialContext(device="cpu"))
        ev = run_trial(cfg.model_copy(update={"steps": 0}), TrialContext(device="cpu"))
    finally:
        torch.set_num_threads(before)
    got = set(out["metrics"]) | set(ev["metrics"])
    assert got <= set(TRIAL_METRICS["prune-train"]), got - set(TRIAL_METRICS["prune-train"])
    for shipped in ("val_error_pct", "test_ppl", "ir_ratio", "score_seconds", "sv_mean_trained"):
        assert shipped in TRIAL_METRICS["prune-train"]


# ------------------------------------------------------------------- defect 9: data identity


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
    """Defect 9: the data identity is 'bundled' or a root's file fingerprint; the root path
    itself is not part of it (the same files elsewhere are the same data)."""
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
    """Defect 9: a --data-root rerun said 'already done' and results did not say which data."""
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
    """Defect 9: every result says which data the trial used (the loader's description)."""
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


# ------------------------------------------------------------------ defect 13 (study items)


def test_trial_import_path_needs_the_explicit_flag(tmp_path):
    """Defect 13: trial = "module:function" imported any module. An import path is code
    execution: refused unless allow_trial_code=True / --allow-trial-code."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef run(c, ctx):\n    return {{}}\n")
    toml = study_toml(tmp_path, trial="evil_mod:run")
    with pytest.raises(SpectrumkitError, match=r"run_study: expected trial kinds among "
                                               r"prune-train \(an import path runs code: pass "
                                               r"allow_trial_code=True, --allow-trial-code\), "
                                               r"got 'evil_mod:run'"):
        run_study(toml, out=str(tmp_path / "out"), progress=False)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_huge_seed_count_is_refused_at_once(tmp_path):
    """Defect 13: --seeds 100000000 hung building configs; now a one-line error."""
    toml = study_toml(tmp_path, hidden=(8, 16))
    with pytest.raises(SpectrumkitError, match=r"load_study: expected at most 10000 trials "
                                               r"\(seeds x \(rows x cases x grid points \+ "
                                               r"extra\)\), got 200000000"):
        load_study(toml, seeds=100_000_000)


@pytest.mark.parametrize("when", ["workers starting", "trials running"])
def test_ctrl_c_under_the_process_executor_is_one_line(tmp_path, when):
    """Defect 13: Ctrl-C (SIGINT to the terminal's process group) under the process executor
    printed ~88 lines of worker tracebacks; now one line and exit 130, whether the workers are
    still starting (importing torch) or inside their trials."""
    toml = study_toml(tmp_path, hidden=(8, 16, 24, 32), data="{ sleep = 30 }")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "spectrumkit.cli", "study", str(toml), "--out", str(out),
           "--executor", "process", "--workers", "2", *ALLOW_CLI]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        logs = out / "fake" / "logs"
        if when == "workers starting":  # spec.json is written just before the pool starts
            ready = lambda: (out / "fake" / "spec.json").exists()  # noqa: E731
        else:  # both workers are inside a trial
            ready = lambda: len(list(logs.glob("*.log"))) >= 2  # noqa: E731
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.02)
        time.sleep(1.0 if when == "workers starting" else 0.5)
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal does: the whole process group
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert [ln for ln in lines if ln.startswith("error:")] == ["error: aborted"], stderr
    assert len(lines) <= 2, stderr  # the announcement and the error
    assert not list((out / "fake" / "trials").glob("*.json"))  # nothing half-written


# ------------------------------------------------------------- every CLI case, as a subprocess


def test_cli_every_study_case_of_issue_12(tmp_path):
    """Every CLI case of defects 2, 3, 5, 8, 9 and the study items of 13, run as
    ``python -m spectrumkit.cli`` from the repository root: exit status 2 with exactly one
    ``error:`` line, or 0 where the right answer is a warning and a rerun; never a traceback.
    (Defect 11 has no CLI case: ``prune`` refuses a zero --batch-size / --steps itself. Ctrl-C:
    the next test.)"""
    out = tmp_path / "out"
    cases = []  # (what, argv, expected exit status, check(result))

    # defect 2: unsafe study names write nothing anywhere
    for i, bad in enumerate([str(tmp_path / "abs" / "dir"), "../x", ".", "", "a/b"]):
        toml = study_toml(tmp_path, name=bad, file=f"name{i}.toml")
        cases.append((f"name {bad!r}", ["study", str(toml), "--out", str(out), *ALLOW_CLI], 2,
                      lambda r: "one path component" in r.stderr))

    # defect 5: a non-UTF-8 result file is a warning and a rerun, in `study` and in `figures`
    good = study_toml(tmp_path, name="good", hidden=(8, 16), seeds=1, paper_seeds=2,
                      file="good.toml")
    paper = run_study(good, preset="paper", out=str(out), progress=False, **ALLOW)
    quick = load_study(good, "quick")
    trials = out / "good" / "trials"
    bad_file = trials / f"{quick.keys[0]}.json"
    other = next(trials / f"{k}.json" for k in paper.study.keys if k not in quick.keys)
    other.write_bytes(b"\xff\xfe not a result")  # defect 8: another preset's corrupt file
    bad_file.write_bytes(b"\xff\xfe\x00\x80")
    cases.append(("non-UTF-8 result, study run", ["study", str(good), "--out", str(out),
                                                   *ALLOW_CLI], 0,
                  lambda r: f"warning: corrupt result file {bad_file}: not UTF-8" in r.stderr
                  and "2 trials, 1 already done, 1 run now; ok 2" in r.stdout
                  and str(other) not in r.stderr))
    # defect 3: figures of the quick study leave out the paper trials, and say so
    cases.append(("figures after paper + quick", ["figures", str(out / "good")], 0,
                  lambda r: "warning: 2 trial files in" in r.stderr and "left out" in r.stderr
                  and "(n=1)" in (out / "good" / "tables" / "paper.md").read_text()))

    def corrupt_for_figures(raw: bytes):
        def prepare():
            bad_file.write_bytes(raw)
        return prepare
    cases.append(("figures, non-UTF-8 trial", ["figures", str(out / "good")], 0,
                  lambda r: f"warning: corrupt result file {bad_file}: not UTF-8" in r.stderr))
    cases[-1] += (corrupt_for_figures(b"\xff\xfe\x00\x80"),)
    from spectrumkit.study.config import SCHEMA_VERSION  # the current one, so 'config' is read

    config5 = json.dumps({"schema_version": SCHEMA_VERSION, "key": bad_file.stem, "status": "ok",
                          "config": 5, "metrics": {}, "history": {}, "artifacts": {}, "env": {},
                          "data": {}}).encode()
    cases.append(("figures, config 5", ["figures", str(out / "good")], 0,
                  lambda r: f"corrupt result file {bad_file}: 'config' is int" in r.stderr))
    cases[-1] += (corrupt_for_figures(config5),)

    # defect 8: all trials fail -> the summary first, then one error line; a rerun says so
    fails = study_toml(tmp_path, name="fails", hidden=(8, 16), data="{ fail = true }",
                       file="fails.toml")
    cases.append(("all trials fail", ["study", str(fails), "--out", str(out), *ALLOW_CLI], 2,
                  lambda r: "ok 0, diverged 0, failed 2" in r.stdout
                  and r.stdout.count("RuntimeError: requested failure second line  (log: ") == 2
                  and "figures: none drawn, no trial of study 'fails' has status ok (2 failed)"
                  in r.stdout and "2 of 2 trials failed" in r.stderr))
    cases.append(("rerun of failed trials", ["study", str(fails), "--out", str(out),
                                             *ALLOW_CLI], 2,
                  lambda r: "0 already done, 2 failed before (kept; --retry-failed runs them "
                  "again), 0 to run" in r.stderr))
    cases.append(("figures, no ok trial", ["figures", str(out / "fails")], 2,
                  lambda r: "expected at least one trial of status ok in study 'fails'" in
                  r.stderr and "(2 failed)" in r.stderr))
    # defect 8: a bad [report] metric is refused before anything runs
    metric = study_toml(tmp_path, name="metric", trial="prune-train", metric="val_eror_pct",
                        file="metric.toml")
    cases.append(("bad report metric", ["study", str(metric), "--out", str(out)], 2,
                  lambda r: "did you mean 'val_error_pct'" in r.stderr
                  and not (out / "metric").exists()))
    # defect 9: a data root without the files is refused before any trial runs
    dr = study_toml(tmp_path, name="dataroot", file="dataroot.toml")
    cases.append(("--data-root /nonexistent", ["study", str(dr), "--out", str(out),
                                               "--data-root", str(tmp_path / "nonexistent"),
                                               *ALLOW_CLI], 2,
                  lambda r: "MNIST train images" in r.stderr and not (out / "dataroot").exists()))
    # defect 13: an import path needs --allow-trial-code; a huge --seeds is refused at once
    cases.append(("import path without the flag", ["study", str(dr), "--out", str(out)], 2,
                  lambda r: "--allow-trial-code" in r.stderr and "tests.study_fake:run" in
                  r.stderr))
    cases.append(("--seeds 100000000", ["study", str(dr), "--seeds", "100000000", "--out",
                                        str(out), *ALLOW_CLI], 2,
                  lambda r: "at most 10000 trials" in r.stderr))

    wrong = []
    for what, argv, status, check, *prepare in cases:
        for p in prepare:
            p()
        try:
            r = cli(*argv, timeout=120)
        except subprocess.TimeoutExpired:
            wrong.append(f"{what}: still running after 120 s")
            continue
        try:
            one_error_line(r) if status == 2 else no_traceback_ok(r)
            assert check(r)
        except AssertionError:
            wrong.append(f"{what}: exit {r.returncode}\n  stdout: {r.stdout[-600:]!r}\n"
                         f"  stderr: {r.stderr[-600:]!r}")
    assert not wrong, f"{len(wrong)} of {len(cases)} cases wrong:\n" + "\n".join(wrong)
    assert not (tmp_path / "x").exists() and not (tmp_path / "abs").exists()
