"""Reliability (issue 12, defects 1, 4, 6, 7, 12 and 13): the atomic writer, output paths,
checkpoints, seeds, dtypes and sizes, and the CLI driven as a user would drive it.

The CLI tests run ``python -m spectrumkit.cli`` as a subprocess from the repository root and check
what a user sees: exit status 2, exactly one ``error: ...`` line on stderr, no traceback
(NOTE [CLI errors]). The tiny training command is the issue's ``$T``.
"""

from __future__ import annotations

import fractions
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spectrumkit import SpectrumkitError, count_params
from spectrumkit._io import write_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64
T = ["train", "--hidden", "8", "--data-option", "limit=256", "--data-option", "val_limit=128",
     "--steps", "4"]
PRUNE = ["prune", "--hidden", "8", "--steps", "4", "--batch-size", "8"]
SPECTRUM = ["spectrum", "--cell", "gru", "--hidden", "8", "--seq-len", "6", "--batch", "4"]
HUGE = "10000000"  # N = 10^7: a GRU of 3·10^14 weights, petabytes; refused before any allocation


def cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "spectrumkit.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


def one_error_line(r) -> str:
    """Exit status 2, exactly one line ``error: ...`` on stderr, no traceback; return the line."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


# --------------------------------------------------------------------------------------------------
# Defect 4: one atomic writer that never replaces anything but a regular file
# --------------------------------------------------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    return path


@pytest.mark.parametrize("kind,make,is_kind", [
    ("a FIFO", _fifo, stat.S_ISFIFO),
    ("a socket", _socket, stat.S_ISSOCK),
    ("a folder", lambda p: (p.mkdir(), (p / "inside").write_text("x"), p)[-1], stat.S_ISDIR),
])
def test_atomic_write_refuses_non_regular_targets(tmp_path, kind, make, is_kind):
    """A device, FIFO, socket or folder is never replaced: the writer refuses, naming the path."""
    target = make(tmp_path / "target")
    with pytest.raises(SpectrumkitError, match=rf"write_atomic: expected .*regular file.*, got "
                       rf"{target} \({kind}"):
        write_text_atomic(target, "data")
    assert is_kind(os.lstat(target).st_mode)  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]  # no temporary file left


def test_atomic_write_symlink_policy_is_refuse(tmp_path):
    """NOTE [Atomic writes]: a symbolic link as the final component is refused, never replaced and
    never written through; a link to a folder higher up the path is an ordinary folder."""
    real = tmp_path / "real.txt"
    real.write_text("keep")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere")
    for p in (link, dangling):
        with pytest.raises(SpectrumkitError, match=rf"got {p} \(a symbolic link"):
            write_atomic(p, lambda f: f.write(b"new"))
        assert p.is_symlink()
    assert real.read_text() == "keep" and not (tmp_path / "nowhere").exists()
    folder_link = tmp_path / "folder-link"
    folder_link.symlink_to(tmp_path / "sub", target_is_directory=True)
    (tmp_path / "sub").mkdir()
    write_text_atomic(folder_link / "a.txt", "through a folder link")
    assert (tmp_path / "sub" / "a.txt").read_text() == "through a folder link"


def test_atomic_write_turns_os_errors_into_one_line_naming_the_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SpectrumkitError, match=rf"write_atomic: expected a path that can be "
                       rf"written, got {blocker / 'sub' / 'x.csv'} \(") as e:
        write_text_atomic(blocker / "sub" / "x.csv", "x")
    assert isinstance(e.value, OSError)  # still an OSError for code that handles those


# --------------------------------------------------------------------------------------------------
# Defect 6: one output-path check, up front
# --------------------------------------------------------------------------------------------------


def test_output_check_refuses_what_cannot_be_written(tmp_path):
    from spectrumkit._io import check_output_dir, check_output_file

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    fifo = _fifo(tmp_path / "fifo")
    cases = [
        (lambda: check_output_dir("f", blocker / "sub"), f"{blocker} is not a folder"),
        (lambda: check_output_dir("f", blocker), "not a folder"),
        (lambda: check_output_dir("f", fifo), "a FIFO"),
        (lambda: check_output_dir("f", ""), "''"),
        (lambda: check_output_dir("f", tmp_path, files=["fifo"]), f"{fifo} (a FIFO"),
        (lambda: check_output_file("f", ""), "''"),
        (lambda: check_output_file("f", tmp_path), "a folder"),
        (lambda: check_output_file("f", fifo), "a FIFO"),
        (lambda: check_output_file("f", blocker / "m.pt"), "not a folder"),
    ]
    for call, needle in cases:
        with pytest.raises(SpectrumkitError) as e:
            call()
        assert str(e.value).startswith("f: expected ") and needle in str(e.value), str(e.value)
    # what can be written passes, and the check itself creates nothing
    assert check_output_dir("f", tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_output_file("f", tmp_path / "m.pt") == tmp_path / "m.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "fifo"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_check_refuses_a_read_only_folder(tmp_path):
    from spectrumkit._io import check_output_dir

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(SpectrumkitError, match=rf"got {ro / 'out'} \(.*ermission denied"):
            check_output_dir("f", ro / "out")
    finally:
        ro.chmod(0o755)


def test_train_write_time_os_error_is_one_line_naming_the_path(tmp_path, monkeypatch):
    """The folder vanishes while training: the write fails, and the user reads one line naming the
    path, no traceback (the up-front check cannot foresee it)."""
    from click.testing import CliRunner

    from spectrumkit.cli import main

    train_module = sys.modules["spectrumkit.train"]  # the module (the package exports train())

    out = tmp_path / "out"
    real_train = train_module.train

    def train_then_break_the_folder(*a, **k):
        r = real_train(*a, **k)
        for p in sorted(out.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        out.rmdir()
        out.write_text("now a file")
        return r

    monkeypatch.setattr(train_module, "train", train_then_break_the_folder)
    r = CliRunner().invoke(main, [*T, "--out", str(out)])
    assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit), \
        r.exception
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(out) in lines[0], r.stderr


# --------------------------------------------------------------------------------------------------
# Defect 1: one checkpoint identity; --no-resume starts afresh
# --------------------------------------------------------------------------------------------------


def test_resume_only_the_same_run_and_no_resume_starts_afresh(tmp_path):
    """Defect 1 at the command line: a resume with another --init is refused in one line naming
    it; --no-resume removes the earlier run's checkpoint and mask; a dense run leaves no mask."""
    out = tmp_path / "run"
    r = cli(*T, "--method", "random", "--sparsity", "0.5", "--out", out)
    assert r.returncode == 0, r.stderr
    assert (out / "mask.pt").is_file() and (out / "checkpoint" / "checkpoint.pt").is_file()
    before = (out / "metrics.json").read_bytes()
    line = one_error_line(cli(*T, "--method", "random", "--sparsity", "0.5", "--init", "normal:1",
                              "--out", out))
    assert "init ('glorot' in the checkpoint, 'normal:1' now)" in line and "--no-resume" in line
    assert (out / "metrics.json").read_bytes() == before
    r = cli(*T, "--init", "normal:1", "--no-resume", "--out", out)  # dense, afresh, same folder
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["history.csv", "metrics.json"]
    assert not (out / "checkpoint" / "checkpoint.pt").exists()
    assert '"init": "normal:1"' in (out / "metrics.json").read_text()
    # a resumed dense run after a pruned --no-resume run leaves no stale mask either
    r = cli(*T, "--method", "random", "--sparsity", "0.5", "--no-resume", "--out", out)
    assert r.returncode == 0 and (out / "mask.pt").is_file(), r.stderr
    r = cli(*T, "--out", out)
    assert r.returncode == 0, r.stderr
    assert not (out / "mask.pt").exists() and (out / "checkpoint" / "checkpoint.pt").is_file()


