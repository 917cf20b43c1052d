"""Studies: keys, specs, atomic results, resume, kill-and-resume, executors, tables, CLI errors.

The infrastructure tests use the stand-in trial ``tests/study_fake.py`` (closed-form metrics, no
training) so they can compare summaries with hand-computed numbers and stay fast; the tests of the
real trial use tiny settings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from spectrumkit.config import TrainingConfig
from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import (TrialConfig, collect, list_studies, load_study,
                               run_study, trial_key)
from tests.study_fake import expected_error

ROOT = Path(__file__).resolve().parents[1]
FAKE = "tests.study_fake:run"


def fake_toml(tmp_path: Path, *, name="fake", hidden=(8, 16), methods=("jacobian", "random"),
              seeds=2, data="{}", extra="", fixed_extra="", preset_extra="") -> Path:
    text = f"""
name = "{name}"
[grid]
hidden_size = {list(hidden)}
method = {json.dumps(list(methods))}
[fixed]
trial = "{FAKE}"
epochs = 1
data = {data}
{fixed_extra}
[presets.quick]
seeds = {seeds}
{preset_extra}
[report]
table = {{ rows = "hidden_size", cols = "method", metric = "val_error_pct" }}
{extra}
"""
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


def run_markers(log_dir: Path) -> dict[str, tuple[int, int]]:
    """(start markers, end markers) per key (NOTE [Run markers])."""
    out = {}
    for p in log_dir.glob("*.log"):
        text = p.read_text()
        out[p.stem] = (len(re.findall(rf"=== start key={p.stem} ", text)),
                       len(re.findall(rf"=== end key={p.stem} ", text)))
    return out


# ------------------------------------------------------------------------------------- keys


def test_key_is_sha256_of_canonical_json_and_schema_version():
    cfg = TrialConfig(seed=3, epochs=2, method="snip", hidden_size=32, data={"limit": 100})
    # schema 2: the data identity is part of the key; None = the bundled data, whose
    # fingerprint is the SHA-256 of the pinned digests of its two MNIST files
    bundled = hashlib.sha256(
        b"mnist/t10k-images-idx3-ubyte.gz="
        b"167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b\n"
        b"mnist/t10k-labels-idx1-ubyte.gz="
        b"fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c\n").hexdigest()
    # schema 3: the score settings are one field, ``score``, every option written out
    payload = {"schema_version": 3, "config": json.loads(cfg.model_dump_json()),
               "data": {"source": "bundled", "fingerprint": bundled}}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert trial_key(cfg) == hashlib.sha256(text.encode()).hexdigest()
    # the same config spelled differently (ints for floats, key order) has the same key
    same = TrialConfig(data={"limit": 100}, hidden_size=32, method="snip", epochs=2, seed=3,
                       lr=0.001, sparsity=0.95)
    assert trial_key(same) == trial_key(cfg)
    assert trial_key(cfg.model_copy(update={"lr": 0.002})) != trial_key(cfg)


def test_config_is_frozen_forbids_extras_and_is_canonical():
    cfg = TrialConfig(epochs=1)
    with pytest.raises(ValidationError):
        cfg.lr = 0.1
    with pytest.raises(ValidationError, match="workers"):
        TrialConfig(epochs=1, workers=4)              # run options are not config fields
    with pytest.raises(ValidationError, match="exactly one of epochs / steps"):
        TrialConfig(epochs=1, steps=10)
    # options a method ignores are dropped; the defaults it uses are written out
    r = TrialConfig(epochs=1, method="random", normalize="gamma", horizon=8)
    assert (r.normalize, r.horizon, r.estimator) == (None, None, None)
    j = TrialConfig(epochs=1, method="jacobian")
    assert (j.normalize, j.horizon, j.estimator, j.through_time) == ("gamma", 4, "ones", False)
    assert TrialConfig(epochs=1, method="snip").normalize == "none"
    assert TrialConfig(epochs=1, method="dense", sparsity=0.9).sparsity == 0.0


# ---------------------------------------------------------------------------- shipped studies


def test_shipped_studies_resolve_with_both_presets():
    names = set(list_studies())
    assert {"init-ablation", "normalization", "horizon", "sparsity", "architectures", "width",
            "runtime", "spectrum", "mask-anatomy", "language"} <= names
    for name in names:
        for preset in ("quick", "paper"):
            s = load_study(name, preset)
            assert len(s.configs) == len(set(s.keys)) > 0
    ia = load_study("init-ablation", "paper")
    assert ia.grid == {"init": ["glorot", "normal:1", "normal:0.1", "uniform:0,0.1"],
                       "method": ["jacobian", "random"]}
    for c in ia.configs:  # the paper's settings
        assert (c.cell, c.hidden_size, c.batch_size, c.lr, c.optimizer, c.sparsity, c.epochs,
                c.score_batch) == ("gru", 400, 64, 1e-3, "adam", 0.95, 50, 64)
        assert c.horizon == (4 if c.method == "jacobian" else None)
    assert len(ia.configs) == 4 * 2 * ia.seeds
    # normalization: 3 scores x {gamma, none} + one random
    norm = load_study("normalization", "quick")
    assert len(norm.configs) == 7 * norm.seeds
    assert load_study("width", "paper").grid["hidden_size"] == [100, 400, 1600]
    assert load_study("sparsity", "paper").grid["sparsity"] == [0.9, 0.95, 0.98]


def test_studies_are_package_data():
    import spectrumkit
    pkg = Path(spectrumkit.__file__).parent / "studies"
    assert sorted(p.stem for p in pkg.glob("*.toml")) == list_studies()
    assert (ROOT / "studies").resolve() == pkg.resolve()  # the top-level symlink


# ------------------------------------------------------------------------------ the store


def test_run_resume_and_summary_values(tmp_path):
    toml = fake_toml(tmp_path, hidden=(8, 16))
    out = tmp_path / "out"
    run = run_study(toml, out=str(out), progress=False, allow_trial_code=True)
    assert (run.total, run.already_done, run.ran) == (8, 0, 8)
    # the summary equals mean ± std (ddof=1) computed by hand from the closed-form metric
    long = run.long.set_index(["hidden_size", "method"])
    for h in (8, 16):
        for m in ("jacobian", "random"):
            vals = [expected_error(h, s, m) for s in (0, 1)]
            mean = sum(vals) / 2
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / 1)
            row = long.loc[(str(h), m)]
            assert (row["mean"], row["std"], row["n"]) == (pytest.approx(mean),
                                                           pytest.approx(std), 2)
            assert run.pivot.loc[str(h), m] == f"{mean:.2f} ± {std:.2f} (n=2)"
    md = (out / "fake" / "tables" / "summary.md").read_text()
    assert "| 8             | 2.00 ± 1.41 (n=2) | 3.00 ± 1.41 (n=2) |" in md
    tex = (out / "fake" / "tables" / "summary.tex").read_text()
    assert r"\toprule" in tex and r"2.00 $\pm$ 1.41 (n=2)" in tex
    spec = json.loads((out / "fake" / "spec.json").read_text())
    assert spec["keys"] == run.study.keys and spec["preset"] == "quick"
    df = collect(out / "fake")
    assert sorted(df["key"]) == sorted(run.study.keys) and set(df["status"]) == {"ok"}
    before = {p.name: p.read_bytes() for p in (out / "fake" / "trials").iterdir()}
    # rerun: nothing runs, nothing is rewritten
    again = run_study(toml, out=str(out), progress=False, allow_trial_code=True)
    assert (again.already_done, again.ran) == (8, 0)
    assert {p.name: p.read_bytes() for p in (out / "fake" / "trials").iterdir()} == before
    # one more seed runs only the new seed's 4 trials
    more = run_study(toml, out=str(out), seeds=3, progress=False, allow_trial_code=True)
    assert (more.already_done, more.ran) == (8, 4)
    assert all(v == (1, 1) for v in run_markers(out / "fake" / "logs").values())


def test_failed_diverged_and_retry(tmp_path):
    toml = fake_toml(tmp_path, hidden=(8,), methods=("random",), seeds=1,
                     data='{ fail = true }')
    out = tmp_path / "out"
    run = run_study(toml, out=str(out), progress=False, allow_trial_code=True)
    assert run.statuses == {"ok": 0, "diverged": 0, "failed": 1}
    key, err = run.failed[0]
    assert err == "RuntimeError: requested failure second line"  # one line
    log = (out / "fake" / "logs" / f"{key}.log").read_text()
    assert "Traceback" in log and "status=failed" in log
    assert run.pivot.iloc[0, 0] == "— (1 failed)"
    assert run_study(toml, out=str(out), progress=False, allow_trial_code=True).ran == 0  # kept
    assert run_study(toml, out=str(out), retry_failed=True, progress=False,
                     allow_trial_code=True).ran == 1
    # lr = 10: the trial diverges, the study completes and the table says so
    div = fake_toml(tmp_path, name="div", hidden=(8,), seeds=2, fixed_extra="lr = 10.0")
    run = run_study(div, out=str(out), progress=False, allow_trial_code=True)
    assert run.statuses == {"ok": 0, "diverged": 4, "failed": 0}
    r = json.loads(next((out / "div" / "trials").glob("*.json")).read_text())
    assert r["status"] == "diverged" and r["metrics"]["val_loss"] is None  # NaN -> null
    assert run.pivot.loc["8", "random"] == "— (2 diverged)"


def test_corrupt_result_is_named_and_rerun(tmp_path, cli):
    toml = fake_toml(tmp_path, hidden=(8,), seeds=2)
    out = tmp_path / "out"
    run = run_study(toml, out=str(out), progress=False, allow_trial_code=True)
    bad = out / "fake" / "trials" / f"{run.study.keys[1]}.json"
    good = {p.name: p.read_bytes() for p in bad.parent.iterdir() if p != bad}
    bad.write_bytes(bad.read_bytes()[:50])  # truncated JSON
    r = cli("study", str(toml), "--out", str(out), "--allow-trial-code")
    assert r.exit_code == 0, r.output
    assert f"warning: corrupt result file {bad}" in r.stderr
    assert "3 already done, 1 run now" in r.stdout
    assert json.loads(bad.read_text())["status"] == "ok"
    assert {p.name: p.read_bytes() for p in bad.parent.iterdir() if p != bad} == good
    assert run_markers(out / "fake" / "logs")[bad.stem] == (2, 2)


# ---------------------------------------------------------------------------- kill & resume


@pytest.mark.slow
def test_kill_then_resume_loses_and_repeats_nothing(tmp_path, cli):
    toml = fake_toml(tmp_path, hidden=(8, 16, 24), methods=("random",), seeds=2,
                     data="{ sleep = 0.4 }")
    out = tmp_path / "out"
    trials = out / "fake" / "trials"
    cmd = ["study", str(toml), "--out", str(out), "--allow-trial-code"]
    env = {"PYTHONPATH": str(ROOT)}
    with cli.popen(*cmd, env=env, capture=False) as proc:
        # Kill once a result exists AND a later trial is running (its start marker written,
        # its end marker not): on a loaded machine the first result file can appear well before
        # the next trial starts, and a kill in that gap would test nothing.
        deadline = time.monotonic() + 60
        logs = out / "fake" / "logs"
        while not (list(trials.glob("*.json")) and logs.is_dir()
                   and any(s > e for s, e in run_markers(logs).values())):
            assert proc.poll() is None, "the study ended before it could be killed"
            assert time.monotonic() < deadline, "no result file and running trial appeared"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = {p.name: p.read_bytes() for p in trials.glob("*.json")}
    markers = run_markers(out / "fake" / "logs")
    in_flight = [k for k, (s, e) in markers.items() if s > e]
    assert len(before) < 6 and len(in_flight) == 1  # killed in the middle of a trial
    r = cli.subprocess(*cmd, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"6 trials, {len(before)} already done, {6 - len(before)} run now" in r.stdout
    after = {p.name: p.read_bytes() for p in trials.glob("*.json")}
    assert len(after) == 6 and all(json.loads(b)["status"] == "ok" for b in after.values())
    assert {k: after[k] for k in before} == before                     # byte-identical
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no temp files left
    markers = run_markers(out / "fake" / "logs")
    assert all(e == 1 for s, e in markers.values())                    # each finished once
    for name in before:                                                # done ones never rerun
        assert markers[name[:-5]] == (1, 1)
    assert markers[in_flight[0]] == (2, 1)                             # the killed one reran


# -------------------------------------------------------------------------------- executors


def _metrics(folder: Path) -> dict[str, dict]:
    return {r["key"]: {k: v for k, v in r["metrics"].items() if not k.endswith("seconds")}
            for r in (json.loads(p.read_text()) for p in (folder / "trials").glob("*.json"))}


@pytest.mark.slow
def test_process_executor_matches_local(tmp_path):
    toml = fake_toml(tmp_path, hidden=(8, 16), seeds=1)
    threads = torch.get_num_threads()
    a = run_study(toml, out=str(tmp_path / "a"), progress=False, allow_trial_code=True)
    b = run_study(toml, out=str(tmp_path / "b"), executor="process", workers=2, progress=False,
                  allow_trial_code=True)
    for out, kw in (("c", {"threads": 1}), ("d", {})):  # scoped to each trial, then restored
        toml = fake_toml(tmp_path, hidden=(8, 16), seeds=1, preset_extra="threads = 1" * (
            out == "d"))
        assert run_study(toml, out=str(tmp_path / out), progress=False, allow_trial_code=True,
                         **kw).ran == 4
        assert torch.get_num_threads() == threads  # the parent's threads are as they were
        assert {json.loads(p.read_text())["env"]["threads"]
                for p in (tmp_path / out / "fake/trials").glob("*")} == {1}
    assert a.study.keys == b.study.keys and b.ran == 4
    assert _metrics(tmp_path / "a" / "fake") == _metrics(tmp_path / "b" / "fake")
    envs = [json.loads(p.read_text())["env"] for p in (tmp_path / "b/fake/trials").glob("*")]
    assert {e["threads"] for e in envs} == {max(1, len(os.sched_getaffinity(0)) // 2)}
    assert all(v == (1, 1) for v in run_markers(tmp_path / "b" / "fake" / "logs").values())


@pytest.mark.slow
def test_ray_executor_matches_local(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'spectrumkit[ray]')")
    toml = tmp_path / "fake.toml"  # three real (tiny) trials
    toml.write_text("""
