r"""The SLURM executor: each trial one task of a job array, submitted through submitit.

``spectrumkit study NAME --executor slurm`` (the ``slurm`` extra) pickles each trial's
:class:`~spectrumkit.study.executors.Job` and submits one job array (``sbatch`` is run by
submitit; no script to write). Every array task calls the same worker entry point as the other
executors, :func:`~spectrumkit.study.executors.execute`, and its outcome is read back by the
calling process, which alone writes the result files (NOTE [Atomic results]); a study is resumed
by any executor (NOTE [Resume]). Resources per trial: NOTE [Executor options].

NOTE [SLURM folders]
submitit needs a folder that both the submitting machine and the nodes see: it is
``OUT/<study>/slurm/`` (submission scripts, pickled jobs and outcomes, and each task's
``<jobid>_<task>_log.out/err``). The trial logs ``OUT/<study>/logs/<key>.log`` are written by the
tasks themselves, live, as under the process executor; TensorBoard runs likewise
(``--log tensorboard``). The nodes must run the same Python with spectrumkit importable: submitit
starts ``sys.executable`` of the submitting process.

NOTE [SLURM interrupts]
When the submitting command is stopped (Ctrl-C, SIGTERM: NOTE [Aborts]) the tasks that have not
finished are cancelled (``scancel``; under ``cluster = "local"`` their processes are stopped), so
nothing runs on without a caller to collect it. A SLURM job that ends without an outcome
(cancelled, timed out, its node lost) is a ``failed`` trial whose error names the job and its
stderr file; ``--retry-failed`` runs it again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import SpectrumkitError, fail
from ._executor_options import ExecutorOptions, time_minutes
from ._jobs import Job, crashed, execute, one_line

__all__ = ["check_slurm", "require_submitit", "run_slurm", "submitit_parameters"]

#: The time limit of a trial under ``cluster = "local"`` when none is given (submitit's own
#: default, 2 minutes, would stop longer trials).
LOCAL_TIME_MIN = 24 * 60

#: Seconds between two looks at the jobs' states (SLURM: submitit's watcher rate-limits sacct).
_POLL = {"slurm": 5.0, "local": 0.2}


def require_submitit(fn: str = "run_study") -> Any:
    """The submitit module, or one :class:`SpectrumkitError` line naming the extra."""
    try:
        import submitit
    except ImportError as e:
        raise SpectrumkitError(
            f"{fn}: expected submitit installed for --executor slurm (pip install "
            f"'spectrumkit[slurm]'), got ImportError: {e}") from None
    return submitit


def _whole(fn: str, name: str, value: float) -> int:
    if value != int(value):
        raise fail(fn, f"a whole number for {name} under --executor slurm", value)
    return int(value)


def submitit_parameters(opts: ExecutorOptions, fn: str = "run_study") -> dict[str, Any]:
    """The ``AutoExecutor.update_parameters`` keywords for ``opts`` (NOTE [Executor options]).

    >>> p = submitit_parameters(ExecutorOptions(partition="gpu", time="2:00:00", gpus_per_trial=1))
    >>> p["slurm_partition"], p["timeout_min"], p["gpus_per_node"], p["cpus_per_task"]
    ('gpu', 120, 1, 1)
    """
    cluster = opts.cluster or "slurm"
    time = (time_minutes(opts.time) if opts.time is not None
            else LOCAL_TIME_MIN if cluster == "local" else None)
    params: dict[str, Any] = {
        "name": "spectrumkit", "tasks_per_node": 1, "nodes": 1, "timeout_min": time,
        "cpus_per_task": _whole(fn, "cpus_per_trial (--cpus-per-trial)", opts.cpus),
        "gpus_per_node": _whole(fn, "gpus_per_trial (--gpus-per-trial)", opts.gpus),
        "mem_gb": opts.mem_gb, "slurm_partition": opts.partition,
        "slurm_account": opts.account, "slurm_qos": opts.qos,
        "slurm_constraint": opts.constraint,
        "slurm_array_parallelism": opts.array_parallelism}
    return {k: v for k, v in params.items() if v is not None}


def check_slurm(opts: ExecutorOptions, fn: str = "run_study") -> dict[str, Any]:
    """Everything ``--executor slurm`` needs, checked before a file is written: submitit, whole
    CPUs and GPUs, a valid time, and ``srun`` on the PATH for ``cluster = "slurm"`` (submitit
    refuses to submit without it). Returns the submitit parameters."""
    require_submitit(fn)
    params = submitit_parameters(opts, fn)
    if (opts.cluster or "slurm") == "slurm" and shutil.which("srun") is None:
        raise fail(fn, "a SLURM cluster for --executor slurm (srun on the PATH; [executor] "
                   "cluster = \"local\" runs the jobs on this machine)", "no srun")
    return params


def _no_outcome(job: Job, sjob: Any) -> dict[str, Any]:
    """A failed outcome for an array task that ended without one (NOTE [SLURM interrupts])."""
    try:
        state = str(sjob.state)
    except Exception:  # noqa: BLE001 - sacct unreachable: the message says so
        state = "unknown"
    return crashed(job, f"slurm job {sjob.job_id} ended without a result (state {state}; "
                        f"its stderr: {sjob.paths.stderr})")


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 go to ``path`` (appended) inside the block.

    NOTE [Local cluster output]
    Under ``cluster = "local"`` submitit starts one controller process per task, which inherits
    the submitting process's stdout and stderr; when a task is cancelled (NOTE [SLURM
    interrupts]) or Ctrl-C reaches the process group, each controller prints a
    ``KeyboardInterrupt`` traceback there. The controllers are started inside this block, so what
    they print lands in ``OUT/<study>/slurm/local.log``, as a SLURM job's output lands in its own
    files; the tasks' own output goes to their ``<jobid>_0_log.*`` files in any case.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved = (os.dup(1), os.dup(2))
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def run_slurm(jobs: Sequence[Job], opts: ExecutorOptions, folder: str | Path
              ) -> Iterator[tuple[Job, dict[str, Any]]]:
    """Submit ``jobs`` as one job array and yield ``(job, outcome)`` as each task ends.

    ``folder``: submitit's folder (NOTE [SLURM folders]), seen by the nodes; ``opts``: the
    resources per trial (NOTE [Executor options]). Tasks left when the caller stops are cancelled
    (NOTE [SLURM interrupts]).
    """
    submitit = require_submitit()
    params = check_slurm(opts)
    if not jobs:
        return
    local = opts.cluster == "local"
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=opts.cluster or "slurm")
        executor.update_parameters(**params)
        with _output_to(Path(folder) / "local.log") if local else contextlib.nullcontext():
            submitted = executor.map_array(execute, list(jobs))
    except Exception as e:  # noqa: BLE001 - sbatch refused the array: its reason in one line
        raise fail("run_study", "sbatch to accept the trials' job array", one_line(e)[:500]
                   ) from None
    by_id = {id(s): job for s, job in zip(submitted, jobs)}
    finished = False
    try:
        for sjob in submitit.helpers.as_completed(submitted,
                                                  poll_frequency=_POLL[opts.cluster or "slurm"]):
            job = by_id[id(sjob)]
            try:
                outcome = sjob.result()
            except Exception:  # noqa: BLE001 - the task died, was cancelled or timed out
                outcome = _no_outcome(job, sjob)
            yield job, outcome
        finished = True
    finally:
        if not finished:
            for sjob in submitted:
                with contextlib.suppress(Exception):
                    if not sjob.done():
                        sjob.cancel(check=False)
