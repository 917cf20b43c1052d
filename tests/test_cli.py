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
