"""The ``spectrumkit`` command: a thin click shell over the public functions.

NOTE [CLI errors]
Every failure a user can cause ends the same way: one line ``error: ...`` on stderr and exit
status 2, no traceback. That covers click's own usage errors (unknown option, bad value) and every
:class:`~spectrumkit.errors.SpectrumkitError` raised by the library. Ctrl-C and SIGTERM end it with
one line ``error: aborted`` and status 130 or 143 (NOTE [Aborts] in ``spectrumkit/_signals.py``).
A flag given by its old name is one line naming the new one (NOTE [One CLI vocabulary] in
``cli/_vocabulary.py``).

NOTE [Shell completion]
click completes the commands, their options and the study names (``spectrumkit study show
<TAB>``). Enable it once per shell:

    eval "$(_SPECTRUMKIT_COMPLETE=bash_source spectrumkit)"   # bash, in ~/.bashrc
    eval "$(_SPECTRUMKIT_COMPLETE=zsh_source spectrumkit)"    # zsh, in ~/.zshrc
    _SPECTRUMKIT_COMPLETE=fish_source spectrumkit | source    # fish
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .._signals import abort_status, command_signals
from .._version import VERSION as __version__
from ..errors import SpectrumkitError
from ._lazy import LazyGroup
from ._vocabulary import dumps, json_option, renamed_message


class _Group(LazyGroup):
    """The ``spectrumkit`` group: subcommands imported on first use (NOTE [Lazy commands]), errors
    one line and exit status 2 (NOTE [CLI errors])."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        _import_torch_first(sys.argv[1:] if args is None else list(args))
        try:
            with command_signals():  # NOTE [Aborts]: SIGINT and SIGTERM unwind every finally
                rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except (click.Abort, KeyboardInterrupt) as e:  # click wraps KeyboardInterrupt in Abort
            click.echo("error: aborted", err=True)
            sys.exit(abort_status(e))
        except click.NoSuchOption as e:  # NOTE [One CLI vocabulary]: an old name names the new
            click.echo(f"error: {renamed_message(e) or _usage(e)}", err=True)
            sys.exit(2)
        except click.ClickException as e:
            click.echo(f"error: {_usage(e)}", err=True)
            sys.exit(2)
        except SpectrumkitError as e:
            click.echo(f"error: {' '.join(str(e).split())}", err=True)
            sys.exit(2)
        except OSError as e:  # NOTE [Output paths]: whatever the file system says, one line
            where = f"{e.filename}: " if e.filename is not None else ""
            click.echo(f"error: {where}{' '.join(str(e.strerror or e).split())}", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


#: The invocations that import no torch (NOTE [Lazy commands]): any --help, --version, the bare
#: group, and ``study list`` / ``study show``.
_TORCH_FREE = (("study", "list"), ("study", "show"))


#: What a computing command imports in the import phase: torch, pandas and the library's stages
#: whose modules load C extensions (the study runner, the pipeline, training).
_HEAVY = ("torch", "numpy", "pandas", "spectrumkit.study.runner", "spectrumkit.pipeline",
          "spectrumkit.training")


def _import_torch_first(words: list[str]) -> None:
    """NOTE [Torch first]: a command that computes imports torch while the import phase's signal
    handler is in place (NOTE [Aborts]), before its own code runs.

    A Ctrl-C that lands inside a C extension's first import (numpy's, under torch's) leaves it
    half-initialized: a ``KeyboardInterrupt`` raised there unwinds into code that imports numpy
    again and fails with a traceback, or ends the process by the signal, instead of the one line.
    While the command's modules import, the handler installed by
    :func:`spectrumkit._signals.cli_prelude` leaves at once instead, so the subcommands (imported
    on first use) take torch, pandas and the stages that load them (:data:`_HEAVY`) here, in that
    phase. The commands that need no torch skip it, and so does an in-process caller (a test),
    whose handlers are its own.
    """
    import os

    from .._signals import runs_the_command

    if not runs_the_command() or not words or any(
            w in ("--help", "-h", "--version") for w in words) or any(
            k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return
    if tuple(words[:2]) in _TORCH_FREE:
        return
    import importlib

    for name in _HEAVY:
        importlib.import_module(name)


def _usage(e: click.ClickException) -> str:
    return f"{' '.join(e.format_message().split())} (see 'spectrumkit --help')"


#: The subcommands, imported when they run (NOTE [Lazy commands]): name → (import path, the
#: one-line help that ``spectrumkit --help`` lists).
_COMMANDS = {
    "export": ("spectrumkit.cli.cmd_export:export_cmd",
               "Export the trained sparse network of a finished `spectrumkit train` run folder."),
    "figures": ("spectrumkit.cli.cmd_figures:figures_cmd",
                "Regenerate a study's figures and tables from its stored results (nothing is "
                "recomputed)."),
    "prune": ("spectrumkit.cli.cmd_prune:prune_cmd",
              "Score a freshly initialized model, keep the top weights, print where they sit."),
    "spectrum": ("spectrumkit.cli.cmd_spectrum:spectrum_cmd",
                 "Singular-value spectra of the per-step Jacobians of a freshly initialized "
                 "cell."),
    "study": ("spectrumkit.cli.cmd_study:study_cmd",
              "Run a study (`spectrumkit study NAME`), or list / show the studies."),
    "train": ("spectrumkit.cli.cmd_train:train_cmd",
              "Train one model and write OUT/history.csv, OUT/metrics.json and OUT/mask.pt "
              "(atomically)."),
}


@click.group(cls=_Group, lazy=_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spectrumkit")
def main() -> None:
    """Temporal Jacobians, spectra and pruning at initialization for recurrent networks.

    Shell completion: eval "$(_SPECTRUMKIT_COMPLETE=bash_source spectrumkit)" (zsh_source,
    fish_source for the other shells).
    """


@main.command("cells")
@click.option("--input-size", type=int, default=28, show_default=True, help="D")
@click.option("--hidden-size", "hidden", type=int, default=400, show_default=True, help="N")
@json_option("the cells with their gates and weight counts")
def cells_cmd(input_size: int, hidden: int, as_json: bool) -> None:
    """List the built-in cells with their weight counts at (D, N)."""
    from ..cells import available, count_params, get

    cells: list[dict[str, Any]] = [{"cell": name, "gates": list(get(name).gates),
              "weights": count_params(name, input_size, hidden),
              "with_bias": count_params(name, input_size, hidden, include_bias=True)}
             for name in available()]
    if as_json:
        click.echo(dumps({"input_size": input_size, "hidden_size": hidden, "cells": cells}))
        return
    rows = [(c["cell"], ",".join(c["gates"]), f"{c['weights']:,}", f"{c['with_bias']:,}")
            for c in cells]
    # columns as wide as their widest entry (a huge --hidden must not run the numbers together)
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in
         enumerate(("cell", "gates", "weights", "with bias"))]
    click.echo(f"{'cell':<{w[0] + 2}}{'gates':<{w[1] + 2}}{'weights':>{w[2]}}  "
               f"{'with bias':>{w[3]}}")
    for name, gates, weights, with_bias in rows:
        click.echo(f"{name:<{w[0] + 2}}{gates:<{w[1] + 2}}{weights:>{w[2]}}  {with_bias:>{w[3]}}")
