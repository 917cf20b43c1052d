"""Command-line flags derived from the score options models (``scores/options.py``).

One decorator, :func:`score_option_flags`, adds one flag per option field of the given methods'
models, so a new option of a score method becomes a flag of every command that carries the
decorator with no edit here or there. :func:`given_options` collects the flags that were given.

NOTE [Option flags]
A field ``gamma_steps`` becomes ``--gamma-steps``; an int or float field takes that type (click
refuses ``--gamma-steps x`` itself); a bool field is a pair ``--x/--no-x``; ``horizon`` takes an
integer or ``all``. Every flag defaults to None, "the method's default" (for jacobian: its
recipe's, NOTE [Recipes]), so only the flags given reach the method. A field with a fixed set of
choices (a ``Literal``) lists them in its help but is passed as a string and checked by the
options model, so a misspelling gets the same one-line message as in Python
(``compute_scores: expected recipe to be one of ...``). Fields marked ``python_only`` (a
precomputed ``gamma``) have no flag, and a command ``exclude``s the fields it sets itself (the
scoring batch's size, the target density of synflow).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click
from pydantic.fields import FieldInfo

from ..choices import SCORE_METHODS
from ..config.flags import score_option_fields
from ._vocabulary import option_flag

__all__ = ["click_type", "given_options", "score_option_flags", "score_option_fields"]

F = TypeVar("F", bound=Callable[..., Any])


class _IntOrAll(click.ParamType):
    """An integer, or the word ``all``."""

    name = "INTEGER|all"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        """``all`` as is, anything else as an int (click's message when it is neither)."""
        if value == "all" or isinstance(value, int):
            return value
        try:
            return int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a valid integer or 'all'", param, ctx)


def _plain(annotation: Any) -> Any:
    """``Annotated[X, ...]`` → X (a constrained type's base)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _non_none(annotation: Any) -> list[Any]:
    """The members of a union annotation other than None (the annotation alone otherwise)."""
    annotation = _plain(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_plain(a) for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _choices(annotation: Any) -> tuple[Any, ...]:
    """The values of the ``Literal`` members of ``annotation``."""
    return tuple(v for a in _non_none(annotation) if typing.get_origin(a) is typing.Literal
                 for v in typing.get_args(a))


def click_type(annotation: Any, choice: bool = False) -> Any:
    """The click type of a field: INT, FLOAT, an int or ``all``, or a string (with ``choice``,
    a field of a fixed set of strings is a click Choice)."""
    kinds = _non_none(annotation)
    if int in kinds and _choices(annotation):
        return _IntOrAll()
    if kinds == [int]:
        return click.INT
    if kinds == [float]:
        return click.FLOAT
    if choice and _choices(annotation):
        return click.Choice([str(c) for c in _choices(annotation)])
    return click.STRING


def _help(field: FieldInfo, takers: tuple[str, ...]) -> str:
    choices = _choices(field.annotation)
    text = field.description or ""
    if choices and click_type(field.annotation) is click.STRING:
        text += f" [{', '.join(map(str, choices))}]"
    return f"{', '.join(takers)}: {text} (default: the method's)"


def score_option_flags(methods: Iterable[str] = SCORE_METHODS, exclude: Iterable[str] = ()
                       ) -> Callable[[F], F]:
    """A click decorator: one flag per score option of ``methods`` (NOTE [Option flags]).

    Each flag's value reaches the command as a keyword argument named like the field (None when
    not given); ``exclude`` names the fields the command sets itself.
    """
    fields = score_option_fields(tuple(methods), exclude)

    def decorate(f: F) -> F:
        for name, (field, takers) in reversed(fields.items()):
            flag = option_flag(name)  # NOTE [One CLI vocabulary]: a method's own option
            decls = [f"{flag}/--no-{flag[2:]}" if field.annotation is bool else flag, name]
            kind = None if field.annotation is bool else click_type(field.annotation)
            f = click.option(*decls, type=kind, default=None, help=_help(field, takers))(f)
        return f
    return decorate


def given_options(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The score option flags that were given (NOTE [Option flags]: None = not given).

    >>> given_options({"horizon": 8, "estimator": None, "through_time": False})
    {'horizon': 8, 'through_time': False}
    """
    return {k: v for k, v in flags.items() if v is not None}