# --------------------------------------------------------------------------------------------------
# Defect 12: a seed is the same network and the same batch in every dtype
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["glorot", "glorot_uniform", "he", "normal:0.3",
                                    "uniform:-0.2,0.5", "torch", "orthogonal;bias=torch"])
def test_float64_init_is_the_float32_init_cast(scheme):
    from spectrumkit.init import init_params

    p32 = init_params("lstm", 5, 4, scheme, seed=3, dtype=torch.float32)
    p64 = init_params("lstm", 5, 4, scheme, seed=3, dtype=F64)
    for k in p32:
        assert p32[k].dtype == torch.float32 and p64[k].dtype == F64
        if scheme.startswith("orthogonal") and not k.startswith("bias"):
            # orthogonal is computed in float64 for every dtype (QR), then cast
            assert torch.equal(p64[k].float(), p32[k]), k
        else:
            assert torch.equal(p64[k], p32[k].double()), k


def test_float64_models_and_cli_batch_are_the_float32_ones_cast():
    from spectrumkit.cli._data import _cli_batch
    from spectrumkit.models import LanguageModel, SequenceClassifier

    for make in (lambda dt: SequenceClassifier("gru", 3, 4, 5, seed=7, dtype=dt),
                 lambda dt: LanguageModel("rnn", 11, 3, 4, seed=7, dtype=dt)):
        a, b = make(torch.float32).state_dict(), make(F64).state_dict()
        for k in a:
            assert b[k].dtype == F64 and torch.equal(b[k], a[k].double()), k
    x32, y32 = _cli_batch("t", "gaussian", None, 4, 6, 3, 10, 5, dtype=torch.float32)
    x64, y64 = _cli_batch("t", "gaussian", None, 4, 6, 3, 10, 5, dtype=F64)
    assert x64.dtype == F64 and torch.equal(x64, x32.double()) and torch.equal(y64, y32)


