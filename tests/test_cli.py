"""The CLI shell: version, help, one-line errors with exit status 2 (NOTE [CLI errors])."""

import pytest

from spectrumkit.cells import count_params


@pytest.mark.slow
def test_version_and_cells_table_through_the_entry_point(cli):
    """``python -m spectrumkit.cli`` itself: the module entry point prints what the command does."""
    r = cli.subprocess("--version")
    assert r.returncode == 0 and "spectrumkit" in r.stdout
    r = cli.subprocess("cells", "--input-size", "28", "--hidden-size", "400")
    assert r.returncode == 0
    row = next(line for line in r.stdout.splitlines() if line.startswith("peephole_lstm"))
    assert f"{count_params('peephole_lstm', 28, 400):,}" in row


def test_unknown_option_is_one_line_exit_2(cli):
    r = cli("cells", "--no-such-option")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no-such-option" in r.stderr
    assert "Traceback" not in r.stderr


def test_library_error_is_one_line_exit_2(cli):
    r = cli("cells", "--hidden-size", "0")
    assert r.returncode == 2
    assert r.stderr.startswith("error: count_params: expected hidden_size")
    assert r.stderr.strip().count("\n") == 0


def test_cells_columns_stay_apart_for_huge_sizes(cli):
    big = 10**20
    r = cli("cells", "--hidden-size", big)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert rows and all(len(row) == 4 for row in rows), r.stdout
    for name, _, weights, with_bias in rows:
        assert weights == f"{count_params(name, 28, big):,}"
        assert with_bias == f"{count_params(name, 28, big, include_bias=True):,}"