[grid]
method = ["jacobian", "snip", "random"]
[fixed]
hidden_size = 8
steps = 3
batch_size = 16
score_batch = 16
data = { limit = 64, val_limit = 32 }
[presets.quick]
seeds = 1
[report]
table = { rows = "method", metric = "val_error_pct" }
""")
    a = run_study(toml, out=str(tmp_path / "a"), device="cpu", threads=1, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        b = run_study(toml, out=str(tmp_path / "b"), executor="ray", device="cpu",
                      progress=False)
    finally:
        ray.shutdown()
    assert a.study.keys == b.study.keys and (b.total, b.ran) == (3, 3)
    assert a.statuses == b.statuses == {"ok": 3, "diverged": 0, "failed": 0}
    ma, mb = _metrics(tmp_path / "a" / "fake"), _metrics(tmp_path / "b" / "fake")
    assert ma == mb and all(m["val_error_pct"] is not None for m in ma.values())
    pids = {re.search(r"pid=(\d+)", (tmp_path / "b/fake/logs" / f"{k}.log").read_text()).group(1)
            for k in b.study.keys}
    assert str(os.getpid()) not in pids  # they ran in Ray workers
    assert all(v == (1, 1) for v in run_markers(tmp_path / "b" / "fake" / "logs").values())


# -------------------------------------------------------------------------------- bad input


def _one_line_exit_2(r):
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.strip().count("\n") == 0, r.stderr
    return r.stderr


def test_cli_bad_inputs(tmp_path, monkeypatch, cli):
    err = _one_line_exit_2(cli("study", "no-such-study"))
    assert "no-such-study" in err and all(n in err for n in list_studies())

    bad = fake_toml(tmp_path, name="typo", fixed_extra="sparsty = 0.5")
    err = _one_line_exit_2(cli("study", str(bad), "--allow-trial-code"))
    assert "'sparsty'" in err and str(bad) in err and "did you mean 'sparsity'" in err

    bad = fake_toml(tmp_path, name="value", fixed_extra="sparsity = 1.5")
    err = _one_line_exit_2(cli("study", str(bad), "--allow-trial-code"))
    assert err.strip() == (f"error: load_study: expected sparsity less than 1 in [fixed] of "
                           f"{bad.resolve()}, got 1.5")

    ok = fake_toml(tmp_path, name="ok", hidden=(8,), seeds=1)
    err = _one_line_exit_2(cli("study", str(ok), "--allow-trial-code", "--seeds", "0"))
    assert err.strip() == "error: run_study: expected seeds greater than 0, got 0"

    bad = fake_toml(tmp_path, name="cell", fixed_extra='cell = "gruu"')
    err = _one_line_exit_2(cli("study", str(bad), "--allow-trial-code"))
    assert err.strip().startswith("error: load_study: expected cell to be one of rnn,")
    assert err.strip().endswith(f"in [fixed] of {bad.resolve()}, got 'gruu'")

    bad = fake_toml(tmp_path, name="zero", seeds=0)
    err = _one_line_exit_2(cli("study", str(bad), "--allow-trial-code"))
    assert err.strip() == (f"error: load_study: expected seeds greater than 0 in [presets.quick] "
                           f"of {bad.resolve()}, got 0")

    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    err = _one_line_exit_2(cli("study", str(ok), "--allow-trial-code", "--executor", "ray",
                               "--out", str(tmp_path)))
    assert "pip install 'spectrumkit[ray]'" in err
    monkeypatch.undo()

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err = _one_line_exit_2(cli("study", str(ok), "--allow-trial-code", "--out",
                               str(blocker / "sub")))
    assert f"{blocker / 'sub' / 'ok'}" in err and "can be written" in err


def test_cli_list_and_show(cli):
    r = cli("study", "list")
    assert r.exit_code == 0
    for name in list_studies():
        row = next(line for line in r.stdout.splitlines() if line.startswith(name + " "))
        q, p = row.split()[1:3]
        assert (int(q), int(p)) == (len(load_study(name, "quick").configs),
                                    len(load_study(name, "paper").configs))
    r = cli("study", "show", "init-ablation", "--preset", "paper")
    assert r.exit_code == 0
    assert "trials:      40" in r.stdout and "hidden_size = 400" in r.stdout
    with pytest.raises(SpectrumkitError, match="preset among quick, paper"):
        load_study("init-ablation", "huge")


# ------------------------------------------------------------------------- the real trial

TINY = dict(hidden_size=8, steps=4, batch_size=16, score_batch=16,
            data={"limit": 128, "val_limit": 64})


@pytest.fixture
def one_thread():
    """One torch thread for the duration of a test, restored after (NOTE [Threads per worker]:
    tiny models are no faster with two, and far slower when other processes compete)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_real_trial_equals_the_pipeline_built_by_hand(one_thread):
    from spectrumkit.anatomy import connection_map, mask_anatomy
    from spectrumkit.data import load_task
    from spectrumkit.masks import topk_mask
    from spectrumkit.scores import compute_scores
    from spectrumkit.study.executors import TrialContext
    from spectrumkit.study.trial import run_trial, sub_seed
    from spectrumkit.training import make_model, train

    cfg = TrialConfig(seed=1, method="jacobian", record=("anatomy", "connection_map"), **TINY)
    out = run_trial(cfg, TrialContext(device="cpu"))
    task = load_task("seq-mnist", limit=128, val_limit=64)
    model = make_model(task, "gru", 8, init="glorot", seed=1, device="cpu")
    idx = torch.randperm(128, generator=torch.Generator().manual_seed(sub_seed(1, "score-batch")))
    batch = (task.train.xs[idx[:16]], task.train.ys[idx[:16]])
    scores = compute_scores("jacobian", model, batch, horizon=4, estimator="ones",
                            through_time=False, normalize="gamma",
                            generator=torch.Generator().manual_seed(sub_seed(1, "scores")))
    mask = topk_mask(scores, 0.05)
    res = train(model, task, training=TrainingConfig(steps=4, batch_size=16, lr=1e-3), mask=mask, seed=1, device="cpu",
                progress=False)
    P = sum(m.numel() for m in mask.values())
    assert out["metrics"]["kept"] == round(0.05 * P) == sum(int(m.sum()) for m in mask.values())
    assert out["metrics"]["val_error_pct"] == res.metrics["val_error_pct"]
    assert out["history"]["train_loss"] == res.history["train_loss"].tolist()
    rows = mask_anatomy("gru", mask, 28, 8)
    assert out["artifacts"]["anatomy"]["rows"] == rows.to_dict(orient="records")
    cm = out["artifacts"]["connection_map"]
    bits = np.unpackbits(np.frombuffer(base64.b64decode(cm["packbits"]), dtype=np.uint8))
    expected, meta = connection_map("gru", mask, 28, 8)
    assert cm["shape"] == list(expected.shape) and cm["row_blocks"] == meta["row_blocks"]
    assert np.array_equal(bits[:expected.size].reshape(expected.shape).astype(bool), expected)


