"""The commands' answers to bad input (NOTE [CLI errors]): exit status 2, exactly one ``error:``
line naming the flag, TOML key or path the user wrote, no traceback, nothing written; or exit 0
with a one-line warning where the right answer is a warning and a rerun."""

from __future__ import annotations

import fractions
import json
import os
import stat
from pathlib import Path

import pytest
import torch

from spectrumkit.study import load_study, run_study
from tests.cases import TINY_PRUNE, TINY_SPECTRUM, TINY_TRAIN
from tests.study_fake import study_toml

T, PRUNE, SPECTRUM = TINY_TRAIN, TINY_PRUNE, TINY_SPECTRUM
HUGE = "10000000"  # N = 10^7: a GRU of 3·10^14 weights, petabytes; refused before any allocation
ALLOW = {"allow_trial_code": True}
ALLOW_CLI = ("--allow-trial-code",)


# ------------------------------------------------------------------- train, prune, spectrum


def _checkpoint(tmp_path: Path, payload, truncate: bool = False) -> Path:
    ck = tmp_path / "run" / "checkpoint" / "checkpoint.pt"
    ck.parent.mkdir(parents=True)
    torch.save(payload, ck)
    if truncate:
        ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    return ck


def _tiny_study(tmp_path: Path) -> Path:
    """A real, tiny study results folder (one trial), made in-process by the study runner."""
    from spectrumkit.study import run_study

    toml = tmp_path / "tiny.toml"
    toml.write_text('name = "tiny"\ndescription = "one tiny trial"\n[grid]\nmethod = ["random"]\n'
                    '[fixed]\nhidden_size = 4\nsparsity = 0.5\nsteps = 2\nbatch_size = 8\n'
                    'score_batch = 8\ndata = { limit = 32, val_limit = 16 }\n'
                    '[presets.quick]\nseeds = 1\n'
                    '[report]\ntable = { rows = "method", metric = "val_error_pct" }\n'
                    'figures = ["curves"]\n')
    run = run_study(toml, out=str(tmp_path / "res"), device="cpu", progress=False)
    assert run.statuses["ok"] == 1, run.failed
    return run.dir


def _case_checkpoint(payload, truncate=False):
    def case(tmp_path):
        ck = _checkpoint(tmp_path, payload, truncate)
        return [*T, "--out", tmp_path / "run"], [str(ck), "--no-resume"], None
    return case


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _case_prune_out_fifo(tmp_path):
    fifo = _fifo(tmp_path / "m.pt")
    return [*PRUNE, "--out", fifo], [str(fifo), "FIFO"], lambda: stat.S_ISFIFO(
        os.lstat(fifo).st_mode)


def _case_prune_out_symlink(tmp_path):
    real = tmp_path / "real.pt"
    real.write_bytes(b"keep")
    link = tmp_path / "m.pt"
    link.symlink_to(real)
    return [*PRUNE, "--out", link], [str(link), "symbolic link"], lambda: (
        link.is_symlink() and real.read_bytes() == b"keep")


