"""A click group that imports a subcommand's module only when that subcommand runs.

NOTE [Lazy commands]
``spectrumkit --help``, ``spectrumkit study list`` and ``spectrumkit study show NAME`` must start
without torch (it takes seconds to import). A group therefore names its subcommands by import path
(``"spectrumkit.cli.cmd_prune:prune_cmd"``) with their one-line help, and imports a module only
when its command is looked up to run, to print its own help or to complete its options. The
group's ``--help`` lists the one-line helps from the table; a test checks that each equals the
loaded command's own (``tests/test_cli_vocabulary.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click

__all__ = ["LazyGroup"]


class LazyGroup(click.Group):
    """A group whose ``lazy`` subcommands ``{name: ("module:attribute", short help)}`` are
    imported on first use (NOTE [Lazy commands])."""

    def __init__(self, *args, lazy: Mapping[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand's name, sorted: the loaded ones and the lazy ones."""
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module the first time."""
        if cmd_name in self.lazy and cmd_name not in self.commands:
            path, _ = self.lazy[cmd_name]
            module, attr = path.split(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{path} is not a click command")
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The subcommands with their one-line help, without importing the lazy ones."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        rows = []
        for name in names:
            if name in self.lazy and name not in self.commands:
                short = click.Command(name, help=self.lazy[name][1]).get_short_help_str(limit)
                rows.append((name, short))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
