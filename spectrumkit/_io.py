"""Atomic file writes and the output-path check: the one implementation every result, mask,
checkpoint, table and figure goes through, and the one check every command makes up front.

NOTE [Atomic writes]
A file is written to a temporary name in its own folder (``.<name>.<pid>.<random>.tmp``, created
with ``O_EXCL`` and mode 0666 minus the umask, so results get ordinary permissions), flushed and
fsync'ed, renamed over the final name with ``os.replace`` (atomic on POSIX and Windows), and then
the folder is fsync'ed so the rename itself survives a crash. A reader sees the old file or the
complete new one, never a partial write; the temporary file is removed if writing fails. A process
killed mid-write can leave a ``.tmp`` file behind, never a truncated result: the study store
sweeps such leftovers.

Only a regular file is ever replaced. ``os.replace`` would swap a device node (``/dev/null``), a
FIFO, a socket or a symbolic link for a regular file — as root that destroys a device — and would
try to rename over a folder (``--out ""`` is the current folder). So the final path must either
not exist or be a regular file; anything else is refused with a :class:`SpectrumkitError` naming
the path and what it is. The target is checked before writing and again just before the rename.

Symbolic links: the policy is REFUSE. A link as the final component (to a file, to anything, or
dangling) is never replaced and never written through: writing through would put the temporary
file and the result in the link target's folder, which may lie outside the output folder. Links
higher up the path are ordinary folders and are followed (``results -> /scratch/results`` works).

Any ``OSError`` while writing (a read-only file system, a full disk, a folder that vanished) is
re-raised as a one-line ``WriteError`` naming the final path: a :class:`SpectrumkitError` (so the
CLI prints one line) that is also an ``OSError`` (so callers that handle those keep working).

NOTE [Output paths]
Every command that writes (train, prune, spectrum, figures, study run) calls
:func:`check_output_dir` (or :func:`check_output_file` for a single file) on its ``--out`` BEFORE
any work, so an unwritable output costs seconds, not a finished run. The check creates nothing: it
walks up to the first existing ancestor, which must be a folder, and proves it can be written by
creating and removing an empty ``O_EXCL`` probe file there (``os.access`` is wrong for root and
for read-only mounts). It also refuses, by name, any file the command will replace that is not a
regular file (NOTE [Atomic writes]).

NOTE [Reading back]
Every file spectrumkit reads back (trial results, ``spec.json``, study TOMLs, checkpoints, mask
files) is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor before one
byte is read: only a regular file is read. Opening a FIFO for reading blocks until a writer comes
(for ever, in a results folder), and a folder, socket or device is no stored result either, so each
is refused by name (:class:`NotRegularFile`). Checking the descriptor, not the path, leaves no gap
between the check and the read. Decoding and validation are the caller's, each with an explicit
error path naming the file (:func:`read_text_file` for UTF-8 text).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import WriteError, fail

__all__ = ["NotRegularFile", "check_output_dir", "check_output_file", "fsync_dir",
           "open_regular", "read_regular", "read_text_file", "write_atomic", "write_text_atomic"]

_KINDS = ((stat.S_ISLNK, "a symbolic link: spectrumkit never replaces or writes through a link"),
          (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _what(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"  # pragma: no cover - door files and the like


def _oserror(e: OSError) -> str:
    return f"{type(e).__name__}: {e.strerror or e}"


def _write_error(fn: str, path: Path, e: OSError) -> WriteError:
    """The one-line error for an OSError while writing ``path``: a SpectrumkitError and OSError."""
    return WriteError(str(fail(fn, "a path that can be written", f"{path} ({_oserror(e)})")))


def _check_target(fn: str, path: Path) -> None:
    """``path`` must not exist or be a regular file (NOTE [Atomic writes]); lstat, links refused."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        return  # a parent is not a folder: the write itself reports it
    if not stat.S_ISREG(mode):
        raise fail(fn, "a regular file or a new path to write (only regular files are replaced)",
                   f"{path} ({_what(mode)})")


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder so that a rename inside it is durable (no-op where it cannot be opened)."""
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

    The parent folder is created if needed. Returns the final path. Refuses (SpectrumkitError) a
    final path that exists and is not a regular file, a symbolic link included; an ``OSError``
    while writing becomes a SpectrumkitError naming ``path``.
    """
    fn = "write_atomic"
    path = Path(path)
    if str(path) in ("", ".") or path.name in ("", ".", ".."):
        raise fail(fn, "a file path to write", repr(str(path)))
    _check_target(fn, path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise _write_error(fn, path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _check_target(fn, path)  # again, just before the rename
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise _write_error(fn, path, e) from None
        raise
    fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines written as given)."""
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def check_output_dir(fn: str, folder: str | os.PathLike, *, files: Iterable[str] = ()) -> Path:
    r"""Refuse, before any work, an output folder that cannot be written (NOTE [Output paths]).

    ``folder`` may not exist yet (it is not created here); its first existing ancestor must be a
    folder that a probe file can be created in. ``files`` are the names (relative to ``folder``)
    the caller will write: each must be new or a regular file. Returns ``Path(folder)``; raises
    :class:`SpectrumkitError` ``fn: expected an output folder that can be written, got PATH
    (why)``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     check_output_dir("demo", Path(d) / "new" / "run", files=["metrics.json"]).name
    'run'
    """
    expected = "an output folder that can be written"
    if not isinstance(folder, (str, os.PathLike)) or str(folder) == "":
        raise fail(fn, expected, repr(folder if not isinstance(folder, str) else str(folder)))
    p = Path(folder)
    probe_in = p
    while True:
        try:
            st = os.stat(probe_in)
        except FileNotFoundError:
            if os.path.lexists(probe_in):
                raise fail(fn, expected, f"{p} ({probe_in} is a dangling symbolic link)") from None
            if probe_in.parent == probe_in:  # pragma: no cover - a root that does not exist
                raise fail(fn, expected, f"{p} (no existing folder above it)") from None
            probe_in = probe_in.parent
            continue
        except NotADirectoryError:  # an ancestor is a file
            probe_in = probe_in.parent
            continue
        except OSError as e:
            raise fail(fn, expected, f"{p} ({_oserror(e)})") from None
        if not stat.S_ISDIR(st.st_mode):
            where = f"not a folder but {_what(st.st_mode)}" if probe_in == p \
                else f"{probe_in} is not a folder"
            raise fail(fn, expected, f"{p} ({where})")
        break
    probe = probe_in / f".probe.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as e:
        raise fail(fn, expected, f"{p} ({_oserror(e)})") from None
    for name in files:
        _check_target(fn, p / name)
    return p


def check_output_file(fn: str, path: str | os.PathLike) -> Path:
    """:func:`check_output_dir` for one output file: ``path`` must name a file (not ``''``, not a
    folder) that is new or regular, in a folder that can be written. Returns ``Path(path)``."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "" \
            or Path(path).name in ("", ".", ".."):
        raise fail(fn, "an output file path (a file name, not '' or a folder)",
                   repr(str(path)) if isinstance(path, (str, os.PathLike)) else repr(path))
    p = Path(path)
    check_output_dir(fn, p.parent, files=[p.name])
    return p


class NotRegularFile(OSError):
    """A path to read holds something other than a regular file (NOTE [Reading back]).

    ``str()`` is ``not a regular file but a FIFO`` (the kind named).
    """


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for binary reading only if it is a regular file (NOTE [Reading back]).

    Never blocks on a FIFO. Raises ``FileNotFoundError`` when absent, :class:`NotRegularFile`
    when it is anything but a regular file (links are followed to their target), and other
    ``OSError`` as they come.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:
        raise NotRegularFile(f"not a regular file but {_what(stat.S_IFDIR)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file but {_what(mode)}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike) -> bytes:
    """The bytes of ``path``, a regular file (:func:`open_regular`; same exceptions)."""
    with open_regular(path) as f:
        return f.read()


def describe_read_error(e: OSError) -> str:
    """One line for an ``OSError`` while reading (the kind for :class:`NotRegularFile`)."""
    return str(e) if isinstance(e, NotRegularFile) else _oserror(e)


def decode_utf8(raw: bytes) -> tuple[str | None, str | None]:
    """``(text, None)``, or ``(None, why)`` naming the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"not UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start}"


def read_text_file(fn: str, path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of the regular file ``path``; every failure is one line naming it.

    ``what`` is the expectation (``"a study file"``): ``fn: expected WHAT, got PATH (why)``.
    """
    try:
        raw = read_regular(path)
    except OSError as e:
        raise fail(fn, what, f"{path} ({describe_read_error(e)})") from None
    text, why = decode_utf8(raw)
    if text is None:
        raise fail(fn, what, f"{path} ({why})")
    return text
