"""Progress of a loop on stderr: a bar on a terminal, a line per epoch elsewhere.

NOTE [Progress lines]
A tqdm bar redraws one line with carriage returns; in a log file or a pipe that is either nothing
(tqdm is off when stderr is not a terminal) or one unreadable line. So ``progress=None`` (the
default) draws the bar only on a terminal, and otherwise writes one plain line every ``every``
steps (the training loop passes one epoch) and one at the end:

    train: step 120/960 (epoch 1.00), loss 0.4321, 12.3 s, 9.75 step/s

``progress=True`` always draws the bar, ``progress=False`` writes nothing. Both kinds answer the
same three calls, ``update(n)``, ``set_postfix(**values)`` and ``close()``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["ProgressLines", "progress_bar"]


class ProgressLines:
    """One line per ``every`` steps (and one at ``close``) on ``file`` (NOTE [Progress lines]).

    ``per_epoch``: steps per epoch, shown as the epoch (None: not shown). ``clock``: seconds, for
    the elapsed time and the rate (``time.monotonic``).
    """

    def __init__(self, total: int, initial: int = 0, *, every: int, file: TextIO,
                 desc: str = "train", unit: str = "step", per_epoch: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.n, self.every = total, initial, max(1, every)
        self.file, self.desc, self.unit, self.per_epoch = file, desc, unit, per_epoch
        self._clock, self._start, self._first = clock, clock(), initial
        self._postfix: dict[str, Any] = {}
        self._last_written: int | None = None
        self._due = False

    def update(self, n: int = 1) -> None:
        """Advance by ``n``; a line is due when a multiple of ``every`` is passed (written at the
        next :meth:`set_postfix`, which brings that step's values, or the next update)."""
        if self._due:
            self._write()
        before, self.n = self.n, self.n + n
        self._due = self.n // self.every > before // self.every

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        """Values shown after the count (``loss=...``), of the step just counted."""
        self._postfix = dict(values)
        if self._due:
            self._write()

    def close(self) -> None:
        """A last line for the steps not yet shown (none when nothing ran)."""
        if self.n != self._last_written and self.n > self._first:
            self._write()

    def line(self) -> str:
        """The line for the current count."""
        elapsed = self._clock() - self._start
        parts = [f"{self.desc}: {self.unit} {self.n}/{self.total}"]
        if self.per_epoch:
            parts[0] += f" (epoch {self.n / self.per_epoch:.2f})"
        parts += [f"{k} {v}" for k, v in self._postfix.items()]
        parts.append(f"{elapsed:.1f} s")
        if elapsed > 0:
            parts.append(f"{(self.n - self._first) / elapsed:.3g} {self.unit}/s")
        return ", ".join(parts)

    def _write(self) -> None:
        self.file.write(self.line() + "\n")
        self.file.flush()
        self._last_written, self._due = self.n, False


def progress_bar(progress: bool | None, total: int, initial: int = 0, *, finished: bool = False,
                 per_epoch: int | None = None, desc: str = "train", unit: str = "step",
                 file: TextIO | None = None) -> Any:
    """The progress of a loop of ``total`` steps, starting at ``initial`` (NOTE [Progress lines]).

    ``progress``: None = a tqdm bar when ``file`` (stderr) is a terminal, else a line every epoch
    (``per_epoch`` steps; a tenth of the run when the run is shorter or has no epochs); True = the
    bar; False, or a ``finished`` run = nothing.
    """
    from tqdm import tqdm

    out = sys.stderr if file is None else file
    if progress is None and not finished and not _isatty(out):
        every = per_epoch if per_epoch and per_epoch < total else -(-total // 10)
        return ProgressLines(total, initial, every=every, file=out, desc=desc, unit=unit,
                             per_epoch=per_epoch)
    show = bool(progress) or (progress is None and _isatty(out))
    return tqdm(total=total, initial=initial, file=out, disable=not show or finished,
                desc=desc, unit=unit, dynamic_ncols=True, leave=False)


def _isatty(f: Any) -> bool:
    try:
        return bool(f.isatty())
    except (AttributeError, ValueError):  # a closed or file-like stream without a terminal
        return False
