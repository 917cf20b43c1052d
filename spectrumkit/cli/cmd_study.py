"""`spectrumkit study`: list, show and run declarative studies."""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

from ..choices import EXECUTORS
from ._lazy import LazyGroup
from ._vocabulary import DTYPES, device_option, dumps, json_option, resolve_device

# `spectrumkit study NAME ...` runs a study; `study list` and `study show NAME` inspect them.
# A first argument that is not a subcommand is a study name: `study NAME` = `study run
# NAME`. This module imports no torch (NOTE [Lazy commands]): `study list` and `study show` load
# only the study specs.


def complete_study(ctx: click.Context | None, param: click.Parameter | None, incomplete: str
                   ) -> list[CompletionItem]:
    """The shipped study names that start with ``incomplete`` (NOTE [Shell completion]); a path
    (with a separator, or ending in .toml) completes as a file."""
    if "/" in incomplete or incomplete.endswith(".toml") or incomplete.startswith("."):
        return [CompletionItem(incomplete, type="file")]
    from ..study.spec import list_studies

    return [CompletionItem(n) for n in list_studies() if n.startswith(incomplete)]


class _StudyGroup(LazyGroup):
    """A group whose unknown first argument is a study name for the ``run`` subcommand."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.list_commands(ctx) and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "NAME [OPTIONS] | list | show NAME")

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """The subcommands and the study names (``study NAME`` runs NAME)."""
        return [*super().shell_complete(ctx, incomplete),
                *complete_study(ctx, None, incomplete)]


_SET_HELP = ("change a setting of the study TOML without copying it (repeatable): KEY is a dotted "
             "path (grid.init, fixed.epochs, presets.quick.seeds, report.table.metric) or a bare "
             "trial field (hidden_size: this value for every trial, as if removed from the axes "
             "and presets and set in [fixed]); VALUE is TOML (64, true, '[\"glorot\"]'), a "
             "bare word a string; checked like the file")


def _set_option(f):
    """The ``--set KEY=VALUE`` option (NOTE [Study overrides] in spectrumkit/study/spec.py)."""
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help=_SET_HELP)(f)


def _minutes_or_text(time: str | None) -> int | str | None:
    """``--time 90`` is 90 minutes, as in the TOML (NOTE [Executor options])."""
    return int(time) if time is not None and time.strip().isdigit() else time


#: The subcommands defined elsewhere, imported when they run (NOTE [Lazy commands]).
_LAZY = {
    "export": ("spectrumkit.cli.cmd_export:study_export_cmd",
               "Write the stored trials of the study folder OUT/NAME as one table, one row per "
               "trial."),
    "tensorboard": ("spectrumkit.cli.cmd_export:study_tensorboard_cmd",
                    "Write one TensorBoard run per stored trial of OUT/NAME into DIR/<key> "
                    "(tensorboard extra)."),
}


@click.group("study", cls=_StudyGroup, lazy=_LAZY, invoke_without_command=True)
@click.pass_context
def study_cmd(ctx: click.Context) -> None:
    """Run a study (`spectrumkit study NAME`), or list / show the studies.

    NAME is a shipped study (see `spectrumkit study list`) or a path to a study TOML file.
    Results go to OUT/NAME/ and finished trials are never run again.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@study_cmd.command("list")
@json_option("the studies, each with its trial counts per preset")
def study_list_cmd(as_json: bool) -> None:
    """List the shipped studies with their trial counts per preset."""
    from ..study.spec import list_studies, load_study

    rows: list[dict[str, Any]] = []
    for name in list_studies():
        s = {p: load_study(name, p) for p in ("quick", "paper")}
        rows.append({"name": name, "quick": len(s["quick"].configs),
                     "paper": len(s["paper"].configs), "reference": s["quick"].paper,
                     "description": " ".join(s["quick"].description.split())})
    if as_json:
        click.echo(dumps(rows))
        return
    click.echo(f"{'study':<15}{'quick':>6}{'paper':>7}  {'reference':<17}description")
    for r in rows:
        first = r["description"]
        desc = first[:60] + ("…" if len(first) > 60 else "")
        click.echo(f"{r['name']:<15}{r['quick']:>6}{r['paper']:>7}  "
                   f"{r['reference'] or '—':<17}{desc}")


def show_json(s: Any) -> dict[str, Any]:
    """``study show --json``: the resolved spec as ``spec.json`` holds it (Study.to_json), with
    the presets the file declares and the number of trials."""
    return {**s.to_json(), "presets": list(s.presets), "trials": len(s.configs)}


