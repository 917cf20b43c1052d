r"""Reading untrusted data files: IDX arrays (plain or gzipped), read with bounded memory.

NOTE [Bounded IDX reads]
An IDX file is ``0x00 0x00 TYPE NDIM``, NDIM big-endian uint32 sizes, then exactly prod(sizes)
items. The reader never inflates or reads more than the header promises:

1. The file must be a regular file (a FIFO would block for ever, a folder is not data).
2. The header is read from the (possibly gzipped) stream: 4 + 4·NDIM bytes only.
3. Before the body is read, its promised size H + B (header H, body B bytes) is checked against
   the file: a plain file must have exactly that size; a gzip file must declare it in its trailer
   (ISIZE, the inflated size mod 2³², RFC 1952), and B may not exceed what deflate can produce
   from the file's compressed size (at most 1032 bytes per byte). A body of 0 items is refused.
4. B goes through :func:`~spectrumkit.errors.check_memory`, then is read into one preallocated
   buffer of B bytes, from the stream, in place; one more byte is then asked for, and any extra
   byte is an error. So a file whose header promises 5,010 images but that inflates to 1.5 GB costs
   at most the 3.9 MB the header promised, however it lies in its trailer.

A gzip file of several members (``bgzip``) declares only its last member's size in the trailer and
is refused by step 3; decompress it first (``gunzip``) and the plain file is read.
"""

from __future__ import annotations

import gzip
import math
import os
import stat
import struct
import zlib
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import check_memory, fail

__all__ = ["read_idx"]

# IDX type codes -> numpy big-endian dtypes (http://yann.lecun.com/exdb/mnist/, "the IDX format")
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"
_DEFLATE_MAX_RATIO = 1032  # deflate's largest expansion: 258 bytes from 2 bits


def stat_file(fn: str, path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of a regular file; anything else is refused naming the path."""
    try:
        st = path.stat()
    except OSError as e:
        raise fail(fn, f"a readable file {path}",
                   f"{type(e).__name__}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise fail(fn, f"a regular file at {path}", "something else (a folder, FIFO or device)")
    return st.st_size, st.st_mtime_ns


def read_bytes(fn: str, path: Path) -> bytes:
    """A small file's contents, gunzipped when it starts with the gzip magic (whatever its name)."""
    stat_file(fn, path)
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise fail(fn, f"a readable (gzip) file {path}", f"{type(e).__name__}: {e}") from None
    return raw


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    out = b""
    while len(out) < n:
        part = stream.read(n - len(out))
        if not part:
            break
        out += part
    return out


def read_idx(path: str | Path) -> np.ndarray:
    r"""Read one IDX file (plain or gzipped) into a numpy array of its declared shape and type.

    The header is ``0x00 0x00 TYPE NDIM`` followed by NDIM big-endian uint32 sizes; the body must
    hold exactly prod(sizes) ≥ 1 items. The read is bounded by the header's promise (NOTE [Bounded
    IDX reads]). Anything else raises :class:`SpectrumkitError` naming the file. The result is
    read-only (it is cached by path, size and mtime); callers copy.
    """
    p = Path(path)
    return _read_idx(str(p), *stat_file("read_idx", p))


@lru_cache(maxsize=8)
def _read_idx(path_str: str, size: int, mtime_ns: int) -> np.ndarray:
    fn, path = "read_idx", Path(path_str)
    try:
        with open(path, "rb") as f:
            return _read_idx_stream(fn, path, f)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise fail(fn, f"a readable (gzip) IDX file {path}", f"{type(e).__name__}: {e}") from None


def _read_idx_stream(fn: str, path: Path, f: BinaryIO) -> np.ndarray:
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        raise fail(fn, f"a regular file at {path}", "something else")
    gz = f.read(2) == _GZIP_MAGIC
    isize = None
    if gz:
        if st.st_size < 18:
            raise fail(fn, "a gzip file of at least 18 bytes", f"{st.st_size} bytes in {path}")
        f.seek(-4, os.SEEK_END)
        isize = int.from_bytes(f.read(4), "little")
    f.seek(0)
    stream: BinaryIO = gzip.GzipFile(fileobj=f, mode="rb") if gz else f  # type: ignore[assignment]
    head = _read_exact(stream, 4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
        raise fail(fn, "an IDX file starting with magic 0x0000 TYPE NDIM",
                   f"magic 0x{head.hex()} in {path}")
    ndim = head[3]
    dims_raw = _read_exact(stream, 4 * ndim)
    header = 4 + 4 * ndim
    if len(dims_raw) < 4 * ndim:
        raise fail(fn, f"an IDX header of {header} bytes", f"{4 + len(dims_raw)} bytes in {path}")
    dims = struct.unpack(f">{ndim}I", dims_raw)
    dtype = _IDX_TYPES[head[2]]
    items = math.prod(dims)
    want = items * dtype.itemsize
    if items == 0:
        raise fail(fn, "an IDX file holding at least one item", f"shape {tuple(dims)} in {path}")
    # the promise is checked against the file before the body is read (NOTE [Bounded IDX reads])
    if gz:
        assert isize is not None
        if (header + want) % 2**32 != isize or want > _DEFLATE_MAX_RATIO * st.st_size:
            raise fail(fn, f"a gzip file inflating to the {header + want} bytes its IDX header "
                       f"promises for shape {tuple(dims)}",
                       f"a trailer declaring {isize} bytes (mod 2**32) for {st.st_size} "
                       f"compressed bytes in {path}")
    elif st.st_size != header + want:
        raise fail(fn, f"{want} data bytes for shape {tuple(dims)}",
                   f"{st.st_size - header} in {path} (truncated or corrupt)")
    check_memory(fn, f"the {want}-byte body of {path}", want)
    buf = np.empty(want, dtype=np.uint8)
    view, got = memoryview(buf.data), 0
    while got < want:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    if got < want or stream.read(1):
        raise fail(fn, f"{want} data bytes for shape {tuple(dims)}",
                   f"{'fewer' if got < want else 'more'} in {path} (truncated or corrupt)")
    arr = buf.view(dtype).reshape(dims)
    arr.flags.writeable = False  # cached: callers copy
    return arr
