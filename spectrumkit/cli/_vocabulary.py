"""The words the commands share: one meaning per flag, the renamed flags, --device, --dtype, --json.

NOTE [One CLI vocabulary]
A flag means the same thing on every command that has it:

    --steps          optimizer steps (train only)
    --seq-len        T, the length of the sequences a command draws
    --score-batch    B of the batch a pruning score is computed on
    --spectrum-batch B of the batch the Jacobian spectra are computed on
    --jacobian-steps which steps' Jacobians a spectrum is taken at
    --device         auto, cpu, cuda or cuda:K (NOTE [Device names] in spectrumkit/_device.py)
    --dtype          float32 or float64, the dtype of the parameters and the data
    --json           one JSON document on stdout, nothing else there

An option that belongs to one method carries the method's name (``--lanczos-iterations``,
``--synflow-rounds``, ``--hutchinson-probes``); the other score options keep the name of their
field in the options model (``--horizon``, ``--gamma-steps``, NOTE [Option flags]). A flag that
was renamed is refused by its old name with one line naming the new one (exit status 2):
:data:`RENAMED` lists them per command, and the group's error handler reads it
(:func:`renamed_message`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click

from .._device import DEVICE_FORMS, check_device_name
from .._flag_names import SCORE_OPTION_FLAGS, option_flag
from ..errors import SpectrumkitError

__all__ = ["DTYPES", "RENAMED", "SCORE_OPTION_FLAGS", "Device", "device_option", "dtype_option",
           "dumps", "flags_in_message", "json_option", "option_flag", "renamed_message",
           "resolve_device"]

F = TypeVar("F", bound=Callable[..., Any])

#: The dtypes a command computes in.
DTYPES = ("float32", "float64")


_HIDDEN = "--hidden-size (N, as in spectrumkit train and a study's hidden_size)"
_SYNFLOW = "--synflow-rounds (synflow's rounds of the exponential schedule)"
_HUTCHINSON = "--hutchinson-probes (the Rademacher probes of the hutchinson χ estimator)"

#: ``{command path: {old flag: the new flag, with what it means}}``.
RENAMED: dict[str, dict[str, str]] = {
    "cells": {"--hidden": _HIDDEN},
    "prune": {
        "--hidden": _HIDDEN,
        "--steps": "--seq-len (T, the length of the scoring batch; --steps means optimizer "
                   "steps, in spectrumkit train)",
        "--batch-size": "--score-batch (B of the scoring batch)",
        "--iterations": _SYNFLOW,
        "--probes": _HUTCHINSON,
    },
    "train": {
        "--hidden": _HIDDEN,
        "--iterations": _SYNFLOW,
        "--probes": _HUTCHINSON,
    },
    "spectrum": {
        "--hidden": _HIDDEN,
        "--steps": "--jacobian-steps (which steps' Jacobians: last:U, all or a list; --steps "
                   "means optimizer steps, in spectrumkit train)",
        "--batch": "--spectrum-batch (B of the batch the spectra are taken on)",
        "--iterations": "--lanczos-iterations (Lanczos steps per probe)",
        "--probes": "--lanczos-probes (Lanczos probes per example)",
        "--top-k": "--lanczos-top-k (extreme singular values per matrix)",
        "--tol": "--lanczos-tol (relative residual of a converged Ritz value)",
    },
}


def _command_path(ctx: click.Context | None) -> str:
    """``prune``, ``study run``: the names of the commands below the root, from ``ctx``."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def renamed_message(error: click.NoSuchOption) -> str | None:
    """The one line that refuses an old flag name (NOTE [One CLI vocabulary]); None for any
    other unknown option."""
    path = _command_path(error.ctx)
    new = RENAMED.get(path, {}).get(error.option_name)
    if new is None:
        return None
    return f"spectrumkit {path}: {error.option_name} was renamed; use {new}"


class Device(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:K`` (NOTE [Device names]), checked without torch."""

    name = "auto|cpu|cuda|cuda:K"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        """The name as given, or click's one-line usage error naming the flag."""
        try:
            return check_device_name("--device", "--device", value)
        except SpectrumkitError:
            self.fail(f"expected {DEVICE_FORMS}, got {value!r}", param, ctx)


def device_option(help: str = "") -> Callable[[F], F]:
    """``--device`` (default ``auto``: CUDA when present, else the CPU)."""
    text = f"{DEVICE_FORMS}; auto: CUDA when present" + (f"; {help}" if help else "")
    return click.option("--device", type=Device(), default="auto", show_default=True, help=text)


def dtype_option(help: str = "the dtype of the parameters and the data") -> Callable[[F], F]:
    """``--dtype`` float32 (default) or float64."""
    return click.option("--dtype", type=click.Choice(DTYPES), default="float32",
                        show_default=True, help=help)


def json_option(what: str) -> Callable[[F], F]:
    """``--json``: ``what`` as one JSON document on stdout, and nothing else there."""
    return click.option("--json", "as_json", is_flag=True,
                        help=f"print {what} as JSON on stdout (nothing else goes to stdout)")


def dumps(value: Any) -> str:
    """``value`` as JSON text: strict (no NaN or Infinity; a non-finite float is null), sorted as
    given, two-space indents."""
    import json
    import math

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), indent=2, allow_nan=False)


def flags_in_message(message: str, fields: Iterable[str] | Mapping[str, str]) -> str:
    """``message`` with each field named by its flag (errors name what the user wrote, not the
    field of an options model): ``fields`` maps a field to its flag, or lists score option fields
    (:func:`option_flag`).

    >>> flags_in_message("f: expected probes only with estimator='hutchinson', got probes",
    ...                  ["probes"])
    "f: expected --hutchinson-probes only with estimator='hutchinson', got --hutchinson-probes"
    """
    flags = dict(fields) if isinstance(fields, Mapping) else {f: option_flag(f) for f in fields}
    for f in sorted(flags, key=len, reverse=True):
        message = re.sub(rf"(?<![\w-]){re.escape(f)}(?![\w-])", flags[f], message)
    return message


def resolve_device(fn: str, device: str) -> Any:
    """The torch device of ``--device``, or one line naming the flag when it is not there (no GPU,
    an index beyond the device count)."""
    from ..evaluation import resolve_device as resolve

    try:
        return resolve(device)
    except SpectrumkitError as e:
        why = str(e).split("expected ", 1)[-1]
        raise SpectrumkitError(f"{fn}: expected --device {DEVICE_FORMS} that this machine has, "
                               f"got --device {device} ({why})") from None
