r"""Executors: run trial jobs in this process, in a process pool, as Ray core tasks or as SLURM
jobs (:mod:`spectrumkit.study.slurm`).

Every executor calls the same worker entry point :func:`execute` (:mod:`._jobs`) and yields
``(job, outcome)`` pairs as trials finish; only the calling process writes results
(NOTE [Atomic results]).

NOTE [Threads per worker]
PyTorch sizes its intra-op thread pool to the machine. W pool workers with that many threads each
oversubscribe the cores, so each *worker* calls ``torch.set_num_threads(max(1, cores // W))``
(Ray tasks: their ``num_cpus``) when it starts; ``threads=`` (``--threads``, or a preset's
``threads``) overrides both. The calling process is not changed for good: the ``local`` executor
runs with whatever the user set, unless ``threads=`` asks for a count, which is then set for each
trial and restored after it (the quick presets ask for 1).
Why offer it: the trials of the quick presets are small (N = 128, B = 64), where one thread is as
fast as two on an idle 2-core machine, but OpenMP's spin-waiting makes two threads 10–100× slower
as soon as other processes compete for the cores (measured on the development machine).

NOTE [Run markers]
Every run of a trial writes ``=== start key=<key> pid=<pid> ...`` when it begins and
``=== end key=<key> status=<status> ...`` when it ends to ``logs/<key>.log``. The log is appended
to, never truncated, so the log of a key shows every time it ran; a killed run leaves a start
without an end. Ray tasks (possibly on other machines) return their log text, which the caller
appends when the task ends.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..choices import EXECUTORS
from ..errors import SpectrumkitError, fail
from ._executor_options import ExecutorOptions
from ._jobs import Job, TrialContext, crashed, execute, one_line
from .slurm import require_submitit, run_slurm

__all__ = ["Job", "TrialContext", "execute", "run_jobs", "worker_device", "EXECUTORS"]


def _cores() -> int:
    """CPU cores this process may use (its affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover


def worker_device(index: int, device: str, n_cuda: int) -> str:
    """The device of pool worker ``index`` (0, 1, ...) when ``n_cuda`` CUDA devices are visible.

    NOTE [Workers and GPUs]: ``auto`` (with a GPU) and ``cuda`` place worker i on ``cuda:<i mod
    n>``, round-robin over the visible devices, so K workers share n GPUs evenly instead of all
    landing on the first one; a device the user named (``cpu``, ``cuda:K``), or no GPU, is kept.

    >>> [worker_device(i, "auto", 3) for i in range(4)]
    ['cuda:0', 'cuda:1', 'cuda:2', 'cuda:0']
    >>> worker_device(1, "cuda:0", 2), worker_device(1, "auto", 0), worker_device(1, "cpu", 2)
    ('cuda:0', 'auto', 'cpu')
    """
    if index < 0 or n_cuda < 0:
        raise fail("worker_device", "index >= 0 and n_cuda >= 0", f"{index}, {n_cuda}")
    if device in ("auto", "cuda") and n_cuda > 0:
        return f"cuda:{index % n_cuda}"
    return device


#: This worker's (index, visible CUDA devices) (NOTE [Workers and GPUs]); None outside a pool.
_WORKER_SLOT: tuple[int, int] | None = None

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int, pdeathsig: bool) -> None:
    """End this worker when the study's process dies (NOTE [Workers die with their parent]).

    On Linux the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``);
    everywhere a daemon thread checks every half second whether the parent is still ours.
    """
    if pdeathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # no libc, no prctl: the thread below remains
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="spectrumkit-parent-watch", daemon=True).start()


def _init_worker(threads: int, counter: Any, parent: int, pdeathsig: bool) -> None:
    global _WORKER_SLOT
    import torch
    # NOTE [Ctrl-C]: the terminal sends SIGINT to the whole process group; the parent alone
    # answers it, so a worker ignores it (and prints no traceback of its own). SIGTERM ends a
    # worker (the parent's terminate()); a mask inherited from the spawn is lifted.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _DEFERRED)
    _die_with_parent(parent, pdeathsig)
    torch.set_num_threads(threads)  # NOTE [Threads per worker]
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    _WORKER_SLOT = (index, torch.cuda.device_count())


