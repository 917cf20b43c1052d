r"""The resources a trial asks of a remote executor: a study's ``[executor]`` table and the flags.

NOTE [Executor options]
A study TOML may carry an ``[executor]`` table; the flags of ``spectrumkit study`` (and the
keywords of :func:`~spectrumkit.study.run_study`) of the same name win over it, key by key:

===================  ===========  =======================================================
key                  executors    meaning
===================  ===========  =======================================================
``cpus_per_trial``   ray, slurm   CPUs per trial (default 1); also the trial's torch threads
``gpus_per_trial``   ray, slurm   GPUs per trial (default 0; Ray: fractional shares a GPU)
``partition``        slurm        the SLURM partition (default: the cluster's)
``time``             slurm        the time limit of one trial: minutes, ``HH:MM:SS`` or
                                  ``D-HH:MM:SS`` (default: the partition's; 1 day under
                                  ``cluster = "local"``)
``mem_gb``           slurm        memory per trial in GB (default: the partition's)
``account``          slurm        ``--account``
``qos``              slurm        ``--qos``
``constraint``       slurm        ``--constraint`` (node features, e.g. ``"a100"``)
``array_parallelism``  slurm      at most this many trials of the job array at once
``cluster``          slurm        ``slurm`` (default) or ``local``: the same submitit jobs
                                  run as processes on this machine, to try a setup
===================  ===========  =======================================================

None of it enters a trial's key (NOTE [What the key covers]): a study started with one executor
is finished with another. An unknown key is refused when the study is loaded; the table is
checked there once and carried as an :class:`ExecutorOptions`. This module imports no torch (it
is read by ``spectrumkit study show``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from ..errors import SpectrumkitError, fail
from .config import pydantic_message

__all__ = ["EXECUTOR_KEYS", "ExecutorOptions", "executor_table", "time_minutes"]

_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def time_minutes(value: int | str) -> int:
    """A SLURM time limit as whole minutes (rounded up), as ``sbatch --time`` reads it.

    An integer is minutes; a string is ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M`` or
    ``D-H:M:S`` (``man sbatch``).

    >>> time_minutes(90), time_minutes("2:00:00"), time_minutes("1-00:30"), time_minutes("5:30")
    (90, 120, 1470, 6)
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"minutes or [D-]HH:MM:SS, not {type(value).__name__}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"a positive number of minutes, not {value}")
        return value
    m = _TIME.match(value.strip())
    if m is None:
        raise ValueError(f"minutes or [D-]HH:MM:SS, not {value!r}")
    days, a, b, c = (int(g) if g is not None else None for g in m.groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        seconds = days * 86400 + (a or 0) * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # H:M:S
        seconds = (a or 0) * 3600 + (b or 0) * 60 + c
    elif b is not None:  # M:S
        seconds = (a or 0) * 60 + b
    else:  # M
        seconds = (a or 0) * 60
    if seconds <= 0:
        raise ValueError(f"a positive time, not {value!r}")
    return math.ceil(seconds / 60)


class ExecutorOptions(BaseModel):
    """A study's ``[executor]`` table, or that table with the flags on top (NOTE [Executor
    options]); None = not set."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cpus_per_trial: float | None = Field(default=None, gt=0)
    gpus_per_trial: float | None = Field(default=None, ge=0)
    partition: str | None = None
    time: int | str | None = None
    mem_gb: float | None = Field(default=None, gt=0)
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array_parallelism: PositiveInt | None = None
    cluster: Literal["slurm", "local"] | None = None

    @field_validator("time")
    @classmethod
    def _time(cls, v: int | str | None) -> int | str | None:
        if v is not None:
            time_minutes(v)
        return v

    def over(self, **given: Any) -> "ExecutorOptions":
        """These options with the ``given`` values that are not None on top."""
        return self.model_validate({**self.model_dump(), **{k: v for k, v in given.items()
                                                            if v is not None}})

    @property
    def cpus(self) -> float:
        """CPUs per trial (1 when not set)."""
        return 1.0 if self.cpus_per_trial is None else self.cpus_per_trial

    @property
    def gpus(self) -> float:
        """GPUs per trial (0 when not set)."""
        return 0.0 if self.gpus_per_trial is None else self.gpus_per_trial


#: The keys an ``[executor]`` table may hold.
EXECUTOR_KEYS: tuple[str, ...] = tuple(ExecutorOptions.model_fields)


def executor_table(fn: str, table: Any, source: str) -> ExecutorOptions:
    """A study's ``[executor]`` table checked (unknown keys were refused by the caller)."""
    if not isinstance(table, Mapping):
        raise fail(fn, f"[executor] as a table in {source}", repr(table))
    try:
        return ExecutorOptions.model_validate(dict(table))
    except ValidationError as e:
        raise SpectrumkitError(pydantic_message(fn, e, f"in [executor] of {source}")) from None
