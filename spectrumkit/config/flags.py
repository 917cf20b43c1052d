r"""The field-to-flag table of a run configuration, and the command line that runs a config.

NOTE [Flags from fields]
``spectrumkit train``'s settings flags are made from this table, and a study trial's reproduce
line is rendered from the same table (:func:`train_command`), so the two cannot disagree and a new
field of a part is a new flag, with its help, with no edit elsewhere. A field's flag is its flat
name with dashes (``hidden_size`` → ``--hidden-size``), except ``task`` (``--data``), the task's
options ``data`` (``--data-option KEY=VALUE``, repeatable), ``l2_stage_steps``
(``--stage-steps``) and the score options without a flag of their own (``--score-option
KEY=VALUE``). Every option of every score method has a flag of its own (NOTE [Option flags] in
``cli/_options.py``) but ``batch_size`` (the training batch's flag) and ``density`` (the run's
``1 - sparsity``). A bool field is a pair ``--x/--no-x``; a tuple field is a repeatable flag.
Every settings flag defaults to "not given": the configuration's own default applies, shown in
the help, so the command with no flags runs :class:`~spectrumkit.config.RunConfig` ``()``.
"""

from __future__ import annotations

import shlex
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo

from .._flag_names import option_flag
from ..data.tasks import is_import_path
from ..errors import SpectrumkitError, fail
from ..scores.options import OPTION_MODELS, option_names
from ._fold import FLAT_OPTIONS
from .parts import PART_MODELS
from .run import FLAT_FIELDS, RunConfig, flat_config
from .score import L2Options

__all__ = ["EXCLUDED_OPTIONS", "Flag", "config_from_flags", "flag_of", "read_value",
           "score_option_fields", "setting_flags", "text_of", "train_command"]

#: Score options without a flag of their own in ``spectrumkit train`` (NOTE [Flags from fields]).
EXCLUDED_OPTIONS = ("batch_size", "density")
#: Flat keys whose flag is not their name with dashes.
_SPECIAL_FLAGS = {"task": "--data", "data": "--data-option", "l2_stage_steps": "--stage-steps",
                  "score_options": "--score-option"}


@dataclass(frozen=True)
class Flag:
    """One settings flag: the config key it sets, its flag, its kind, its field and help.

    ``kind``: ``value`` (one value), ``switch`` (a bool, ``--x/--no-x``), ``multiple`` (a tuple,
    repeatable), ``pairs`` (``KEY=VALUE``, repeatable: a dict), ``option`` (a score option: a
    flat key of the config or an entry of ``score_options``).
    """

    key: str
    flag: str
    kind: str
    field: FieldInfo | None
    help: str

    @property
    def param(self) -> str:
        """The click parameter's name: the key."""
        return self.key