def _execute_in_worker(job: Job) -> dict[str, Any]:
    """:func:`execute` on this worker's device (NOTE [Workers and GPUs])."""
    if _WORKER_SLOT is not None:
        job = replace(job, device=worker_device(_WORKER_SLOT[0], job.device, _WORKER_SLOT[1]))
    return execute(job)


def _run_local(jobs: Sequence[Job]) -> Iterator[tuple[Job, dict[str, Any]]]:
    for job in jobs:
        yield job, execute(job)


def _run_process(jobs: Sequence[Job], workers: int, threads: int | None
                 ) -> Iterator[tuple[Job, dict[str, Any]]]:
    threads = threads or max(1, _cores() // workers)
    # spawn, not fork: forking a process that has started torch's thread pools can deadlock
    ctx = multiprocessing.get_context("spawn")
    # PR_SET_PDEATHSIG fires when the *thread* that spawned the worker ends: only for the main one
    pdeathsig = threading.current_thread() is threading.main_thread()
    pool: ProcessPoolExecutor | None = None
    finished = False
    with _python_ignoring_sigint() as exe:
        try:
            # NOTE [Ctrl-C while workers start]: the pool's queues, semaphores and resource
            # tracker are made in its constructor, the workers are spawned in submit()
            with _signals_deferred(), _spawn_executable(exe):
                counter = ctx.Value("i", 0)
                pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                           initargs=(threads, counter, os.getpid(), pdeathsig))
                futures = {pool.submit(_execute_in_worker, job): job for job in jobs}
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    yield job, fut.result()
                except Exception as e:  # noqa: BLE001 - BrokenProcessPool: a worker was killed
                    yield job, crashed(job, f"worker died: {one_line(e)}")
            finished = True
        finally:
            if pool is not None:
                if not finished:  # NOTE [Ctrl-C]: interrupted (or abandoned): stop the workers
                    _terminate_workers(pool)
                pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _python_ignoring_sigint() -> Iterator[str | None]:
    r"""A private executable that runs this interpreter with SIGINT ignored (None off POSIX).

    NOTE [Workers ignore Ctrl-C from exec]
    A spawned worker is a fresh interpreter. Until :func:`_init_worker` runs (after the
    interpreter started, ``spawn_main`` unpickled its job and torch was imported: a second or
    more), it has Python's own SIGINT handler, so the terminal's Ctrl-C, sent to the whole process
    group, made it print a ``KeyboardInterrupt`` traceback of its own beside the parent's one
    line. Only an ignored disposition survives ``exec`` (a handled one is reset), and Python
    installs no handler for a SIGINT that is ignored when it starts. So on POSIX the workers (and
    the resource tracker, if it starts with them) are started through a two-line ``/bin/sh``
    script that ignores SIGINT and ``exec``\ s this interpreter with the same arguments, while
    the parent keeps its handler (NOTE [Ctrl-C while workers start]). The script lives in a
    private temporary folder (mode 0700) for as long as the pool does (``sh`` reads it after the
    spawn returns), and :func:`_spawn_executable` sets it as ``multiprocessing``'s spawn
    executable only while the workers are started.
    """
    if os.name != "posix":
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="spectrumkit-workers-") as folder:
        script = os.path.join(folder, "python")
        with open(script, "w", encoding="utf-8") as f:
            f.write(f"#!/bin/sh\ntrap '' INT\nexec {shlex.quote(sys.executable)} \"$@\"\n")
        os.chmod(script, 0o700)
        yield script


@contextlib.contextmanager
def _spawn_executable(exe: str | None) -> Iterator[None]:
    """Spawn with ``exe`` inside the block, then restore the executable (NOTE [Workers ignore
    Ctrl-C from exec])."""
    if exe is None:
        yield
        return
    from multiprocessing import spawn

    before = spawn.get_executable()
    spawn.set_executable(exe)
    try:
        yield
    finally:
        spawn.set_executable(before)


