"""Atomic file writes: the one implementation every result, mask, table and figure goes through.

NOTE [Atomic writes]
A file is written to a temporary name in its own folder (``.<name>.<pid>.<random>.tmp``, created
with ``O_EXCL`` and mode 0666 minus the umask, so results get ordinary permissions), flushed and
fsync'ed, renamed over the final name with ``os.replace`` (atomic on POSIX and Windows), and then
the folder is fsync'ed so the rename itself survives a crash. A reader sees the old file or the
complete new one, never a partial write; the temporary file is removed if writing fails. A process
killed mid-write can leave a ``.tmp`` file behind, never a truncated result: the study store
sweeps such leftovers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["fsync_dir", "write_atomic", "write_text_atomic"]


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder so that a rename inside it is durable (no-op where folders can't be opened)."""
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # pragma: no cover - e.g. a file system that refuses it
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a binary temp file (NOTE [Atomic writes]).

    The parent folder is created if needed. Returns the final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines written as given)."""
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))