@study_cmd.command("show")
@click.argument("name", shell_complete=complete_study)
@click.option("--preset", default="quick", show_default=True, help="preset to resolve")
@_set_option
@click.option("--keys", "show_keys", is_flag=True, help="also list the trial keys, one a line")
@click.option("--allow-trial-code", is_flag=True,
              help="let the study's task be an import path 'module:function' (runs that code)")
@json_option("the resolved study as spec.json holds it (its keys included)")
def study_show_cmd(name: str, preset: str, overrides: tuple[str, ...], show_keys: bool,
                   allow_trial_code: bool, as_json: bool) -> None:
    """Show a study resolved with a preset: grid, fixed settings, seeds, trials, report."""
    import json

    from ..data.tasks import task_code_allowed
    from ..study.spec import load_study

    with task_code_allowed(allow_trial_code):  # NOTE [Your own task]
        s = load_study(name, preset, overrides=overrides)
    if as_json:
        click.echo(dumps(show_json(s)))
        return
    click.echo(f"study:       {s.name}   ({s.source})")
    click.echo(f"reference:   {s.paper or '—'}")
    click.echo(f"description: {' '.join(s.description.split())}")
    click.echo(f"presets:     {', '.join(s.presets)} (showing {s.preset})")
    click.echo(f"seeds:       {s.seeds}")
    click.echo(f"threads:     {s.threads or 'torch default'} per trial (local executor)")
    table = s.executor.model_dump(exclude_none=True)  # NOTE [Executor options]
    if table:
        click.echo("executor:    " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()))
    click.echo(f"trials:      {len(s.configs)}")
    click.echo("grid:")
    for k, v in s.grid.items():
        click.echo(f"  {k} = {json.dumps(v)}")
    click.echo("fixed:")
    for k, v in s.fixed.items():
        click.echo(f"  {k} = {json.dumps(v)}")
    for axis, variants in s.variants.items():  # NOTE [Study axes]: labelled variants
        for label, fields in variants:
            click.echo(f"{axis} {label!r}: " + ", ".join(f"{k} = {json.dumps(v)}"
                                                        for k, v in fields.items()))
    t = s.report.table
    click.echo(f"table:       rows {t.rows}, cols {t.cols or '—'}, metric {t.metric}"
               + (f" ({t.paper_table})" if t.paper_table else ""))
    click.echo(f"figures:     {', '.join(s.report.figures) or '—'}")
    if s.overrides:
        click.echo("overrides:   " + " ".join(o.given for o in s.overrides))
    if show_keys:
        click.echo("keys:")
        for key in s.keys:
            click.echo(f"  {key}")


@study_cmd.command("run")
@click.argument("name", shell_complete=complete_study)
@click.option("--preset", default="quick", show_default=True, help="quick (CPU, minutes) or paper")
@click.option("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
@device_option("the device every trial runs on")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local",
              show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="process pool size")
@click.option("--threads", type=int, default=None,
              help="torch threads per trial (default: the preset's; else torch's own setting "
                   "for local, cores / workers for process, --cpus-per-trial for Ray)")
@click.option("--out", default="results", show_default=True, help="results root (OUT/NAME/)")
@click.option("--retry-failed", is_flag=True, help="run failed trials again")
@click.option("--ray-address", default=None, help="Ray cluster address (default: start locally)")
@click.option("--cpus-per-trial", type=float, default=None,
              help="Ray and SLURM (default: the study's [executor] table, else 1)")
@click.option("--gpus-per-trial", type=float, default=None,
              help="Ray and SLURM (default: the study's [executor] table, else 0); Ray: "
                   "fractional shares one GPU")
@click.option("--partition", default=None,
              help="SLURM partition (default: the study's [executor] table, else the cluster's)")
@click.option("--time", default=None, metavar="TIME",
              help="SLURM time limit per trial: minutes, HH:MM:SS or D-HH:MM:SS (default: the "
                   "study's [executor] table, else the partition's); see docs/cluster.md")
@click.option("--data-root", default=None, help="folder with the full data set (default: bundled)")
@click.option("--log", type=click.Choice(["tensorboard"]), default=None,
              help="one live TensorBoard run per trial in OUT/NAME/tensorboard/KEY (the "
                   "tensorboard extra): history, lr, the mask's I/R and gate shares, the "
                   "singular-value histogram at each evaluation when the trial records sv_hist")
@click.option("--figures/--no-figures", default=True, show_default=True,
              help="draw the study's figures at the end")
