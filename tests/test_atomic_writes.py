"""The atomic writer (NOTE [Atomic writes], ``spectrumkit/_io.py``): results appear whole or not at
all, with ordinary permissions, and nothing but a regular file is ever replaced."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from spectrumkit import SpectrumkitError
from spectrumkit._io import write_atomic, write_text_atomic


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
    """A FIFO, socket or folder is never replaced: the writer refuses, naming the path."""
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


def test_atomic_writes_leave_ordinary_permissions_and_no_temp_files(tmp_path):
    """NOTE [Atomic writes]: one implementation; results are 0666 minus the umask, not 0600."""
    umask = os.umask(0o022)
    os.umask(umask)
    p = write_text_atomic(tmp_path / "sub" / "a.txt", "x\ny\n")
    q = write_atomic(tmp_path / "b.bin", lambda f: f.write(b"\x00\x01"))
    assert p.read_bytes() == b"x\ny\n" and q.read_bytes() == b"\x00\x01"
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask) == (q.stat().st_mode & 0o777)

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    try:
        write_atomic(q, boom)
    except RuntimeError:
        pass
    assert q.read_bytes() == b"\x00\x01"  # the old file survives a failed write
    assert sorted(x.name for x in tmp_path.iterdir()) == ["b.bin", "sub"]


def test_atomic_write_leaves_old_content_and_no_temp_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    write_text_atomic(target, "old")

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