def test_real_trial_spectra_artifacts(one_thread):
    from spectrumkit.study.executors import TrialContext
    from spectrumkit.study.trial import run_trial

    cfg = TrialConfig(seed=0, method="random", init="normal:0.1", lyapunov_k=3, hist_bins=7,
                      spectrum_batch=4, record=("sv_hist", "spectrum_steps", "lyapunov"),
                      **{**TINY, "steps": 2})
    out = run_trial(cfg, TrialContext(device="cpu"))
    a = out["artifacts"]
    for phase in ("init", "trained"):
        h = a["sv_hist"][phase]
        assert sum(h["counts"]) == h["n"] == 28 * 4 * 8 and len(h["edges"]) == 8
        assert len(a["spectrum_steps"][phase]["step"]) == 28
        assert len(a["lyapunov"][phase]) == 3
    pooled = np.average(a["spectrum_steps"]["init"]["mean_sigma"])  # equal counts per step
    assert a["sv_hist"]["init"]["mean"] == pytest.approx(pooled, rel=1e-6)
    assert out["metrics"]["sv_mean_init"] == a["sv_hist"]["init"]["mean"]
    # NOTE [Shared histogram edges]: σ < 2 here, so both phases use the edges linspace(0, 2, 8).
    assert a["sv_hist"]["init"]["edges"] == a["sv_hist"]["trained"]["edges"]
    assert a["sv_hist"]["init"]["edges"] == pytest.approx(np.linspace(0, 2, 8).tolist())


