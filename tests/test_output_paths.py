"""Output paths: one check, up front, that a command's output folder or file can be written (a
folder, not a file, FIFO or read-only place), and one line naming the path when a write fails
later anyway."""

from __future__ import annotations

import os
import sys

import pytest

from spectrumkit import SpectrumkitError
from tests.cases import TINY_TRAIN


def test_output_check_refuses_what_cannot_be_written(tmp_path):
    from spectrumkit._io import check_output_dir, check_output_file

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    os.mkfifo(tmp_path / "fifo")
    fifo = tmp_path / "fifo"
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


def test_train_write_time_os_error_is_one_line_naming_the_path(tmp_path, monkeypatch, cli):
    """The folder vanishes while training: the write fails, and the user reads one line naming the
    path, no traceback (the up-front check cannot foresee it)."""
    train_module = sys.modules["spectrumkit.training"]  # the module (the package exports train())

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
    r = cli(*TINY_TRAIN, "--no-progress", "--out", str(out))  # no progress lines on stderr
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(out) in lines[0], r.stderr
