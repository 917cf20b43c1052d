"""Ctrl-C, SIGTERM and kill -9 of a ``spectrumkit study`` under the process executor.

A terminal's Ctrl-C is SIGINT to the whole process group; ``kill`` sends SIGTERM to one process.
Either ends the run with one line ``error: aborted`` (status 130, or 143 for SIGTERM), within
seconds, with no process of the run left and no warning, and the next run resumes to completion.
After ``kill -9`` of the parent its workers and the resource tracker end too.
The study is the stand-in trial ``tests/study_fake.py`` (it sleeps, so a signal lands mid-trial).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.study_fake import expected_error

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="process groups and /proc as on Linux")]

SLEEP = 3.0  # seconds each trial sleeps


def _toml(tmp_path: Path, sleep: float = SLEEP) -> Path:
    """Two trials of the stand-in: with two workers they run side by side."""
    p = tmp_path / "fake.toml"
    p.write_text(f"""name = "fake"
[grid]
hidden_size = [8, 16]
method = ["random"]
[fixed]
trial = "tests.study_fake:run"
epochs = 1
data = {{ sleep = {sleep} }}
[presets.quick]
seeds = 1
[report]
table = {{ rows = "hidden_size", cols = "method", metric = "val_error_pct" }}
""")
    return p


def _start(toml: Path, out: Path) -> subprocess.Popen:
    """``python -m spectrumkit.cli study`` in a process group of its own, as a shell job."""
    cmd = [sys.executable, "-m", "spectrumkit.cli", "study", str(toml), "--out", str(out),
           "--executor", "process", "--workers", "2", "--allow-trial-code"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a process of the group that is not ours
        return True
    return True


def _catches_sigterm(pid: int) -> bool:
    """Whether ``pid`` has its SIGTERM handler: the CLI's first import has begun."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")),
                 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


def _wait_for(what, proc: subprocess.Popen, timeout: float = 120) -> float:
    """Poll ``what()`` until true; returns the time.monotonic() it became so."""
    deadline = time.monotonic() + timeout
    while not what():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.005)
    return time.monotonic()


def _end(proc: subprocess.Popen, sent: float, within: float = 10.0) -> tuple[str, str, float]:
    """Wait (at most ``within`` s after ``sent``) for the run and every process of its group.

    The pipes stay open while any process of the run holds them (workers, resource tracker), so
    ``communicate`` returning means they are all gone; the group is checked as well.
    """
    stdout, stderr = proc.communicate(timeout=max(0.1, sent + within - time.monotonic()))
    while _group_alive(proc.pid):
        assert time.monotonic() < sent + within, "a process of the run is still alive"
        time.sleep(0.05)
    return stdout, stderr, time.monotonic() - sent


