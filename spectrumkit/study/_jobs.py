r"""One trial job and the worker entry point every executor calls (:func:`execute`).

A :class:`Job` is what travels to a worker (a pool process, a Ray task, a SLURM job): the trial's
key, config (JSON form), trial function and run options. :func:`execute` runs it in the current
process and returns its outcome; only the calling process writes results (NOTE [Atomic results]
in :mod:`spectrumkit.study.store`). Markers in the log: NOTE [Run markers] in
:mod:`spectrumkit.study.executors`.
"""

from __future__ import annotations

import importlib
import math
import numbers
import os
import platform
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import SpectrumkitError, fail
from .config import TrialConfig

__all__ = ["Job", "TrialContext", "crashed", "execute", "one_line"]


@dataclass(frozen=True)
class Job:
    """One trial to run: its key, config (JSON form), trial function and run options."""

    key: str
    config: dict[str, Any]
    target: str
    log_path: str | None
    device: str = "auto"
    data_root: str | None = None
    threads: int | None = None
    tensorboard: str | None = None  # the trial's TensorBoard run folder (--log tensorboard)


@dataclass
class TrialContext:
    """What a trial function gets besides its config: run options and a log."""

    device: str = "auto"
    data_root: str | None = None
    log: Callable[[str], None] = field(default=lambda msg: None)
    #: The training callback (``run_pipeline(callback=...)``): the trial's TensorBoard run
    #: under ``--log tensorboard``, else None.
    callback: Callable[[dict], None] | None = None

    def torch_device(self) -> str:
        """The device to run on: ``auto`` → ``cuda`` when a GPU is visible, else ``cpu``.

        :func:`spectrumkit.evaluation.resolve_device` decides (and refuses ``cuda`` without one).
        """
        from ..evaluation import resolve_device
        return str(resolve_device(self.device))


def _resolve(target: str) -> Callable[[TrialConfig, TrialContext], dict[str, Any]]:
    module, _, name = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise fail("execute", f"an importable trial function {target!r}",
                   f"{type(e).__name__}: {e}") from None
    return fn


def _clean(x: Any, where: str) -> Any:
    """JSON-ready copy: numpy/torch scalars to Python, NaN/Inf to None (JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): _clean(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v, where) for v in x]
    if isinstance(x, (bool, str)) or x is None:
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x) if math.isfinite(x) else None
    if hasattr(x, "tolist"):  # numpy arrays and scalars, torch tensors
        return _clean(x.tolist(), where)
    raise fail("execute", f"JSON-able values in the trial's output at {where}", type(x).__name__)


def one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def execute(job: Job) -> dict[str, Any]:
    """Run one trial in the current process and return its outcome (never raises for trial errors).

    The outcome holds ``status`` (ok / diverged / failed), ``error`` (one line, failed only),
    ``metrics``, ``history``, ``artifacts``, ``env`` and, for jobs without a log path, ``log``.
    """
    import torch

    before = torch.get_num_threads()
    if job.threads:
        torch.set_num_threads(job.threads)  # NOTE [Threads per worker]
    lines: list[str] = []
    fh = open(job.log_path, "a", encoding="utf-8", buffering=1) if job.log_path else None

    def log(msg: str) -> None:
        text = f"{time.strftime('%H:%M:%S')} {msg}"
        if fh is not None:
            fh.write(text + "\n")
        else:
            lines.append(text)

    host, t0 = socket.gethostname(), time.perf_counter()
    log(f"=== start key={job.key} pid={os.getpid()} host={host} device={job.device}")
    ctx = TrialContext(device=job.device, data_root=job.data_root, log=log)
    out: dict[str, Any] = {}
    error = None
    tb = None
    try:
        config = TrialConfig(**job.config)
        if job.tensorboard is not None:
            tb = _tensorboard_run(job.tensorboard, config.lr)
            ctx.callback = tb
        out = _resolve(job.target)(config, ctx)
        if not isinstance(out, dict) or out.get("status") not in ("ok", "diverged"):
            raise fail("execute", "a trial output dict with status 'ok' or 'diverged'",
                       repr(out)[:200])
        out = _clean(out, "output")
        status = out["status"]
        if tb is not None:  # rows a trial did not report through the callback, then close
            _finish_run(tb, out)
    except Exception as e:  # noqa: BLE001 - a failed trial is a result, not a crash
        for chunk in traceback.format_exc().rstrip().splitlines():
            log(chunk)
        status, error, out = "failed", one_line(e), {}
    seconds = time.perf_counter() - t0
    log(f"=== end key={job.key} status={status} seconds={seconds:.2f}")
    if fh is not None:
        fh.close()
    from .._version import VERSION as __version__
    env = {"torch": torch.__version__, "device": out.get("device") or _env_device(ctx),
           "python": platform.python_version(), "spectrumkit": __version__, "host": host,
           "threads": torch.get_num_threads(), "seconds": round(seconds, 3)}
    if job.threads:
        torch.set_num_threads(before)
    described = out.get("data")  # the loader's description of the data (NOTE [Data identity])
    return {"status": status, "error": error, "metrics": out.get("metrics", {}),
            "history": out.get("history", {}), "artifacts": out.get("artifacts", {}),
            "env": env, "log": None if fh is not None else "\n".join(lines),
            "data_description": described if isinstance(described, str) else None}


def _env_device(ctx: TrialContext) -> str:
    """The device a trial ran on, for its ``env``; a device that is not there is named as asked
    (the trial itself failed on it with the one-line error of ``resolve_device``)."""
    try:
        return ctx.torch_device()
    except SpectrumkitError:
        return ctx.device


def _tensorboard_run(folder: str, lr: float) -> Any:
    """The trial's TensorBoard run in ``folder``; event files of an earlier, interrupted run of
    the same trial are removed first (it starts afresh, so its points would repeat)."""
    from pathlib import Path

    from ..tensorboard_log import TensorBoardLog

    run = Path(folder)
    if run.is_dir():
        for p in run.glob("events.out.tfevents.*"):
            if p.is_file() and not p.is_symlink():
                p.unlink()
    return TensorBoardLog(run, lr=lr)


def _finish_run(tb: Any, out: dict[str, Any]) -> None:
    """Log what the trial's callback did not (a trial function of its own), and close the run:
    the history's rows, and the mask's I/R and gate shares from the anatomy metrics."""
    import pandas as pd

    metrics = out.get("metrics") or {}
    if metrics.get("ir_ratio") is not None and not tb.mask_logged:
        tb.log_mask_numbers(metrics["ir_ratio"], {k.removeprefix("share_"): v
                                                  for k, v in metrics.items()
                                                  if k.startswith("share_")})
    tb.finish(pd.DataFrame(out.get("history") or {}))


def crashed(job: Job, error: str) -> dict[str, Any]:
    """The outcome of a job whose worker ended before it could answer; ``error``: one line."""
    return {"status": "failed", "error": error, "metrics": {},
            "history": {}, "artifacts": {}, "env": {"device": job.device},
            "log": None if job.log_path else "", "data_description": None}
