r"""One run per output folder: an exclusive lock on ``FOLDER/.lock`` through :mod:`filelock`.

NOTE [Output locks]
``spectrumkit study`` (on ``OUT/<study>``) and ``spectrumkit train`` (on ``--out``) hold an
exclusive lock on the folder's ``.lock`` while they run. A second run into the same folder does
not wait: it is refused at once with one line (exit 2), ``expected no other run using the ...
folder, got FOLDER locked by another process``, and writes nothing. :mod:`filelock` takes an
``fcntl.flock`` lock on POSIX and ``msvcrt.locking`` on Windows; the kernel releases it when the
process ends, however it ends (kill -9 included), so a stale lock never blocks the next run. A
``.lock`` file left in a folder means nothing by itself: only the kernel's lock counts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import fail

__all__ = ["LOCK_NAME", "folder_lock"]

#: The lock file's name inside the folder it guards.
LOCK_NAME = ".lock"


@contextlib.contextmanager
def folder_lock(fn: str, folder: str | Path, what: str) -> Iterator[Path]:
    """Hold ``folder/.lock`` exclusively, or raise ``SpectrumkitError`` naming ``folder``.

    ``what`` names the folder in the refusal (``"study folder"``, ``"output folder"``). The folder
    is created if need be. Yields the lock file's path.
    """
    path = Path(folder) / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(fn, "an output folder that can be written",
                   f"{folder} ({type(e).__name__}: {e.strerror or e})") from None
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise fail(fn, f"no other run using the {what}",
                   f"{folder} locked by another process") from None
    try:
        yield path
    finally:
        lock.release()