def test_real_study_diverges_at_lr_10_and_completes(tmp_path):
    toml = tmp_path / "div.toml"
    toml.write_text("""
[grid]
lr = [10.0, 0.001]
[fixed]
method = "random"
hidden_size = 8
steps = 30
batch_size = 16
score_batch = 16
data = { limit = 128, val_limit = 64 }
[presets.quick]
seeds = 1
[report]
table = { rows = "lr", metric = "val_error_pct" }
""")
    run = run_study(toml, out=str(tmp_path / "out"), device="cpu", threads=1, progress=False)
    assert run.statuses == {"ok": 1, "diverged": 1, "failed": 0}
    df = collect(run.dir).set_index("lr")
    assert df.loc[10.0, "status"] == "diverged" and df.loc[10.0, "diverged_at_step"] >= 1
    assert run.pivot.loc["10", "val_error_pct"] == "— (1 diverged)"


# ----------------------------------------------------------------------- recipes and rows


def test_recipe_and_pipeline_fields_are_canonical():
    from spectrumkit.scores import DEFAULT_RECIPE, RECIPES

    j = TrialConfig(epochs=1)
    d = RECIPES[DEFAULT_RECIPE].score
    assert (j.recipe, j.normalize, j.horizon, j.estimator, j.through_time) == (
        DEFAULT_RECIPE, d["normalize"], d["horizon"], d["estimator"], d["through_time"])
    a = TrialConfig(epochs=1, recipe="authors")
    assert (a.estimator, a.through_time, a.horizon) == ("transpose", True, 4)
    assert TrialConfig(epochs=1, recipe="authors", estimator="ones").estimator == "ones"
    assert trial_key(a) != trial_key(TrialConfig(epochs=1, recipe="paper"))
    # random ignores the recipe and the jacobian-only score options: one trial per regime
    keys = {trial_key(TrialConfig(epochs=1, method="random", recipe=r,
                                  score_options={"discount": 0.9, "gamma_steps": 5}))
            for r in RECIPES}
    assert keys == {trial_key(TrialConfig(epochs=1, method="random"))}
    assert TrialConfig(epochs=1, method="snip", score_options={"discount": 0.9}).score_options == {}
    # an option no method takes is an error at once, naming it (NOTE [Canonical configs])
    with pytest.raises(ValidationError, match="(?s)score_options.*among balance, .*got horizn"):
        TrialConfig(epochs=1, score_options={"horizn": 3})
    assert TrialConfig(epochs=1, pipeline="authors").block_swap is True
    assert TrialConfig(epochs=1, pipeline="authors", block_swap=False).block_swap is False
    assert TrialConfig(epochs=1).block_swap is False
    assert TrialConfig(epochs=1, method="dense", pipeline="authors").pipeline == "plain"
    with pytest.raises(ValidationError, match="(?s)recipe.*expected one of legacy, paper, authors"):
        TrialConfig(epochs=1, recipe="author")
    with pytest.raises(ValidationError, match="(?s)cell .gru_cho. or .gru. with pipeline"):
        TrialConfig(epochs=1, cell="lstm", pipeline="authors")