def _non_none(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def score_option_fields(methods: Iterable[str] = tuple(OPTION_MODELS),
                        exclude: Iterable[str] = ()
                        ) -> dict[str, tuple[FieldInfo, tuple[str, ...]]]:
    """``{option: (its field, the methods that take it)}`` over ``methods``, in their order.

    >>> fields = score_option_fields(("snip", "synflow"), exclude=("density",))
    >>> fields["balance"][1], fields["iterations"][1], "density" in fields
    (('snip', 'synflow'), ('synflow',), False)
    """
    skip = set(exclude)
    out: dict[str, tuple[FieldInfo, tuple[str, ...]]] = {}
    for m in methods:
        model = OPTION_MODELS[m]
        for name in option_names(model):
            field = model.model_fields[name]
            extra = field.json_schema_extra
            if name in skip or (isinstance(extra, Mapping) and extra.get("python_only")):
                continue
            first, takers = out.get(name, (field, ()))
            out[name] = (first, (*takers, m))
    return out


def _default_text(field: FieldInfo) -> str:
    if field.default_factory is not None or field.default is None:
        return ""
    d = field.default
    d = " ".join(map(str, d)) if isinstance(d, tuple) else text_of(d)
    return f" (default: {d})" if d != "" else ""


def setting_flags() -> list[Flag]:
    """Every settings flag of ``spectrumkit train``, in the order of the configuration's parts
    (NOTE [Flags from fields])."""
    flags = [Flag("seed", "--seed", "value", RunConfig.model_fields["seed"],
                  str(RunConfig.model_fields["seed"].description) + " (default: 0)"),
             Flag("method", "--method", "value", None,
                  "dense, l2 (iterative magnitude prune-retrain, the paper's baseline), or a "
                  "score that prunes at initialization (default: jacobian)")]
    for flat, (part, name) in FLAT_FIELDS.items():
        field = PART_MODELS[part].model_fields[name]
        kind = ("pairs" if flat == "data" else "multiple"
                if typing.get_origin(field.annotation) is tuple else "switch"
                if bool in _non_none(field.annotation) else "value")
        flag = _SPECIAL_FLAGS.get(flat, "--" + flat.replace("_", "-"))
        flags.append(Flag(flat, flag, kind, field, (field.description or "")
                          + ("" if kind == "pairs" else _default_text(field))))
    flags.append(Flag("l2_stage_steps", "--stage-steps", "value",
                      L2Options.model_fields["stage_steps"],
                      "l2: steps per pruning stage (default: evenly spaced over --steps)"))
    flags.append(Flag("score_options", "--score-option", "pairs", None,
                      "an option of the score without a flag of its own, repeatable "
                      "(batch_size: the examples of χ and γ)"))
    for name, (field, takers) in score_option_fields(exclude=EXCLUDED_OPTIONS).items():
        kinds = _non_none(field.annotation)
        choices = [str(v) for a in kinds if typing.get_origin(a) is typing.Literal
                   for v in typing.get_args(a)]
        listed = f" [{', '.join(choices)}]" if choices and int not in kinds else ""
        flags.append(Flag(name, option_flag(name), "option", field,
                          f"{', '.join(takers)}: {field.description or ''}{listed} "
                          "(default: the method's)"))
    return flags


def read_value(text: str) -> object:
    """A ``KEY=VALUE`` flag's VALUE read as int, float, ``true``/``false``, ``none`` or a string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return None if text.lower() == "none" else text


def text_of(value: object) -> str:
    """The flag text that :func:`read_value` (or the flag's type) reads back as ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def config_from_flags(given: Mapping[str, Any]) -> dict[str, Any]:
    """The flat keys of a configuration from the flags given (``{key: value}``, NOTE [Flags from
    fields]): a score option's flag sets its flat key or an entry of ``score_options``."""
    kinds = {f.key: f.kind for f in setting_flags()}
    out: dict[str, Any] = {}
    score: dict[str, Any] = dict(given.get("score_options") or {})
    for k, v in given.items():
        if k == "score_options":
            continue
        if kinds.get(k) == "option" and k not in FLAT_OPTIONS:
            score[k] = v
        else:
            out[k] = v
    for k in [k for k in score if k in FLAT_OPTIONS]:
        out[k] = score.pop(k)
    out["score_options"] = score
    return out


def _args(flag: Flag, value: Any) -> list[str]:
    """The command-line words that set ``flag`` to ``value``."""
    if flag.kind == "switch":
        return [flag.flag if value else "--no-" + flag.flag[2:]]
    if flag.kind == "multiple":
        return [w for v in value for w in (flag.flag, str(v))]
    if flag.kind == "pairs":
        return [w for k, v in value.items() for w in (flag.flag, f"{k}={text_of(v)}")]
    if flag.kind == "option" and isinstance(value, bool) and flag.field is not None \
            and flag.field.annotation is bool:
        return [flag.flag if value else "--no-" + flag.flag[2:]]
    return [flag.flag, text_of(value)]


def _builds(given: Mapping[str, Any], config: RunConfig) -> bool:
    try:
        return RunConfig(**config_from_flags(given)) == config
    except (SpectrumkitError, ValueError):
        return False


def _asked(config: RunConfig) -> dict[str, Any]:
    """Every flag's value for ``config``, the score options as their own flags."""
    flat = flat_config(config.model_dump())
    flags = {f.key: f for f in setting_flags()}
    out = {k: v for k, v in flat.items() if k in flags and flags[k].kind != "option"
           and k not in ("trial", "score_options") and v not in (None, (), [], {})}
    for k in (*FLAT_OPTIONS, *flat["score_options"]):
        v = flat[k] if k in FLAT_OPTIONS else flat["score_options"][k]
        if v is None:
            continue
        if k in flags and flags[k].kind == "option":
            out[k] = v
        else:
            out.setdefault("score_options", {})[k] = v
    if isinstance(out.get("record"), list):
        out["record"] = tuple(out["record"])
    return out


def train_command(config: RunConfig, data_root: str | None = None) -> str:
    r"""The ``spectrumkit train`` command line that runs ``config`` (NOTE [Flags from fields]).

    Lists the flags the config needs, beyond the configuration's defaults, and ``--data-root``
    when given; ``--out OUT`` is a placeholder. Shell-quoted (shlex). Raises SpectrumkitError for
    a config the command cannot express: another trial kind, or values that do not read back as
    the same config.

    >>> train_command(RunConfig(method="random", sparsity=0.9, hidden_size=8, steps=5))
    'spectrumkit train --method random --hidden-size 8 --sparsity 0.9 --steps 5 --out OUT'
    """
    fn = "train_command"
    if config.trial != "prune-train":
        raise fail(fn, "a prune-train trial", repr(config.trial))
    given = _asked(config)
    for k in list(given):  # drop what the defaults give anyway
        trial = {j: v for j, v in given.items() if j != k}
        if _builds(trial, config):
            given = trial
    for k in list(given.get("score_options", {})):
        opts = {j: v for j, v in given["score_options"].items() if j != k}
        trial = {**given, "score_options": opts}
        if _builds(trial, config):
            given = trial
    if not _builds(given, config):
        raise fail(fn, "a config whose values read back from the command line",
                   f"{config.model_dump(mode='json')}")
    words = ["spectrumkit", "train"]
    for f in setting_flags():
        if f.key in given and given[f.key] not in ({}, ()):
            words += _args(f, given[f.key])
    if is_import_path(config.task):  # your own task by path (NOTE [Your own task])
        words.append("--allow-trial-code")
    if data_root is not None:
        words += ["--data-root", str(data_root)]
    return shlex.join([*words, "--out", "OUT"])


def flag_of(key: str) -> str:
    """The flag of a flat key or score option, e.g. ``--hidden-size`` for ``hidden_size``."""
    for f in setting_flags():
        if f.key == key:
            return f.flag
    return key
