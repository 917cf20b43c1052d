r"""SHA-256 of whole data files, cached by (path, size, mtime) so that a second run rereads nothing.

NOTE [Digest cache]
:func:`file_sha256` hashes every byte of a file (1 MiB at a time). The digest is remembered in a
small JSON file, ``$XDG_CACHE_HOME/spectrumkit/digests.json`` (``~/.cache/spectrumkit/`` when the
variable is unset), keyed by the file's resolved path and holding its size, its mtime in ns and
the time it was hashed. An entry is used only when:

* the file's size and mtime_ns are those of the entry; and
* the file's mtime is more than 2 s older than the hashing (as git does with its index): a write
  in the same clock tick as the hashing could otherwise keep size and mtime and go unseen.

A file that changed while it was being hashed (its size or mtime differ before and after) is not
remembered. The cache is a hint, never trusted blindly: a cache file that cannot be read, is not
UTF-8 JSON, or has entries of the wrong types is ignored (the digests are computed again) and
rewritten; writing it is atomic (:func:`spectrumkit._io.write_text_atomic`) and a failed write
only costs the next run a reread. ``SPECTRUMKIT_NO_DIGEST_CACHE=1`` neither reads nor writes it.
Within one process the digests are also kept in memory, under the same key and rules.

What remains unseen: a change that keeps the size and restores the mtime (``touch -d``), after the
2 s window. That is a deliberate edit of the cache's key, not corruption; delete the cache file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from ..errors import SpectrumkitError, fail

__all__ = ["DIGEST_CACHE_ENV", "digest_cache_path", "file_sha256"]

#: Set to 1 to neither read nor write the digest cache file.
DIGEST_CACHE_ENV = "SPECTRUMKIT_NO_DIGEST_CACHE"
_RACY_NS = 2_000_000_000
_MAX_ENTRIES = 4096
_CHUNK = 1 << 20
_memory: dict[str, dict[str, Any]] = {}


def digest_cache_path() -> Path | None:
    """The cache file (NOTE [Digest cache]), or None when disabled by the environment."""
    if os.environ.get(DIGEST_CACHE_ENV, "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spectrumkit" / "digests.json"


def _load(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return {}
            doc = json.loads(f.read(1 << 24).decode("utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8, not JSON: recompute
        return {}
    files = doc.get("files") if isinstance(doc, dict) and doc.get("version") == 1 else None
    if not isinstance(files, dict):
        return {}
    good = {}
    for k, e in files.items():
        if (isinstance(e, dict) and all(type(e.get(f)) is int for f in ("size", "mtime_ns",
                                                                          "hashed_ns"))
                and isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64
                and all(c in "0123456789abcdef" for c in e["sha256"])):
            good[k] = e
    return good


def _save(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    from .._io import write_text_atomic

    if len(entries) > _MAX_ENTRIES:  # keep the most recently hashed
        keep = sorted(entries, key=lambda k: entries[k]["hashed_ns"])[-_MAX_ENTRIES:]
        entries = {k: entries[k] for k in keep}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"version": 1, "files": entries}, sort_keys=True))
    except (OSError, SpectrumkitError):  # a cache that cannot be written only costs a reread
        pass


def _usable(e: dict[str, Any] | None, st: os.stat_result) -> bool:
    """An entry speaks for the file: same size and mtime, and the mtime not racy."""
    return (e is not None and e["size"] == st.st_size and e["mtime_ns"] == st.st_mtime_ns
            and st.st_mtime_ns < e["hashed_ns"] - _RACY_NS)


def file_sha256(fn: str, path: str | os.PathLike, *, persist: bool = True) -> tuple[int, str]:
    """(size, SHA-256 hex) of every byte of a regular file, through the cache (NOTE [Digest cache]).

    ``persist=False`` uses only the in-process memory (for the package's own small files).

    Errors (missing, not a regular file, unreadable) are one line naming ``fn`` and the path.
    """
    p = Path(path)
    try:
        if not stat.S_ISREG(p.stat().st_mode):  # before opening: a FIFO would block open()
            raise fail(fn, f"a regular file at {p}", "something else")
        with open(p, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise fail(fn, f"a regular file at {p}", "something else")
            key = str(p.resolve())
            if _usable(_memory.get(key), st):
                return st.st_size, _memory[key]["sha256"]
            cache = digest_cache_path() if persist else None
            entries = _load(cache) if cache is not None else {}
            if _usable(entries.get(key), st):
                _memory[key] = entries[key]
                return st.st_size, entries[key]["sha256"]
            hashed_ns = time.time_ns()
            h = hashlib.sha256()
            while chunk := f.read(_CHUNK):
                h.update(chunk)
            after = os.fstat(f.fileno())
    except OSError as err:
        raise fail(fn, f"a readable file {p}",
                   f"{type(err).__name__}: {err.strerror or err}") from None
    digest = h.hexdigest()
    if (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
        entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest,
                 "hashed_ns": hashed_ns}
        _memory[key] = entry
        if cache is not None and _usable(entry, st):  # a racy entry is not worth a write
            entries[key] = entry
            _save(cache, entries)
    return st.st_size, digest
