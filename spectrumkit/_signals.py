r"""Ctrl-C and SIGTERM end the ``spectrumkit`` command with one line (standard library only).

NOTE [Aborts]
A terminal's Ctrl-C sends SIGINT to the whole process group; a scheduler, ``kill`` or a container
stop sends SIGTERM. Both end the command the same way: one line ``error: aborted`` on stderr, no
traceback, and the shell's status for the signal, 128 + its number (130 for SIGINT, 143 for
SIGTERM). A study is resumable after either: results are written one by one and atomically, the
lock goes with the process.

Two phases:

* **Importing** (torch alone takes seconds): nothing has been written and no lock is held, so the
  handler writes the line and leaves at once with ``os._exit``. It is installed by
  :func:`cli_prelude`, the first statement of ``spectrumkit/__init__.py``, and only when this
  interpreter runs the command (``python -m spectrumkit.cli`` or the ``spectrumkit`` script): a
  library import leaves the signal handling alone.
* **Running a command** (:func:`command_signals`): SIGINT raises ``KeyboardInterrupt`` and SIGTERM
  raises :class:`Aborted` (a ``KeyboardInterrupt``), so every ``finally`` runs: a process pool
  stops its workers, a lock is released; the CLI then prints the line and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["Aborted", "abort_status", "cli_prelude", "command_signals", "runs_the_command"]

_ABORT_LINE = b"error: aborted\n"


class Aborted(KeyboardInterrupt):
    """The command was stopped by a signal other than SIGINT (SIGTERM); ``signum`` names it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def abort_status(e: BaseException | None) -> int:
    """The exit status of a command stopped by ``e``: 128 + the signal's number (130: SIGINT)."""
    while e is not None:
        if isinstance(e, Aborted):
            return 128 + e.signum
        e = e.__cause__ or e.__context__
    return 128 + signal.SIGINT


def runs_the_command() -> bool:
    """True when this interpreter was started to run ``spectrumkit`` (not to import it)."""
    argv = list(getattr(sys, "orig_argv", []) or [])
    if "--multiprocessing-fork" in argv:  # a pool worker: it is given the parent's sys.argv
        return False
    for i, a in enumerate(argv[:-1]):
        if a == "-m":
            return argv[i + 1] == "spectrumkit.cli"
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    return name in ("spectrumkit", "spectrumkit.exe", "spectrumkit-script.py")


def _leave(signum: int, frame: object) -> None:
    os.write(2, _ABORT_LINE)
    os._exit(128 + signum)


def cli_prelude() -> None:
    """While the command imports: SIGINT and SIGTERM print one line and exit (NOTE [Aborts])."""
    if not runs_the_command() or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup and friends keep theirs
            signal.signal(sig, _leave)


def _raise_aborted(signum: int, frame: object) -> None:
    raise Aborted(signum)


@contextlib.contextmanager
def command_signals() -> Iterator[None]:
    """While a command runs: SIGINT → ``KeyboardInterrupt``, SIGTERM → :class:`Aborted`.

    The previous handlers come back afterwards (the command may run inside a test process).
    Outside the main thread nothing is changed (handlers can be set there only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if before[signal.SIGINT] is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if before[signal.SIGTERM] is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _raise_aborted)
    try:
        yield
    finally:
        for sig, handler in before.items():
            if handler is not None:
                signal.signal(sig, handler)


cli_prelude()  # on import, before torch: NOTE [Aborts]
