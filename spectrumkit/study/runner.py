r"""Run a study: resolve it, skip what is done, run the rest, store every result, write the table.

NOTE [Resume]
A trial is done when ``trials/<key>.json`` holds a valid result (NOTE [Atomic results]) with status
``ok`` or ``diverged``; ``failed`` results are kept too and rerun only with ``retry_failed`` (a
rerun counts them as "failed before", never as "already done", and names the flag). A
rerun of a finished study therefore trains nothing: it reads the results, rewrites the tables and
returns. Results are written one by one as trials finish, so a killed run loses at most the trials
that were in flight; their logs show a ``start`` marker without an ``end`` (NOTE [Run markers]).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError
from tqdm.auto import tqdm

from .._device import DeviceName
from ..choices import Executor
from ..data.tasks import task_code_allowed
from ..errors import SpectrumkitError, fail
from ._executor_options import ExecutorOptions
from .config import SCHEMA_VERSION, pydantic_message
from .executors import Job, run_jobs
from .spec import Study, check_study_name, load_study
from .store import ResultStore, collect
from .summary import markdown_table, summarize, write_tables
from .values import footnote

__all__ = ["RunOptions", "StudyRun", "run_study", "summary_tables"]


class RunOptions(BaseModel):
    """How to run a study; none of it enters a trial's key (NOTE [What the key covers])."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    preset: str = "quick"
    seeds: PositiveInt | None = None
    out: str = "results"
    device: DeviceName = "auto"  # NOTE [Device names]
    executor: Executor = "local"
    workers: PositiveInt = 2
    threads: PositiveInt | None = None
    retry_failed: bool = False
    ray_address: str | None = None
    # NOTE [Executor options]: None = the study's [executor] table, else 1 CPU and 0 GPUs
    cpus_per_trial: float | None = Field(None, gt=0)
    gpus_per_trial: float | None = Field(None, ge=0)
    partition: str | None = None
    time: int | str | None = None
    log: Literal["tensorboard"] | None = None  # one TensorBoard run per trial, live
    data_root: str | None = None
    allow_trial_code: bool = False


@dataclass
class StudyRun:
    """What a run did: counts, the summary and the files written."""

    study: Study
    dir: Path
    total: int
    already_done: int
    ran: int
    statuses: dict[str, int]
    seconds: float
    long: pd.DataFrame
    pivot: pd.DataFrame
    paths: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    failed_before: int = 0

    def table(self) -> str:
        """The summary as a Markdown table."""
        return markdown_table(self.pivot)


def _caption(study: Study, long: pd.DataFrame | None = None) -> str:
    t = study.report.table
    ref = f" Paper: {t.paper_table}." if t.paper_table else ""
    note = "" if long is None or "n_inf" not in long else footnote(
        t.metric, int(long["n_inf"].sum()), int(long["n_undefined"].sum()))
    return (f"{t.metric}: mean ± std over seeds (ddof=1), n = trials with status ok; "
            f"preset {study.preset}, {study.seeds} seed(s).{ref}" + (f" {note}" if note else ""))