@click.option("--allow-trial-code", is_flag=True,
              help="let the study's trial or task be an import path 'module:function' (runs "
                   "that code)")
@click.option("--dtype", type=click.Choice(DTYPES), default=None,
              help="every trial's dtype, as --set dtype=VALUE (default: the study's, float32)")
@_set_option
def study_run_cmd(name: str, preset: str, seeds: int | None, device: str, executor: str,
                  workers: int, threads: int | None, out: str, retry_failed: bool,
                  ray_address: str | None, cpus_per_trial: float | None,
                  gpus_per_trial: float | None, partition: str | None, time: str | None,
                  data_root: str | None, log: str | None, figures: bool, allow_trial_code: bool,
                  overrides: tuple[str, ...], dtype: str | None) -> None:
    """Run study NAME; finished trials are skipped. Ends with the summary table and the paths.

    The summary comes first: the counts, the first failures with their one-line errors and log
    paths. A run in which every trial failed then ends with one error line (exit status 2).

    \b
    --set KEY=VALUE (repeatable) changes the study's TOML before it is checked, e.g.
      spectrumkit study init-ablation --set hidden_size=64 --set 'grid.init=["glorot"]'
    KEY: a dotted path into the TOML (grid.init, fixed.epochs, presets.quick.seeds,
    report.table.metric); a bare trial field (hidden_size) sets that value for every trial,
    exactly as if the TOML had it removed from the axes and presets and set in [fixed].
    VALUE: a TOML value (64, 0.5, true, "x", ["glorot"]); a bare word that is not TOML is a
    string. An unknown key or a wrong type is one error line (exit status 2); spec.json records
    the overrides.
    """
    if dtype is not None:  # the trials' own field (NOTE [One CLI vocabulary])
        overrides = (*overrides, f"dtype={dtype}")
    import warnings

    from ..errors import fail
    from ..study import StudyWarning, run_study

    if executor != "ray":  # Ray trials may run on other machines, with other devices
        resolve_device("study", device)  # one line naming --device when it is not here

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"warning: {' '.join(str(message).split())}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", StudyWarning)
        warnings.showwarning = show
        run = run_study(name, preset=preset, seeds=seeds, device=device, executor=executor,
                        workers=workers, threads=threads, out=out, retry_failed=retry_failed,
                        ray_address=ray_address, cpus_per_trial=cpus_per_trial,
                        gpus_per_trial=gpus_per_trial, partition=partition,
                        time=_minutes_or_text(time), data_root=data_root, log=log,
                        allow_trial_code=allow_trial_code, overrides=overrides,
                        announce=lambda msg: click.echo(msg, err=True))
        # the failure summary first, whatever happens to the figures
        st = run.statuses
        before = (f", {run.failed_before} failed before (kept; --retry-failed runs them again)"
                  if run.failed_before else "")
        click.echo(f"{run.study.name} ({run.study.preset}): {run.total} trials, "
                   f"{run.already_done} already done{before}, {run.ran} run now; ok {st['ok']}, "
                   f"diverged {st['diverged']}, failed {st['failed']}; {run.seconds:.1f} s")
        for key, err in run.failed[:5]:
            click.echo(f"  failed {key[:12]}: {err}  (log: {run.dir / 'logs' / (key + '.log')})")
        if len(run.failed) > 5:
            click.echo(f"  ... and {len(run.failed) - 5} more failed (--retry-failed reruns them)")
        paths = list(run.paths)
        # --- figures, report page ------------------------------------------------------------
        # figures.finish.finish_run draws the declared figures and paper-style tables from the
        # trials of the study as resolved now, removes what an earlier spec left and writes
        # report.html (NOTE [No stale outputs], NOTE [Report page]).
        if figures and st["ok"] == 0:
            counts = ", ".join(f"{st[k]} {k}" for k in ("diverged", "failed") if st[k])
            click.echo(f"figures: none drawn, no trial of study {run.study.name!r} has status ok"
                       f" ({counts or 'no results'})")
        from ..figures.finish import finish_run

        paths += finish_run(run, figures=figures)
        # ---------------------------------------------------------------------------------------
    click.echo("")
    click.echo(run.table())
    click.echo("")
    click.echo("wrote:")
    for p in paths:
        click.echo(f"  {p}")
    if run.total and st["ok"] + st["diverged"] == 0:
        first = run.failed[0][1] if run.failed else "?"
        raise fail("run_study", "at least one trial that does not fail",
                   f"{st['failed']} of {run.total} trials failed (first: {first}; the failures "
                   f"and logs are listed above; fix the cause, then --retry-failed)")