def test_spectrum_cli_float64_checks_the_float32_run(tmp_path):
    """The same seed in both dtypes: the float64 spectrum is the float32 one to float32 precision."""
    import pandas as pd

    tables = {}
    for dt in ("float32", "float64"):
        r = cli(*SPECTRUM, "--dtype", dt, "--device", "cpu", "--out", tmp_path / dt)
        assert r.returncode == 0, r.stderr
        tables[dt] = pd.read_csv(tmp_path / dt / "spectrum.csv", index_col=0)
    a, b = tables["float32"], tables["float64"]
    assert list(a.columns) == list(b.columns) and len(a) == 4
    num = a.select_dtypes("number").columns
    assert ((a[num] - b[num]).abs() <= 1e-4 * (1 + b[num].abs())).all().all(), (a[num] - b[num])


# --------------------------------------------------------------------------------------------------
# Defect 13 (part): seeds, infinite inits, the meta device, sizes, embed size, horizon
# --------------------------------------------------------------------------------------------------


def test_library_refuses_seed_beyond_64_bits_inf_init_and_meta_device():
    from spectrumkit.data import load_task
    from spectrumkit.init import init_params
    from spectrumkit.train import make_model, train

    task = load_task("adding", T=4, n_train=8, n_val=4, n_test=4)
    with pytest.raises(SpectrumkitError, match=r"train: expected seed to be an integer in "
                       r"0\.\.2\*\*63 - 1, got 1180591620717411303424"):
        train(make_model(task, "gru", 3, seed=0), task, steps=1, seed=2**70, device="cpu")
    with pytest.raises(SpectrumkitError, match=r"init_params: expected .*finite.*normal:1e\+39"):
        init_params("gru", 2, 3, "normal:1e39", seed=0)
    with pytest.raises(SpectrumkitError, match=r"init_params: expected .*device.*, got meta"):
        make_model(task, "gru", 3, seed=0, device="meta")
    with pytest.raises(SpectrumkitError, match=r"train: expected a model whose parameters hold "
                       r"data .*on meta"):
        train(make_model(task, "gru", 3, seed=0).to("meta"), task, steps=1, seed=0, device="cpu")


def test_cells_columns_stay_apart_for_huge_sizes():
    big = 10**20
    r = cli("cells", "--hidden", big)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert rows and all(len(row) == 4 for row in rows), r.stdout
    for name, _, weights, with_bias in rows:
        assert weights == f"{count_params(name, 28, big):,}"
        assert with_bias == f"{count_params(name, 28, big, include_bias=True):,}"


# --------------------------------------------------------------------------------------------------
# Every CLI case of defects 1, 4, 6, 7, 13: exit 2, one error line, no traceback
# --------------------------------------------------------------------------------------------------


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
    # defect 7
    "checkpoint-blocked-pickle": _case_checkpoint({"x": fractions.Fraction(1, 2)}),
    "checkpoint-saved-list": _case_checkpoint([1, 2, 3]),
    "checkpoint-truncated": _case_checkpoint({"model": {"w": torch.zeros(4096)}}, truncate=True),
    # defect 4
    "prune-out-fifo": _case_prune_out_fifo,
    "prune-out-symlink": _case_prune_out_symlink,
    "train-target-fifo": _case_train_target_fifo,
    # defect 6
    "train-out-not-a-folder": _case_out(T, "sub"),
    "prune-out-not-a-folder": _case_out(PRUNE, "m.pt"),
    "prune-out-empty": lambda tmp_path: ([*PRUNE, "--out", ""], ["prune --out", "''"], None),
    "spectrum-out-not-a-folder": _case_out(SPECTRUM, "sub"),
    "figures-not-a-folder": _case_figures_unwritable,
    # defect 13
    "train-seed-beyond-64-bits": lambda tmp_path: ([*T, "--seed", 2**70, "--out", tmp_path / "o"],
                                                   ["--seed", str(2**70)], None),
    "prune-seed-beyond-64-bits": lambda tmp_path: ([*PRUNE, "--seed", 2**64], ["--seed"], None),
    "synflow-infinite-init": lambda tmp_path: (
        [*PRUNE, "--method", "synflow", "--init", "normal:1e39"], ["finite", "normal:1e+39"], None),
    "train-hidden-too-large": lambda tmp_path: (
        [*T[:1], "--hidden", HUGE, *T[3:], "--out", tmp_path / "o"], ["memory", "--hidden"], None),
    "prune-hidden-too-large": lambda tmp_path: ([*PRUNE, "--hidden", HUGE], ["memory"], None),
    "spectrum-hidden-too-large": lambda tmp_path: (
        [*SPECTRUM, "--hidden", HUGE, "--out", tmp_path / "o"], ["memory"], None),
    "embed-size-0-seq-mnist": lambda tmp_path: (
        [*T, "--embed-size", 0, "--out", tmp_path / "o"], ["--embed-size"], None),
    "prune-steps-below-horizon": lambda tmp_path: (
        ["prune", "--hidden", "8", "--steps", "3", "--batch-size", "8"], ["--horizon"], None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_no_traceback_for_any_input_of_the_issue(tmp_path, case):
    args, needles, intact = CASES[case](tmp_path)
    r = cli(*args)
    line = one_error_line(r)
    for n in needles:
        assert n in line, line
    assert "wrote" not in r.stdout, r.stdout  # refused before any result was written
    if intact is not None:
        assert intact()
