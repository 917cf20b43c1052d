"""Interrupting a study: Ctrl-C under the process executor ends the run with one line and exit
status 130, and writes no half result."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.study_fake import study_toml

ALLOW_CLI = ("--allow-trial-code",)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["workers starting", "trials running"])
def test_ctrl_c_under_the_process_executor_is_one_line(tmp_path, when, cli):
    """Ctrl-C (SIGINT to the terminal's process group) under the process executor: one line and
    exit 130, no worker traceback, whether the workers are still starting (importing torch) or
    inside their trials."""
    toml = study_toml(tmp_path, hidden=(8, 16, 24, 32), data="{ sleep = 30 }")
    out = tmp_path / "out"
    cmd = ["study", str(toml), "--out", str(out), "--executor", "process", "--workers", "2",
           *ALLOW_CLI]
    with cli.popen(*cmd) as proc:  # its own process group, killed and closed at the end
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
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert [ln for ln in lines if ln.startswith("error:")] == ["error: aborted"], stderr
    assert len(lines) <= 2, stderr  # the announcement and the error
    assert not list((out / "fake" / "trials").glob("*.json"))  # nothing half-written