ROWS = """
[[grid.row]]
label = "small"
hidden_size = 8
score_options = { discount = 0.5 }
[[grid.row]]
label = "small again"
hidden_size = 8
score_options = { discount = 0.9 }
[[grid.row]]
label = "big"
hidden_size = 24
"""


def _rows_toml(tmp_path, rows=ROWS, name="rows"):
    text = f"""
name = "{name}"
[grid]
method = ["jacobian", "random"]
[fixed]
trial = "{FAKE}"
epochs = 1
{rows}
[presets.quick]
seeds = 2
[report]
table = {{ rows = "row", cols = "method", metric = "val_error_pct" }}
tables = [{{ rows = "row", cols = "method", metric = "val_loss", format = ".3f" }}]
figures = ["curves"]
"""
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


def test_study_rows_share_equal_trials_and_fill_every_row(tmp_path):
    from spectrumkit.figures import render
    from spectrumkit.study import run_study

    s = load_study(_rows_toml(tmp_path))
    # 3 rows x 2 methods x 2 seeds, but 'small' and 'small again' share their random trials
    assert len(s.configs) == 2 * (3 + 2)
    assert {lab: len(k) for lab, k in s.label_keys["row"].items()} == {
        "small": 4, "small again": 4, "big": 4}
    shared = set(s.label_keys["row"]["small"]) & set(s.label_keys["row"]["small again"])
    assert len(shared) == 2 and all(
        c.method == "random" for c in s.configs if trial_key(c) in shared)
    run = run_study(s, out=str(tmp_path / "out"), progress=False, allow_trial_code=True)
    assert run.statuses == {"ok": 10, "diverged": 0, "failed": 0}
    long = run.long.set_index(["row", "method"])
    for label, h in (("small", 8), ("small again", 8), ("big", 24)):
        for method in ("jacobian", "random"):
            vals = [expected_error(h, seed, method) for seed in (0, 1)]
            assert long.loc[(label, method), "mean"] == sum(vals) / 2
            assert long.loc[(label, method), "n"] == 2
    assert list(run.pivot.index) == ["small", "small again", "big"]
    assert list(run.pivot.columns) == ["val_error_pct: jacobian", "val_error_pct: random",
                                       "val_loss: jacobian", "val_loss: random"]
    tables = run.dir / "tables"
    assert (tables / "summary.md").is_file() and (tables / "summary-val_loss.md").is_file()
    spec = json.loads((run.dir / "spec.json").read_text())
    assert spec["grid"]["row"] == ["small", "small again", "big"]
    paths = render(run.dir, formats=("png",))  # figures and tables group by row label
    assert {p.name for p in paths} >= {"curves.png"}


