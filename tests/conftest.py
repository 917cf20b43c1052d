"""Shared test settings: the two tiers, hypothesis profiles, the ``cli`` fixture, small helpers.

The ``ci`` profile (derandomized, no deadline, bounded examples) is the default; set
``HYPOTHESIS_PROFILE=dev`` for a longer randomized search.

NOTE [Two tiers]
``python -m pytest`` runs the fast tier: every test not marked ``slow``, in about two minutes on a
2-core machine, to be run after every change. ``python -m pytest --run-slow`` runs everything
(what CI and the README's test command run). Tests marked ``@pytest.mark.slow`` take more than a
few seconds: process pools, Ray, signals, kill-and-resume, fresh interpreters, long training and
the long Lanczos agreement cases. An explicit ``-m`` expression selects by itself
(``python -m pytest -m slow`` runs the slow tier alone).
"""

import contextlib
import os
import signal as _signal
import sys

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=25, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="run the slow tier too (NOTE [Two tiers] in tests/conftest.py)")


def pytest_collection_modifyitems(config, items):
    """Leave out the slow tier unless ``--run-slow`` or an explicit ``-m`` asks for it."""
    if config.getoption("--run-slow") or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory):
    """The data-digest cache (NOTE [Digest cache]) of the tests is their own, not the user's:
    ``XDG_CACHE_HOME`` points into the session's temporary folder, and child processes inherit
    it."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test opened, also when it fails."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, atol: float, rtol: float = 0.0,
                 what: str = "") -> None:
    """``torch.testing.assert_close`` that prints the differing entries (it does) with a label."""
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{what}\n{m}")


# ----------------------------------------------------------------------------- the CLI fixture
# NOTE [CLI in tests]
# A command runs in-process through click's CliRunner by default: importing torch once per test
# session instead of once per command is what keeps the default tier fast. ``cli.subprocess(...)``
# runs ``python -m spectrumkit.cli`` for the few tests whose point is the entry point, an exit
# status seen by a shell, or a signal. Both return a :class:`CliResult` with stdout and stderr
# apart; an exception that escapes the command in-process is formatted into ``stderr`` as the
# interpreter would print it, so "no traceback" reads the same for both. In-process runs share the
# interpreter: the fixture sets ``env=`` through monkeypatch for the call only and restores torch's
# thread count (``--threads`` sets it), so no command leaves state behind for the next test.
# ``cli.popen(...)`` starts the command in a process group of its own for tests that signal or kill
# it, and kills the group and closes the pipes when the test ends, passed or failed.

import dataclasses  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import traceback as _traceback  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

ROOT = _Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class CliResult:
    """What one command printed and its exit status."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def returncode(self) -> int:
        """The exit status, under ``subprocess.CompletedProcess``'s name."""
        return self.exit_code

    @property
    def output(self) -> str:
        """stdout then stderr."""
        return self.stdout + self.stderr

    def error_line(self, *, alone: bool = False) -> str:
        """Assert exit 2, exactly one ``error:`` line on stderr and no traceback; return it.

        ``alone=True``: the error line is all that stderr holds (blank lines aside).
        """
        assert self.exit_code == 2, (self.exit_code, self.stdout, self.stderr)
        errors = [ln for ln in self.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, self.stderr
        assert "Traceback" not in self.stderr and "Traceback" not in self.stdout, self.stderr
        if alone:
            assert [ln for ln in self.stderr.splitlines() if ln.strip()] == errors, self.stderr
        return errors[0]

    def ok(self) -> "CliResult":
        """Assert exit 0 with no traceback and no ``error:`` line; return self."""
        assert self.exit_code == 0, (self.exit_code, self.stdout, self.stderr)
        assert "Traceback" not in self.stderr and "error:" not in self.stderr, self.stderr
        return self


class Cli:
    """``cli("train", "--steps", 1)`` in-process; ``cli.subprocess(...)`` as a real process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self._monkeypatch = monkeypatch

    def __call__(self, *args: object, cwd: _Path | str | None = None, env: dict | None = None,
                 input: str | None = None) -> CliResult:
        from click.testing import CliRunner

        from spectrumkit.cli import main

        threads = torch.get_num_threads()
        with self._monkeypatch.context() as m:
            m.chdir(ROOT if cwd is None else cwd)
            for k, v in (env or {}).items():
                if v is None:
                    m.delenv(k, raising=False)
                else:
                    m.setenv(k, str(v))
            try:
                r = CliRunner().invoke(main, [str(a) for a in args], input=input,
                                       prog_name="spectrumkit")
            finally:
                torch.set_num_threads(threads)
        stderr = r.stderr
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            stderr += "Traceback (most recent call last):\n" + "".join(
                _traceback.format_exception(*r.exc_info))
        return CliResult(r.exit_code, r.stdout, stderr)

    @staticmethod
    def _env(env: dict | None) -> dict:
        full_env = {**os.environ, "OMP_NUM_THREADS": "1"}
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = str(v)
        return full_env

    def subprocess(self, *args: object, cwd: _Path | str | None = None, env: dict | None = None,
                   timeout: float = 300, input: str | None = None) -> CliResult:
        """``python -m spectrumkit.cli ARGS`` in a child process (one thread, same environment)."""
        r = _subprocess.run([sys.executable, "-m", "spectrumkit.cli", *map(str, args)],
                            cwd=ROOT if cwd is None else cwd, env=self._env(env), input=input,
                            capture_output=True, text=True, timeout=timeout, check=False)
        return CliResult(r.returncode, r.stdout, r.stderr)

    @contextlib.contextmanager
    def popen(self, *args: object, cwd: _Path | str | None = None, env: dict | None = None,
              capture: bool = True):
        """``python -m spectrumkit.cli ARGS`` started in a session (process group) of its own.

        Yields the ``subprocess.Popen`` (text pipes for stdout and stderr when ``capture``, else
        both to /dev/null). On exit, passed or failed, what is left of the group is killed, the
        process is reaped and its pipes are closed.
        """
        out = _subprocess.PIPE if capture else _subprocess.DEVNULL
        proc = _subprocess.Popen([sys.executable, "-m", "spectrumkit.cli", *map(str, args)],
                                 cwd=ROOT if cwd is None else cwd, env=self._env(env),
                                 stdout=out, stderr=out, text=True, start_new_session=True)
        with proc:
            try:
                yield proc
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, _signal.SIGKILL)  # the group: workers included
                proc.wait()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run a ``spectrumkit`` command in-process (NOTE [CLI in tests])."""
    return Cli(monkeypatch)