#: Signals held back while workers are spawned (NOTE [Ctrl-C]).
_DEFERRED = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while workers are spawned, then act on them (NOTE [Ctrl-C]).

    NOTE [Ctrl-C while workers start]
    The parent must not lose a Ctrl-C that comes while it spawns the workers. Ignoring SIGINT in
    the parent for that time (SIG_IGN survives ``exec``, so the workers ignored it too) lost it:
    a Ctrl-C in that window was discarded by every process of the group, and the study ran on to
    its end. Now, in the main thread, SIGINT and SIGTERM are blocked and their handlers replaced
    by one that only records the signal (so nothing is raised inside ``submit()``); afterwards
    handlers and mask are restored and a recorded signal is raised again
    (``signal.raise_signal``), as if it came now. A worker sets SIGINT to SIG_IGN in
    :func:`_init_worker`, but it ignores it from its start already (NOTE [Workers ignore Ctrl-C
    from exec]): a spawned child does not keep the parent's blocked mask (measured on Linux,
    CPython 3.11).

    Elsewhere than the main thread (no handlers can be set there) nothing is done.
    """
    if threading.current_thread() is not threading.main_thread() or \
            not hasattr(signal, "pthread_sigmask"):
        yield
        return
    got: list[int] = []
    before = {sig: signal.getsignal(sig) for sig in _DEFERRED}
    for sig, handler in before.items():
        if handler is not signal.SIG_IGN and handler is not None:
            signal.signal(sig, lambda signum, frame: got.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        yield
    finally:
        for sig, handler in before.items():
            if handler is not None:
                signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum in dict.fromkeys(got):
            signal.raise_signal(signum)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes (the trials in flight are lost; their logs show a start
    marker without an end, NOTE [Run markers]).

    NOTE [Ctrl-C]
    On KeyboardInterrupt the parent must not wait for the running trials (``shutdown(wait=True)``
    would block until they end) nor let the workers die on SIGINT each with a traceback (about
    88 lines for two workers, interrupted while importing). The workers ignore SIGINT
    (NOTE [Ctrl-C while workers start]); the parent cancels what has not started and kills the
    workers (SIGKILL: a worker has nothing to clean up, the parent writes every result, and a
    worker still importing holds SIGTERM back until its initializer runs), and the CLI prints one
    line, ``error: aborted``, with exit status 130 (143 for SIGTERM, NOTE [Aborts]).
    ``ProcessPoolExecutor`` has no public way to terminate its workers before Python 3.14, so its
    ``_processes`` table is used (guarded: absent, nothing is killed and shutdown waits as before).
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=10)


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise SpectrumkitError(
            "run_study: expected ray installed for --executor ray (pip install "
            f"'spectrumkit[ray]'), got ImportError: {e}") from None
    return ray


def _run_ray(jobs: Sequence[Job], address: str | None, cpus: float, gpus: float
             ) -> Iterator[tuple[Job, dict[str, Any]]]:
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=cpus, num_gpus=gpus)(execute)
        pending = {task.remote(job): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    yield job, ray.get(ref)
                except Exception as e:  # noqa: BLE001 - worker or node lost
                    yield job, crashed(job, f"worker died: {one_line(e)}")
    finally:
        if started:
            ray.shutdown()


def run_jobs(jobs: Sequence[Job], executor: str = "local", *, workers: int = 1,
             threads: int | None = None, ray_address: str | None = None,
             cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
             slurm: ExecutorOptions | None = None, slurm_folder: str | Path | None = None
             ) -> Iterator[tuple[Job, dict[str, Any]]]:
    """Run ``jobs`` with ``executor`` and yield ``(job, outcome)`` as each finishes.

    ``threads``: torch threads per trial (NOTE [Threads per worker]); the jobs carry it for the
    local, Ray and SLURM executors, the pool's initializer sets it for process workers. Process
    workers place jobs of device ``auto``/``cuda`` round-robin on the visible GPUs (NOTE [Workers
    and GPUs]). ``slurm``: the resources of each SLURM job and ``slurm_folder`` submitit's folder
    (:mod:`spectrumkit.study.slurm`; ``cpus_per_trial`` and ``gpus_per_trial`` are Ray's).
    """
    if executor == "local":
        return _run_local(jobs)
    if executor == "process":
        return _run_process(jobs, workers, threads)
    if executor == "ray":
        import_ray()
        return _run_ray(jobs, ray_address, cpus_per_trial, gpus_per_trial)
    if executor == "slurm":
        require_submitit()
        if slurm is None or slurm_folder is None:
            raise fail("run_jobs", "slurm= options and a slurm_folder for executor slurm",
                       f"{slurm!r}, {slurm_folder!r}")
        return run_slurm(jobs, slurm, slurm_folder)
    raise fail("run_jobs", f"executor among {', '.join(EXECUTORS)}", repr(executor))
