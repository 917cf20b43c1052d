"""`spectrumkit study`: list, show and run declarative studies."""

from __future__ import annotations

import click

from ..choices import EXECUTORS, STUDY_DEVICES
from . import main

# `spectrumkit study NAME ...` runs a study; `study list` and `study show NAME` inspect them.
# A first argument that is not a subcommand is a study name: `study NAME` = `study run
# NAME`.


class _StudyGroup(click.Group):
    """A group whose unknown first argument is a study name for the ``run`` subcommand."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "NAME [OPTIONS] | list | show NAME")


_SET_HELP = ("change a setting of the study TOML without copying it (repeatable): KEY is a dotted "
             "path (grid.init, fixed.epochs, presets.quick.seeds, report.table.metric) or a bare "
             "trial field (hidden_size: this value for every trial, as if removed from grid, rows, "
             "cases and presets and set in [fixed]); VALUE is TOML (64, true, '[\"glorot\"]'), a "
             "bare word a string; checked like the file")


def _set_option(f):
    """The ``--set KEY=VALUE`` option (NOTE [Study overrides] in spectrumkit/study/spec.py)."""
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help=_SET_HELP)(f)


def _minutes_or_text(time: str | None) -> int | str | None:
    """``--time 90`` is 90 minutes, as in the TOML (NOTE [Executor options])."""
    return int(time) if time is not None and time.strip().isdigit() else time


@main.group("study", cls=_StudyGroup, invoke_without_command=True)
@click.pass_context
def study_cmd(ctx: click.Context) -> None:
    """Run a study (`spectrumkit study NAME`), or list / show the studies.

    NAME is a shipped study (see `spectrumkit study list`) or a path to a study TOML file.
    Results go to OUT/NAME/ and finished trials are never run again.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@study_cmd.command("list")
def study_list_cmd() -> None:
    """List the shipped studies with their trial counts per preset."""
    from ..study import list_studies, load_study

    rows = []
    for name in list_studies():
        s = {p: load_study(name, p) for p in ("quick", "paper")}
        first = " ".join(s["quick"].description.split())
        rows.append((name, len(s["quick"].configs), len(s["paper"].configs),
                     s["quick"].paper or "—", first[:60] + ("…" if len(first) > 60 else "")))
    click.echo(f"{'study':<15}{'quick':>6}{'paper':>7}  {'reference':<17}description")
    for name, q, p, ref, desc in rows:
        click.echo(f"{name:<15}{q:>6}{p:>7}  {ref:<17}{desc}")


@study_cmd.command("show")
@click.argument("name")
@click.option("--preset", default="quick", show_default=True, help="preset to resolve")
@_set_option
@click.option("--keys", "show_keys", is_flag=True, help="also list the trial keys, one a line")
def study_show_cmd(name: str, preset: str, overrides: tuple[str, ...], show_keys: bool) -> None:
    """Show a study resolved with a preset: grid, fixed settings, seeds, trials, report."""
    import json

    from ..study import load_study

    s = load_study(name, preset, overrides=overrides)
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
    for i, case in enumerate(s.cases):  # [[presets.P.cases]]: settings that go together
        click.echo(f"case {i + 1}:     " + ", ".join(f"{k} = {json.dumps(v)}"
                                                     for k, v in case.items()))
    for label, fields in s.rows:  # NOTE [Study rows]
        click.echo(f"row {label!r}: " + ", ".join(f"{k} = {json.dumps(v)}"
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
@click.argument("name")
@click.option("--preset", default="quick", show_default=True, help="quick (CPU, minutes) or paper")
@click.option("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
@click.option("--device", type=click.Choice(STUDY_DEVICES), default="auto",
              show_default=True, help="auto uses CUDA when present")
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
              help="let the study's trial be an import path 'module:function' (runs that code)")
@_set_option
def study_run_cmd(name: str, preset: str, seeds: int | None, device: str, executor: str,
                  workers: int, threads: int | None, out: str, retry_failed: bool,
                  ray_address: str | None, cpus_per_trial: float | None,
                  gpus_per_trial: float | None, partition: str | None, time: str | None,
                  data_root: str | None, log: str | None, figures: bool, allow_trial_code: bool,
                  overrides: tuple[str, ...]) -> None:
    """Run study NAME; finished trials are skipped. Ends with the summary table and the paths.

    The summary comes first: the counts, the first failures with their one-line errors and log
    paths. A run in which every trial failed then ends with one error line (exit status 2).

    \b
    --set KEY=VALUE (repeatable) changes the study's TOML before it is checked, e.g.
      spectrumkit study init-ablation --set hidden_size=64 --set 'grid.init=["glorot"]'
    KEY: a dotted path into the TOML (grid.init, fixed.epochs, presets.quick.seeds,
    report.table.metric); a bare trial field (hidden_size) sets that value for every trial,
    exactly as if the TOML had it removed from grid, rows, cases and presets and set in [fixed].
    VALUE: a TOML value (64, 0.5, true, "x", ["glorot"]); a bare word that is not TOML is a
    string. An unknown key or a wrong type is one error line (exit status 2); spec.json records
    the overrides.
    """
    import warnings

    from ..errors import fail
    from ..study import StudyWarning, run_study

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
        # spectrumkit.study.finish_run draws the declared figures and paper-style tables from the
        # trials of the study as resolved now, removes what an earlier spec left and writes
        # report.html (NOTE [No stale outputs], NOTE [Report page]).
        if figures and st["ok"] == 0:
            counts = ", ".join(f"{st[k]} {k}" for k in ("diverged", "failed") if st[k])
            click.echo(f"figures: none drawn, no trial of study {run.study.name!r} has status ok"
                       f" ({counts or 'no results'})")
        from ..study.runner import finish_run

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
