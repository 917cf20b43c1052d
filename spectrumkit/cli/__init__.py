"""The ``spectrumkit`` command: a thin click shell over the public functions.

NOTE [CLI errors]
Every failure a user can cause ends the same way: one line ``error: ...`` on stderr and exit
status 2, no traceback. That covers click's own usage errors (unknown option, bad value) and every
:class:`~spectrumkit.errors.SpectrumkitError` raised by the library. Ctrl-C and SIGTERM end it with
one line ``error: aborted`` and status 130 or 143 (NOTE [Aborts] in ``spectrumkit/_signals.py``).
"""

from __future__ import annotations

import sys

import click

from .._version import VERSION as __version__
from .._signals import abort_status, command_signals
from ..errors import SpectrumkitError


class _Group(click.Group):
    """A click group whose errors are one line and exit status 2 (NOTE [CLI errors])."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            with command_signals():  # NOTE [Aborts]: SIGINT and SIGTERM unwind every finally
                rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except (click.Abort, KeyboardInterrupt) as e:  # click wraps KeyboardInterrupt in Abort
            click.echo("error: aborted", err=True)
            sys.exit(abort_status(e))
        except click.ClickException as e:
            msg = " ".join(e.format_message().split())
            click.echo(f"error: {msg} (see 'spectrumkit --help')", err=True)
            sys.exit(2)
        except SpectrumkitError as e:
            click.echo(f"error: {' '.join(str(e).split())}", err=True)
            sys.exit(2)
        except OSError as e:  # NOTE [Output paths]: whatever the file system says, one line
            where = f"{e.filename}: " if e.filename is not None else ""
            click.echo(f"error: {where}{' '.join(str(e.strerror or e).split())}", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spectrumkit")
def main() -> None:
    """Temporal Jacobians, spectra and pruning at initialization for recurrent networks."""


@main.command("cells")
@click.option("--input-size", type=int, default=28, show_default=True, help="D")
@click.option("--hidden", type=int, default=400, show_default=True, help="N")
def cells_cmd(input_size: int, hidden: int) -> None:
    """List the built-in cells with their weight counts at (D, N)."""
    from ..cells import available, count_params, get

    rows = [(name, ",".join(get(name).gates), f"{count_params(name, input_size, hidden):,}",
             f"{count_params(name, input_size, hidden, include_bias=True):,}")
            for name in available()]
    # columns as wide as their widest entry (a huge --hidden must not run the numbers together)
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in
         enumerate(("cell", "gates", "weights", "with bias"))]
    click.echo(f"{'cell':<{w[0] + 2}}{'gates':<{w[1] + 2}}{'weights':>{w[2]}}  "
               f"{'with bias':>{w[3]}}")
    for name, gates, weights, with_bias in rows:
        click.echo(f"{name:<{w[0] + 2}}{gates:<{w[1] + 2}}{weights:>{w[2]}}  {with_bias:>{w[3]}}")


# The commands live in one module each and register themselves on `main` when imported.
from . import cmd_export, cmd_figures, cmd_prune, cmd_spectrum, cmd_study, cmd_train  # noqa: E402,F401 (they register on main)
