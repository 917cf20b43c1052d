"""The one exception type of spectrumkit, and the small named checks that raise it.

Every public function validates its inputs at the door with these checks and then calls a private
implementation that trusts them. Messages read ``function: expected X, got Y``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# NOTE [Errors without torch]
# This module is imported by the commands that must not load torch (``spectrumkit --help``,
# ``study list``, ``study show``) and by the torch-free task registry, so torch is imported inside
# the checks that take tensors or devices, never at module level.

__all__ = ["SpectrumkitError"]


class SpectrumkitError(ValueError):
    """Bad input to a public spectrumkit function.

    The message always has the form ``function: expected X, got Y``. The CLI prints it on one line
    and exits with status 2.
    """


class WriteError(SpectrumkitError, OSError):
    """A file could not be written (NOTE [Atomic writes] in ``spectrumkit/_io.py``).

    A :class:`SpectrumkitError` (one line at the CLI, naming the path) that is also an ``OSError``,
    so code that handles ``OSError`` around a write keeps working.
    """


def fail(fn: str, expected: str, got: Any) -> SpectrumkitError:
    """Build (not raise) the canonical error ``fn: expected X, got Y``."""
    return SpectrumkitError(f"{fn}: expected {expected}, got {got}")


def check_positive_int(fn: str, name: str, value: Any) -> int:
    """``value`` must be an ``int`` (not a bool) and > 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise fail(fn, f"{name} to be a positive integer", repr(value))
    return value


def check_choice(fn: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices`` (a misspelling is an error, never a silent default)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise fail(fn, f"{name} to be one of {', '.join(map(repr, choices))}", repr(value))
    return value


def check_unit_interval(fn: str, name: str, value: Any, *, low_open: bool, high_open: bool
                        ) -> float:
    """``value`` must be a finite real in the interval given by the open/closed flags on [0, 1]."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        raise fail(fn, f"{name} in {lo}0, 1{hi}", repr(value))
    return float(value)


def check_float_tensor(fn: str, name: str, t: Any, *, finite: bool = True) -> torch.Tensor:
    """``t`` must be a real floating-point tensor holding data (not on the meta device), and (by
    default) free of NaN and Inf."""
    import torch

    if not isinstance(t, torch.Tensor):
        raise fail(fn, f"{name} to be a torch.Tensor", type(t).__name__)
    if not t.is_floating_point():
        raise fail(fn, f"{name} to be a real floating-point tensor", f"dtype {t.dtype}")
    if t.is_meta:  # shapes without data: every read of a value would fail deep inside
        raise fail(fn, f"{name} to hold data (not on the meta device)", "a meta tensor")
    # one pass: a sum is finite when every entry is (an overflowing sum is checked exactly)
    if finite and t.numel() and not bool(torch.isfinite(t.sum())) \
            and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise fail(fn, f"{name} to be finite", f"{bad} NaN/Inf entries of {t.numel()}")
    return t


def check_bool_tensor(fn: str, name: str, t: Any, shape: tuple[int, ...] | torch.Size
                      ) -> torch.Tensor:
    """``t`` must be a bool tensor of ``shape`` (a mask: True = keep).

    >>> import torch
    >>> check_bool_tensor("f", "m", torch.ones(2, 3), (2, 3))
    Traceback (most recent call last):
    ...
    spectrumkit.errors.SpectrumkitError: f: expected m to be a bool tensor, got torch.float32
    """
    import torch

    if not isinstance(t, torch.Tensor) or t.dtype != torch.bool:
        raise fail(fn, f"{name} to be a bool tensor", getattr(t, "dtype", type(t).__name__))
    if tuple(t.shape) != tuple(shape):
        raise fail(fn, f"{name} of shape {tuple(shape)}", f"shape {tuple(t.shape)}")
    return t


#: The largest seed a command accepts: torch generators take 64 bits, and the CLI derives the
#: seeds ``seed + 1`` and ``seed + 2`` (NOTE [CLI data]), which must stay below 2**64.
SEED_MAX = 2**63 - 1


def check_seed(fn: str, name: str, value: Any) -> int:
    """``value`` must be an ``int`` (not a bool) in 0..2**63 - 1 (a torch generator's range)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise fail(fn, f"{name} to be an integer in 0..2**63 - 1", repr(value))
    return value


def _gib(n: float) -> str:
    return f"{n / 2**30:,.3g} GiB"


def _device_type(device: Any) -> str:
    """``"cpu"`` or ``"cuda"`` of a device or its name (a name is read without torch)."""
    if isinstance(device, str):
        return device.split(":", 1)[0]
    return str(device.type)


def available_memory(device: Any = "cpu") -> int | None:
    """Bytes that can still be allocated on ``device``: for CUDA what the driver reports free; for
    the CPU the smaller of MemAvailable (/proc/meminfo) and the cgroup's limit minus its usage.
    None where neither can be read (the check is then skipped)."""
    if _device_type(device) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit) as a, open(usage) as b:
                text = a.read().strip()
                if text != "max":
                    found.append(max(0, int(text) - int(b.read().strip())))
            break
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def check_memory(fn: str, what: str, needed: int, device: Any = "cpu") -> None:
    """Refuse work whose memory ``needed`` (bytes, a lower bound) exceeds what ``device`` has free,
    instead of letting the process be killed (NOTE [Memory estimate] in ``spectrumkit/cli``)."""
    have = available_memory(device)
    if have is not None and needed > have:

        raise fail(fn, f"{what} that fits in memory ({_gib(have)} available on "
                   f"{_device_type(device)})", f"at least {_gib(needed)} needed")


def check_memory_terms(fn: str, terms: Mapping[str, int], device: Any = "cpu", *,
                       itemsize: int = 4) -> None:
    r"""The one memory estimate of the sizes a user sets, checked before anything is allocated.

    NOTE [Memory terms]
    ``terms`` maps a description that names the flags or keys the user wrote (``"--seq-len
    1000000000 (the (T, B, D) inputs and the (T, B, S) states)"``) to the number of entries that
    part needs at least; the estimate is ``itemsize`` × their sum, a lower bound (what the first
    allocations take, not the peak). A sum above :func:`available_memory` is refused in one line
    naming the largest term (the flag to change), the estimate and the memory available.
    """
    if not terms:
        return
    needed = itemsize * sum(max(0, int(v)) for v in terms.values())
    largest = max(terms, key=lambda k: terms[k])
    check_memory(fn, largest, needed, device)


def check_keys(fn: str, what: str, given: Mapping[str, Any], accepted: Iterable[str]) -> None:
    """Refuse unknown option names, listing the accepted ones."""
    accepted = tuple(accepted)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise fail(fn, f"{what} among {', '.join(accepted) or '(none)'}", ", ".join(unknown))
