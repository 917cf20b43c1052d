r"""Large CPU outputs of the Jacobian engines: fresh huge pages, and freed outputs kept for reuse.

Legend: the shapes are the caller's (a chunk of step Jacobians is (c, B, S, S)).

NOTE [Fresh pages]
A new output is memory the process has not touched: the kernel maps and zeroes every page at its
first write. For a (64, 400, 400) float32 Jacobian (41 MB) that fault-and-zero costs about as much
as the whole assembly (measured on one thread: ``torch.empty(...).fill_(1)`` about 5x
``dst.copy_(src)``). NumPy asks the kernel for transparent huge pages for arrays of 4 MiB and more
(``madvise(MADV_HUGEPAGE)``; NUMPY_MADVISE_HUGEPAGE=0 turns that off), which cuts the cost to about
one extra write of J. So a large CPU float output is allocated by NumPy and shared with torch
(``torch.from_numpy``: the same memory, freed with the tensor). For a large array ``np.zeros`` is
``calloc`` of fresh pages, which the kernel zeroes anyway: a fresh output is zero at no extra cost,
and the engine skips writing the zeros (NOTE [One pass over J] in ``_closed_form.py``).

NOTE [Reused outputs]
Even on huge pages, the kernel's zeroing of a fresh output is a pass over J that the assembly does
not need: 0.8-1.2 times a copy of J for GRU-400 and LSTM-400 (B = 64, one thread; in
``benchmarks/bench_jacobians.py`` table 0, the column "fresh output" less the loop column). A
caller that computes Jacobians in a loop (a study scoring batch after batch, ``spectrum`` chunk
after chunk, a user's own loop) frees one output and asks for one of the same size right after.
So when a large output is freed, its memory is kept here (at most ``CACHE_BYTES`` in all, the most
recently freed first) and the next request of a size it fits (at most twice the size asked for)
takes it: pages already mapped, no fault and no zeroing. Such an output holds the old values;
:func:`take_output` says so, and the engine then writes every entry, zeros included.

The memory comes back here when the last tensor or array viewing it is gone (a finalizer on the
NumPy array that owns it). :func:`empty_cache` releases what is kept (``torch.cuda.empty_cache`` is
the same idea for the CUDA allocator). Values never depend on the cache: every entry of an output
is written by the call that returns it.
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np
import torch

#: Outputs of this many bytes and more are allocated by NumPy (NOTE [Fresh pages]) and cached.
HUGE_PAGE_BYTES = 4 * 2**20
#: The most memory of freed outputs kept for reuse (NOTE [Reused outputs]).
CACHE_BYTES = 256 * 2**20
NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}

# NOTE [Cache lock]: a finalizer may run inside any allocation (the cyclic GC), so it only appends
# (atomic under the GIL) and trims the cache when the lock is free; lookups and trims take the lock.
_lock = threading.Lock()
_free: list[np.ndarray] = []        # freed buffers (uint8, 1-D), most recently freed last


def _trim() -> None:
    """Drop the oldest buffers beyond CACHE_BYTES; the lock is held."""
    while sum(b.nbytes for b in _free) > CACHE_BYTES:
        _free.pop(0)


def _give_back(buf: np.ndarray) -> None:
    """Finalizer of an output: keep its buffer for reuse."""
    _free.append(buf)
    if _lock.acquire(blocking=False):
        try:
            _trim()
        finally:
            _lock.release()


def _take(nbytes: int) -> np.ndarray | None:
    """The most recently freed buffer of nbytes to 2·nbytes bytes, removed from the cache."""
    with _lock:
        found = next((i for i in range(len(_free) - 1, -1, -1)
                      if nbytes <= _free[i].nbytes <= 2 * nbytes), None)
        buf = None if found is None else _free.pop(found)
        _trim()
        return buf


def take_output(shape: tuple[int, ...], like: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """An output of ``shape`` with ``like``'s dtype and device, contiguous, and whether it is zero.

    A large CPU float output is a freed output's memory when one fits (not zero: its old values;
    NOTE [Reused outputs]) or fresh NumPy memory on huge pages (zero); anything else is
    ``like.new_zeros``.
    """
    nbytes = math.prod(shape) * like.element_size()
    if like.device.type != "cpu" or like.dtype not in NUMPY_DTYPES or nbytes < HUGE_PAGE_BYTES:
        return like.new_zeros(shape), True
    buf = _take(nbytes)
    zeroed = buf is None
    if buf is None:
        buf = np.zeros(nbytes, dtype=np.uint8)                 # calloc: fresh, zero pages
    array = buf[:nbytes].view(NUMPY_DTYPES[like.dtype]).reshape(shape)
    weakref.finalize(array, _give_back, buf).atexit = False
    return torch.from_numpy(array), zeroed


def new_output(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Zeros of ``shape``, with ``like``'s dtype and device (NOTE [Fresh pages])."""
    out, zeroed = take_output(shape, like)
    return out if zeroed else out.zero_()


def cached_bytes() -> int:
    """Bytes of freed outputs kept for reuse (NOTE [Reused outputs])."""
    with _lock:
        return sum(b.nbytes for b in _free)


def empty_cache() -> None:
    """Release the memory of freed Jacobian outputs kept for reuse (NOTE [Reused outputs])."""
    with _lock:
        _free.clear()