def test_report_tables_with_other_rows_are_written_apart(tmp_path):
    """A further table whose rows differ from the main table's is written to its own files and
    left out of the side-by-side pivot (before, pd.concat refused the two indexes and the run
    crashed after every trial had finished)."""
    import pandas as pd

    from spectrumkit.study import run_study

    p = _rows_toml(tmp_path, name="tworows")
    p.write_text(p.read_text().replace(
        'tables = [{ rows = "row", cols = "method", metric = "val_loss", format = ".3f" }]',
        'tables = [{ rows = ["row", "hidden_size"], cols = "method", metric = "val_error_pct" },'
        '\n          { rows = "row", cols = "method", metric = "val_loss" }]'))
    run = run_study(load_study(p), out=str(tmp_path / "out"), progress=False,
                    allow_trial_code=True)
    assert run.statuses == {"ok": 10, "diverged": 0, "failed": 0}
    assert list(run.pivot.columns) == ["val_error_pct: jacobian", "val_error_pct: random",
                                       "val_loss: jacobian", "val_loss: random"]
    other = pd.read_csv(run.dir / "tables" / "summary-val_error_pct.csv")
    pairs = set(zip(other["row"], other["hidden_size"]))
    assert pairs == {("small", 8), ("small again", 8), ("big", 24)}