def _case_train_target_fifo(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    fifo = _fifo(out / "metrics.json")
    return [*T, "--out", out], [str(fifo), "FIFO"], lambda: stat.S_ISFIFO(os.lstat(fifo).st_mode)


def _blocker(tmp_path: Path) -> Path:
    b = tmp_path / "a-file"
    b.write_text("")
    return b


def _case_out(argv, sub):
    def case(tmp_path):
        b = _blocker(tmp_path)
        return [*argv, "--out", b / sub], [str(b), "not a folder"], None
    return case


def _case_figures_unwritable(tmp_path):
    d = _tiny_study(tmp_path)
    figs = d / "figures"
    if figs.is_dir():
        for p in figs.iterdir():
            p.unlink()
        figs.rmdir()
    figs.write_text("not a folder")
    return ["figures", d], [str(figs), "not a folder"], lambda: figs.read_text() == "not a folder"


CASES = {
    # checkpoints that cannot be read
    "checkpoint-blocked-pickle": _case_checkpoint({"x": fractions.Fraction(1, 2)}),
    "checkpoint-saved-list": _case_checkpoint([1, 2, 3]),
    "checkpoint-truncated": _case_checkpoint({"model": {"w": torch.zeros(4096)}}, truncate=True),
    # results that would replace something other than a regular file
    "prune-out-fifo": _case_prune_out_fifo,
    "prune-out-symlink": _case_prune_out_symlink,
    "train-target-fifo": _case_train_target_fifo,
    # output folders and files that cannot be written
    "train-out-not-a-folder": _case_out(T, "sub"),
    "prune-out-not-a-folder": _case_out(PRUNE, "m.pt"),
    "prune-out-empty": lambda tmp_path: ([*PRUNE, "--out", ""], ["prune --out", "''"], None),
    "spectrum-out-not-a-folder": _case_out(SPECTRUM, "sub"),
    "figures-not-a-folder": _case_figures_unwritable,
    # seeds, inits and sizes out of range
    "train-seed-beyond-64-bits": lambda tmp_path: ([*T, "--seed", 2**70, "--out", tmp_path / "o"],
                                                   ["--seed", str(2**70)], None),
    "prune-seed-beyond-64-bits": lambda tmp_path: ([*PRUNE, "--seed", 2**64], ["--seed"], None),
    "synflow-infinite-init": lambda tmp_path: (
        [*PRUNE, "--method", "synflow", "--init", "normal:1e39"], ["finite", "normal:1e+39"], None),
    "train-hidden-too-large": lambda tmp_path: (
        [*T[:1], "--hidden-size", HUGE, *T[3:], "--out", tmp_path / "o"], ["memory", "--hidden-size"], None),
    "prune-hidden-too-large": lambda tmp_path: ([*PRUNE, "--hidden-size", HUGE], ["memory"], None),
    "spectrum-hidden-too-large": lambda tmp_path: (
        [*SPECTRUM, "--hidden-size", HUGE, "--out", tmp_path / "o"], ["memory"], None),
    "embed-size-0-seq-mnist": lambda tmp_path: (
        [*T, "--embed-size", 0, "--out", tmp_path / "o"], ["--embed-size"], None),
    "prune-steps-below-horizon": lambda tmp_path: (
        ["prune", "--hidden-size", "8", "--seq-len", "3", "--score-batch", "8"], ["--horizon"], None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_to_a_command_is_one_line_before_anything_is_written(tmp_path, case, cli):
    """Exit status 2, one ``error:`` line naming what the user wrote, no traceback; nothing
    written and the offending path left as it was."""
    args, needles, intact = CASES[case](tmp_path)
    r = cli(*args)
    line = r.error_line(alone=True)
    for n in needles:
        assert n in line, line
    assert "wrote" not in r.stdout, r.stdout  # refused before any result was written
    if intact is not None:
        assert intact()


# --------------------------------------------------------------------------- study, figures


def test_study_and_figures_answer_bad_input_in_one_line(tmp_path, cli):
    """Unsafe study names, ill-formed result files, trials of another preset, studies whose
    trials all fail, a bad [report] metric, a missing data root, an import path without
    --allow-trial-code and a huge --seeds: exit status 2 with exactly one ``error:`` line, or 0
    where the right answer is a warning and a rerun; never a traceback."""
    out = tmp_path / "out"
    cases = []  # (what, argv, expected exit status, check(result))

    # unsafe study names write nothing anywhere
    for i, bad in enumerate([str(tmp_path / "abs" / "dir"), "../x", ".", "", "a/b"]):
        toml = study_toml(tmp_path, name=bad, file=f"name{i}.toml")
        cases.append((f"name {bad!r}", ["study", str(toml), "--out", str(out), *ALLOW_CLI], 2,
                      lambda r: "one path component" in r.stderr))

    # a non-UTF-8 result file is a warning and a rerun, in `study` and in `figures`
    good = study_toml(tmp_path, name="good", hidden=(8, 16), seeds=1, paper_seeds=2,
                      file="good.toml")
    paper = run_study(good, preset="paper", out=str(out), progress=False, **ALLOW)
    quick = load_study(good, "quick")
    trials = out / "good" / "trials"
    bad_file = trials / f"{quick.keys[0]}.json"
    other = next(trials / f"{k}.json" for k in paper.study.keys if k not in quick.keys)
    other.write_bytes(b"\xff\xfe not a result")  # another preset's corrupt file: not read
    bad_file.write_bytes(b"\xff\xfe\x00\x80")
    cases.append(("non-UTF-8 result, study run", ["study", str(good), "--out", str(out),
                                                   *ALLOW_CLI], 0,
                  lambda r: f"warning: corrupt result file {bad_file}: not UTF-8" in r.stderr
                  and "2 trials, 1 already done, 1 run now; ok 2" in r.stdout
                  and str(other) not in r.stderr))
    # figures of the quick study leave out the paper trials, and say so
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

    # all trials fail -> the summary first, then one error line; a rerun says so
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
    # a bad [report] metric is refused before anything runs
    metric = study_toml(tmp_path, name="metric", trial="prune-train", metric="val_eror_pct",
                        file="metric.toml")
    cases.append(("bad report metric", ["study", str(metric), "--out", str(out)], 2,
                  lambda r: "did you mean 'val_error_pct'" in r.stderr
                  and not (out / "metric").exists()))
    # a data root without the files is refused before any trial runs
    dr = study_toml(tmp_path, name="dataroot", file="dataroot.toml")
    cases.append(("--data-root /nonexistent", ["study", str(dr), "--out", str(out),
                                               "--data-root", str(tmp_path / "nonexistent"),
                                               *ALLOW_CLI], 2,
                  lambda r: "MNIST train images" in r.stderr and not (out / "dataroot").exists()))
    # an import path needs --allow-trial-code; a huge --seeds is refused at once
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
        r = cli(*argv)
        try:
            r.error_line() if status == 2 else r.ok()
            assert check(r)
        except AssertionError:
            wrong.append(f"{what}: exit {r.returncode}\n  stdout: {r.stdout[-600:]!r}\n"
                         f"  stderr: {r.stderr[-600:]!r}")
    assert not wrong, f"{len(wrong)} of {len(cases)} cases wrong:\n" + "\n".join(wrong)
    assert not (tmp_path / "x").exists() and not (tmp_path / "abs").exists()