def summary_tables(study: Study, folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """Collect the study's own trials from ``folder`` and write its summary tables.

    With ``report.tables`` each further metric gets its own ``tables/summary-<metric>.*`` and the
    returned pivot holds every metric side by side (columns ``metric: col``): those of the tables
    whose rows are the main table's; a table with other rows is only written to its own files
    (two pivots of different row fields share no index to stand side by side on).

    NOTE [One table writer]
    :mod:`spectrumkit.study.tables` and :mod:`spectrumkit.study.summary` write every table of the
    package, the study's summary included (:func:`~spectrumkit.study.summary.summarize`,
    :func:`~spectrumkit.study.summary.write_tables`); :mod:`spectrumkit.figures` reads them from
    here. The study stage imports nothing of the figures stage (matplotlib): the figures and the
    report page of a run are drawn by its caller (``spectrumkit study``:
    :func:`spectrumkit.figures.finish.finish_run`).
    """
    df = collect(folder, study.keys)
    if study.labels:  # NOTE [Study axes]: one copy of a trial per labels it has
        parts = [df[df["key"] == key].assign(**labels)
                 for key, labels in study.labelled_keys()] if "key" in df else []
        df = (pd.concat(parts, ignore_index=True) if parts
              else df.assign(**{a: None for a in study.variants}))
    long, pivot = summarize(df, study.report.table, order=study.order)
    paths = write_tables(folder / "tables", long, pivot,
                         title=f"{study.name} ({study.preset})", caption=_caption(study, long))
    if study.report.tables:
        pivots = [pivot.rename(columns=lambda c: f"{study.report.table.metric}: {c}")]
        for t in study.report.tables:
            lg, pv = summarize(df, t, order=study.order)
            note = footnote(t.metric, int(lg["n_inf"].sum()), int(lg["n_undefined"].sum()))
            paths += write_tables(folder / "tables", lg, pv, stem=f"summary-{t.metric}",
                                  title=f"{study.name} ({study.preset}): {t.metric}",
                                  caption=_caption(study).replace(
                                      study.report.table.metric, t.metric, 1)
                                  + (f" {note}" if note else ""))
            if list(pv.index.names) == list(pivot.index.names):
                pivots.append(pv.rename(columns=lambda c, m=t.metric: f"{m}: {c}"))
        pivot = pd.concat(pivots, axis=1)
    return long, pivot, paths


def _check_device(opts: RunOptions) -> None:
    """Refuse ``cuda`` without a GPU before anything runs; Ray and SLURM trials may run on other
    machines."""
    if opts.executor not in ("ray", "slurm"):
        from ..evaluation import resolve_device
        resolve_device(opts.device)


def _executor_options(fn: str, spec: Study, opts: RunOptions) -> ExecutorOptions:
    """The study's ``[executor]`` table with the run options on top (NOTE [Executor options]);
    ``partition`` and ``time`` are refused for an executor other than ``slurm``; ``log`` is
    checked too."""
    if opts.log == "tensorboard":
        _check_tensorboard(fn, opts)
    slurm_only = {k: v for k, v in (("partition", opts.partition), ("time", opts.time))
                  if v is not None}
    if opts.executor != "slurm" and slurm_only:
        raise fail(fn, "--partition and --time with --executor slurm only",
                   f"{', '.join(f'--{k} {v}' for k, v in slurm_only.items())} with --executor "
                   f"{opts.executor}")
    try:
        resources = spec.executor.over(cpus_per_trial=opts.cpus_per_trial,
                                       gpus_per_trial=opts.gpus_per_trial, **slurm_only)
    except ValidationError as e:
        raise SpectrumkitError(pydantic_message(fn, e)) from None
    if opts.executor == "slurm":
        from .slurm import check_slurm
        check_slurm(resources, fn)  # before anything is written
    return resources


def _check_tensorboard(fn: str, opts: RunOptions) -> None:
    """``log="tensorboard"``: the package is there, and the trials write into OUT (not Ray's)."""
    if opts.executor == "ray":
        raise fail(fn, "--log tensorboard with --executor local, process or slurm (Ray workers "
                   "may not see OUT; `spectrumkit study tensorboard OUT/NAME` writes the runs "
                   "from the stored trials)", "--executor ray")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise fail(fn, "the tensorboard package for --log tensorboard "
                   "(pip install 'spectrumkit[tensorboard]')", "no tensorboard installed"
                   ) from None


def _check_trial_code(spec: Study, allowed: bool) -> None:
    """NOTE [Trial code]: an import path as ``trial`` runs code, so it needs the explicit flag;
    so does one as ``task`` (NOTE [Your own task] in spectrumkit/data/tasks.py)."""
    from ..data.tasks import check_task_code
    from .config import BUILTIN_TRIALS
    for task in sorted({c.task for c in spec.configs}):
        check_task_code("run_study", task, allowed)
    code = sorted({c.trial for c in spec.configs if c.trial not in BUILTIN_TRIALS})
    if code and not allowed:
        raise fail("run_study", f"trial kinds among {', '.join(BUILTIN_TRIALS)} (an import path "
                   "runs code: pass allow_trial_code=True, --allow-trial-code)",
                   ", ".join(map(repr, code)))


def run_study(study: str | Path | Study, *, progress: bool | None = None,
              announce: Callable[[str], None] | None = None,
              overrides: Sequence[str] | Mapping[str, Any] = (), **options: Any) -> StudyRun:
    r"""Run ``study`` (a shipped name, a TOML path or a loaded :class:`Study`) and return a summary.

    Options (:class:`RunOptions`): ``preset`` (quick), ``seeds`` (override), ``out`` (results/),
    ``device`` (auto: CUDA when present), ``executor`` (local | process | ray), ``workers``
    (process pool size), ``threads`` (torch threads per trial, NOTE [Threads per worker]),
    ``retry_failed``, ``ray_address``, ``cpus_per_trial``,
    ``gpus_per_trial`` (fractional allowed), ``data_root`` (the trials' keys depend on its files,
    NOTE [What the key covers]), ``allow_trial_code`` (NOTE [Trial code]). ``progress``: one tqdm
    bar over the trials (None: only on a terminal). ``announce``: called once with a line saying
    what will run. ``overrides``: ``"KEY=VALUE"`` changes of the study's TOML, checked like the
    file and recorded in ``spec.json`` (NOTE [Study overrides]; a name or path only).

    Results go to ``OUT/<study>/`` as docs/results-schema.md describes; finished trials are skipped
    (NOTE [Resume]).

    NOTE [Trial code]
    A study's ``trial`` is a built-in kind (``prune-train``) or an import path
    ``"package.module:function"``, which imports that module and calls the function: code
    execution chosen by whoever wrote the TOML. A study file is data, so an import path is refused
    unless the caller says so explicitly (``allow_trial_code=True``, ``--allow-trial-code``); the
    check runs before any module is imported or any folder is created.
    """
    fn = "run_study"
    try:
        opts = RunOptions(**options)
    except ValidationError as e:
        raise SpectrumkitError(pydantic_message(fn, e)) from None
    if isinstance(study, Study):
        if overrides:
            raise fail(fn, "overrides with a study name or path (a loaded Study is resolved "
                       "already: load_study(..., overrides=...))", "a Study")
        with task_code_allowed(opts.allow_trial_code):
            spec = study if study.data_root == opts.data_root and study.data else \
                study.with_data_root(opts.data_root)
    else:
        with task_code_allowed(opts.allow_trial_code):  # a task "module:function" is imported
            spec = load_study(study, opts.preset, seeds=opts.seeds, data_root=opts.data_root,
                              overrides=overrides)
    check_study_name(fn, spec.name, spec.source)
    _check_trial_code(spec, opts.allow_trial_code)
    if opts.executor == "ray":
        from .executors import import_ray
        import_ray()
    resources = _executor_options(fn, spec, opts)
    _check_device(opts)
    t0 = time.perf_counter()
    store = ResultStore(Path(opts.out) / spec.name)
    store.prepare()
    store.check_outputs(spec.keys)  # every file the run will write, before any trial runs
    required = {t.metric for t in (spec.report.table, *spec.report.tables)}
    with store.lock():
        store.clean_temps()
        store.write_spec({**spec.to_json(), "schema_version": SCHEMA_VERSION})
        todo, done, kept_failed = [], 0, 0
        for cfg, key in zip(spec.configs, spec.keys):
            r = store.read(key, required=required)
            if r is None or (r["status"] == "failed" and opts.retry_failed):
                todo.append((cfg, key))
            elif r["status"] == "failed":
                kept_failed += 1  # a failure is a result, but not "done" (NOTE [Resume])
            else:
                done += 1
        if announce is not None:
            before = (f", {kept_failed} failed before (kept; --retry-failed runs them again)"
                      if kept_failed else "")
            announce(f"{spec.name} ({spec.preset}): {len(spec.configs)} trials, {done} already "
                     f"done{before}, {len(todo)} to run (executor {opts.executor}, device "
                     f"{opts.device}); results in {store.root}")
        remote = opts.executor == "ray"
        threads = opts.threads if opts.threads is not None else spec.threads
        if opts.executor in ("ray", "slurm") and threads is None:
            threads = max(1, int(resources.cpus))
        # process workers get theirs once, from the pool's initializer (NOTE [Threads per worker])
        per_job = None if opts.executor == "process" else threads
        jobs = [Job(key=key, config=cfg.model_dump(mode="json"), target=cfg.target,
                    log_path=None if remote else str(store.log_path(key).absolute()),
                    device=opts.device,
                    data_root=opts.data_root, threads=per_job,
                    tensorboard=None if opts.log is None else
                    str((store.root / "tensorboard" / key).absolute())) for cfg, key in todo]
        quiet = (not sys.stderr.isatty()) if progress is None else not progress
        bar = tqdm(total=len(jobs), desc=spec.name, unit="trial", disable=quiet,
                   dynamic_ncols=True)
        counts = {"ok": 0, "diverged": 0, "failed": 0}
        try:
            for job, outcome in run_jobs(jobs, opts.executor, workers=opts.workers,
                                         threads=threads,
                                         ray_address=opts.ray_address,
                                         cpus_per_trial=resources.cpus,
                                         gpus_per_trial=resources.gpus, slurm=resources,
                                         slurm_folder=store.root.absolute() / "slurm"):
                log = outcome.pop("log", None)
                if log:
                    store.append_log(job.key, log)
                data = {**spec.data[job.config["task"]], "root": opts.data_root,
                        "description": outcome.pop("data_description", None)}
                store.write({"schema_version": SCHEMA_VERSION, "key": job.key,
                             "study": spec.name, "config": job.config, **outcome, "data": data})
                counts[outcome["status"]] += 1
                bar.update(1)
                bar.set_postfix(counts, refresh=False)
        finally:
            bar.close()
        long, pivot, paths = summary_tables(spec, store.root)
    statuses = {"ok": 0, "diverged": 0, "failed": 0}
    failed = []
    for key in spec.keys:
        r = store.read(key, warn=False)
        if r is not None:
            statuses[r["status"]] += 1
            if r["status"] == "failed":
                failed.append((key, r.get("error") or ""))
    return StudyRun(study=spec, dir=store.root, total=len(spec.configs), already_done=done,
                    ran=len(jobs), statuses=statuses, seconds=time.perf_counter() - t0,
                    long=long, pivot=pivot, paths=[store.root / "spec.json", *paths],
                    failed=failed, failed_before=kept_failed)