def test_study_rows_bad_input(tmp_path, cli):
    for rows, msg in (
            ('[[grid.row]]\nhidden_size = 8', "a label .* in every variant of axis 'row'"),
            ('[[grid.row]]\nlabel = "a"\n[[grid.row]]\nlabel = "a"',
             "distinct labels on axis 'row'"),
            ('[[grid.row]]\nlabel = "a"\nhiden_size = 8', "unknown key 'hiden_size'"),
            ('[[grid.row]]\nlabel = "a"\nmethod = "snip"',
             "'method' set in either an axis or a variant"),
            ('[[grid.row]]\nlabel = "a"\nrecipe = "nope"', ("recipe to be one of legacy, paper, "
                                                            "authors.* in variant 'a' of axis"))):
        p = _rows_toml(tmp_path, rows, name="bad")
        with pytest.raises(SpectrumkitError, match=msg):
            load_study(p)
    err = _one_line_exit_2(cli("study", str(_rows_toml(tmp_path, '[[grid.row]]\nlabel = "a"\n'
                                                                 'recipe = "nope"', name="bad")),
                               "--allow-trial-code"))
    assert "recipe to be one of legacy, paper, authors" in err


def test_recipe_ablation_rows():
    s = load_study("recipe-ablation", "quick")
    assert s.seeds == 2 and all(c.hidden_size == 64 and c.epochs == 8 for c in s.configs)
    rows = dict(s.variants["row"])
    assert len(rows) == 14 and rows["authors"]["use"] == "recipe:authors"
    by_key = {trial_key(c): c for c in s.configs}
    assert {by_key[k].recipe for k in s.label_keys["row"]["authors"]
            if by_key[k].method == "jacobian"} == {"authors"}
    for label, keys in s.label_keys["row"].items():
        cfgs = [by_key[k] for k in keys]
        assert sorted(c.method for c in cfgs) == ["jacobian"] * 2 + ["random"] * 2, label
        j = next(c for c in cfgs if c.method == "jacobian")
        r = next(c for c in cfgs if c.method == "random")
        # the random baseline of a row runs under the row's own regime
        for f in ("cell", "init", "data", "pipeline", "block_swap", "hidden_size", "epochs"):
            assert getattr(j, f) == getattr(r, f), (label, f)
    # the authors' row is their whole regime
    a = by_key[s.label_keys["row"]["authors"][0]]
    assert (a.cell, a.data, a.pipeline, a.block_swap) == ("gru_cho", {"scale": "paper"},
                                                           "authors", True)
    # rows that only change the score share the random trials of their regime
    def randoms(label):
        return {k for k in s.label_keys["row"][label] if by_key[k].method == "random"}
    assert randoms("authors") == randoms("authors - gamma") == randoms("authors - trio")
    assert randoms("default (legacy)") == randoms("default + gamma") == randoms("default + trio")
    assert len(s.configs) == 2 * (14 + 10)


