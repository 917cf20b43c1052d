"""The CLI shell: version, help, one-line errors with exit status 2 (NOTE [CLI errors])."""

import subprocess
import sys

from spectrumkit import count_params


def _run(*args):
    return subprocess.run([sys.executable, "-m", "spectrumkit.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_version_and_cells_table():
    r = _run("--version")
    assert r.returncode == 0 and "spectrumkit" in r.stdout
    r = _run("cells", "--input-size", "28", "--hidden", "400")
    assert r.returncode == 0
    row = next(line for line in r.stdout.splitlines() if line.startswith("peephole_lstm"))
    assert f"{count_params('peephole_lstm', 28, 400):,}" in row


def test_unknown_option_is_one_line_exit_2():
    r = _run("cells", "--no-such-option")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no-such-option" in r.stderr
    assert "Traceback" not in r.stderr


def test_library_error_is_one_line_exit_2():
    r = _run("cells", "--hidden", "0")
    assert r.returncode == 2
    assert r.stderr.startswith("error: count_params: expected hidden_size")
    assert r.stderr.strip().count("\n") == 0


def test_atomic_writes_leave_ordinary_permissions_and_no_temp_files(tmp_path):
    """NOTE [Atomic writes]: one implementation; results are 0666 minus the umask, not 0600."""
    import os

    from spectrumkit._io import write_atomic, write_text_atomic

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