def _kill_group(proc: subprocess.Popen) -> None:
    """Cleanup: nothing of the run outlives the test, its pipes are closed."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _assert_one_line(stderr: str, rc: int, expected: int) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert rc == expected, stderr
    assert [ln for ln in lines if ln.startswith("error:")] == ["error: aborted"], stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "arning" not in stderr and "leaked" not in stderr, stderr  # Warning, warning
    assert all(ln.startswith(("fake (quick):", "error: aborted")) for ln in lines), stderr


def _resumes(toml: Path, out: Path) -> None:
    """The next run completes the study: both trials ok, with the stand-in's closed form."""
    r = subprocess.run([sys.executable, "-m", "spectrumkit.cli", "study", str(toml), "--out",
                        str(out), "--executor", "process", "--workers", "2",
                        "--allow-trial-code"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert "arning" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    results = [json.loads(p.read_text()) for p in (out / "fake" / "trials").glob("*.json")]
    assert sorted((r["config"]["hidden_size"], r["status"], r["metrics"]["val_error_pct"])
                  for r in results) == [(8, "ok", expected_error(8, 0, "random")),
                                        (16, "ok", expected_error(16, 0, "random"))]
    assert expected_error(8, 0, "random") == 2.0  # 8/8 + 2·0 + 1


def test_ctrl_c_at_twenty_moments_is_one_line_and_resumable(tmp_path):
    """SIGINT to the process group at 20 moments, from the first import of the CLI to the middle
    of the last trial: each run ends within 10 s, exit 130, one ``error: aborted`` line, no
    warning, no process of its group left; then the next run completes the study."""
    toml, out = _toml(tmp_path), tmp_path / "out"
    logs = out / "fake" / "logs"
    # a probe run tells when the trials run on this machine; it is the last (20th) moment
    proc = _start(toml, out)
    try:
        t0 = _wait_for(lambda: _catches_sigterm(proc.pid), proc)
        started = _wait_for(lambda: len(list(logs.glob("*.log"))) >= 2, proc)
        middle = started - t0 + SLEEP / 2
        time.sleep(max(0.0, t0 + middle - time.monotonic()))
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        _, stderr, took = _end(proc, sent)
    finally:
        _kill_group(proc)
    _assert_one_line(stderr, proc.returncode, 130)
    seconds = [took]
    for i in range(19):
        at = middle * i / 19  # after the SIGTERM handler is there: the first import has begun
        proc = _start(toml, out)
        try:
            t0 = _wait_for(lambda: _catches_sigterm(proc.pid), proc)
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            os.killpg(proc.pid, signal.SIGINT)
            sent = time.monotonic()
            _, stderr, took = _end(proc, sent)
        finally:
            _kill_group(proc)
        _assert_one_line(stderr, proc.returncode, 130)
        seconds.append(took)
    assert not list((out / "fake" / "trials").glob("*.json"))  # nothing finished, nothing torn
    print(f"20 SIGINTs ended in at most {max(seconds):.2f} s (median "
          f"{sorted(seconds)[10]:.2f} s); middle of the trials at {middle:.2f} s")
    _resumes(toml, out)


def test_sigterm_is_one_line_and_resumable(tmp_path):
    """``kill PID`` (SIGTERM to the parent alone) mid-trial: one line, exit 143 (128 + 15), the
    workers and the resource tracker end too; the next run completes the study."""
    toml, out = _toml(tmp_path), tmp_path / "out"
    proc = _start(toml, out)
    try:
        _wait_for(lambda: len(list((out / "fake" / "logs").glob("*.log"))) >= 2, proc)
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr, _ = _end(proc, time.monotonic())
    finally:
        _kill_group(proc)
    _assert_one_line(stderr, proc.returncode, 143)
    assert not list((out / "fake" / "trials").glob("*.json"))
    _resumes(toml, out)


def test_sigterm_while_importing_is_one_line(tmp_path):
    """SIGTERM while the CLI still imports: one line and 143 at once, no traceback."""
    proc = _start(_toml(tmp_path), tmp_path / "out")
    try:
        _wait_for(lambda: _catches_sigterm(proc.pid), proc)
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr, _ = _end(proc, time.monotonic())
    finally:
        _kill_group(proc)
    _assert_one_line(stderr, proc.returncode, 143)
    assert not (tmp_path / "out").exists()


def test_kill_9_of_the_parent_ends_its_workers(tmp_path):
    """``kill -9`` of the study's process mid-trial: its workers and the resource tracker are
    gone within 10 s (they would otherwise sleep on, reparented to init)."""
    toml, out = _toml(tmp_path, sleep=60), tmp_path / "out"
    proc = _start(toml, out)
    try:
        _wait_for(lambda: len(list((out / "fake" / "logs").glob("*.log"))) >= 2, proc)
        children = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) >= 4, children  # the study, two workers, the resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        sent = time.monotonic()
        proc.wait()  # reaped: what is left of the group are its children
        while _group_alive(proc.pid):
            assert time.monotonic() < sent + 10, subprocess.run(
                ["ps", "-o", "pid,ppid,stat,cmd", "-g", str(proc.pid)], capture_output=True,
                text=True).stdout
            time.sleep(0.05)
    finally:
        _kill_group(proc)