@pytest.mark.parametrize("swap", [True, False])
def test_authors_pipeline_trial_equals_the_pipeline_built_by_hand(one_thread, swap):
    from spectrumkit.data import load_task
    from spectrumkit.init import AUTHORS_GRU_INIT
    from spectrumkit.interop import authors_trained_gru
    from spectrumkit.masks import topk_mask
    from spectrumkit.scores import compute_scores
    from spectrumkit.study.executors import TrialContext
    from spectrumkit.study.trial import run_trial, sub_seed
    from spectrumkit.training import make_model, train

    tiny = {**TINY, "data": {**TINY["data"], "scale": "paper"}}
    cfg = TrialConfig(seed=2, method="jacobian", recipe="authors", cell="gru_cho",
                      init=AUTHORS_GRU_INIT, pipeline="authors", block_swap=swap, **tiny)
    out = run_trial(cfg, TrialContext(device="cpu"))
    task = load_task("seq-mnist", limit=128, val_limit=64, scale="paper")
    model = make_model(task, "gru_cho", 8, init=AUTHORS_GRU_INIT, seed=2, device="cpu")
    idx = torch.randperm(128, generator=torch.Generator().manual_seed(sub_seed(2, "score-batch")))
    batch = (task.train.xs[idx[:16]], task.train.ys[idx[:16]])
    scores = compute_scores("jacobian", model, batch, recipe="authors",
                            generator=torch.Generator().manual_seed(sub_seed(2, "scores")))
    mask = topk_mask(scores, 0.05)
    params = {k: v.detach() for k, v in model.cell_params().items()}
    trained, tmask = authors_trained_gru(params, mask)
    if not swap:  # the blocks stay where they were scored; biases still zero, bias_hh held
        trained.update({k: params[k] for k in ("weight_ih", "weight_hh")})
        tmask.update(mask)
    assert not any(trained[k].any() for k in ("bias_ih", "bias_hh"))
    with torch.no_grad():
        for k, v in trained.items():
            model.rnn[k].copy_(v)
    res = train(model, task, training=TrainingConfig(steps=4, batch_size=16, lr=1e-3), mask=tmask, seed=2, device="cpu",
                progress=False)
    assert out["metrics"]["val_error_pct"] == res.metrics["val_error_pct"]
    assert out["history"]["train_loss"] == res.history["train_loss"].tolist()
    assert out["metrics"]["density"] == cfg.density  # the weights' density, not the biases'
    assert out["metrics"]["kept"] == round(0.05 * 3 * 8 * 36)
