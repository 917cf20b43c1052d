r"""The one task registry: every task's name, kind, options (names, types, defaults) and loader.

Importable without torch (the study loader checks a trial's data options with it when the trial's
configuration is built, and ``spectrumkit study show`` never imports torch); loading a task's data
is :func:`spectrumkit.data.load_task`.

NOTE [Task options]
Each task declares its options as a frozen pydantic model with strict types: an ``int`` option
refuses ``True`` and ``"3"``, a ``float`` option takes an int, unknown names are refused.
:func:`check_task_options` returns the options GIVEN, checked, without the defaults: a trial that
names no option keeps the key it had, and the defaults live in one place (:func:`task_defaults`).

NOTE [Your own task]
:func:`register_task` adds a task under a name; its loader returns the toolkit's containers
(:class:`~spectrumkit.data.TaskData`), tensors, or a ``torch.utils.data.Dataset`` of sequences
(the forms and their split rule: :func:`spectrumkit.data.load_task`). From a study TOML or the
command line a task may also be an import path ``"package.module:function"``: the function is the
loader, and its keyword parameters with their defaults are the task's options. An import path runs
code, so it is resolved (imported and registered under that path) only inside
:func:`task_code_allowed`, which ``--allow-trial-code`` opens (as for a study's ``trial``,
NOTE [Trial code]); outside it, :func:`check_task_options` and
:func:`~spectrumkit.data.data_identity` refuse it in one line naming the key ``task`` and the
flag. :func:`~spectrumkit.data.load_task` resolves an import path itself: it runs a trial that a
door already let through (in a worker process too), and a Python caller runs code anyway.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..errors import SpectrumkitError, fail

__all__ = ["DEFAULT_BPTT", "TaskSpec", "check_task_code", "check_task_options", "get_task",
           "is_import_path", "register_task", "task_code_allowed", "task_defaults", "task_names",
           "spec_defaults", "unregister_task", "validate_options"]

#: Truncated-BPTT window length of the language tasks when none is given.
DEFAULT_BPTT = 35

TaskKind = Literal["classification", "language", "regression"]
_KINDS = ("classification", "language", "regression")
_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Positive = Annotated[int, Field(gt=0)]
Scalar = Union[bool, int, float, str, None]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SeqMnistOptions(_Options):
    """``seq-mnist``: variant, pixel scale, split rule and subsets (NOTE [Bundled data])."""

    variant: Literal["row", "pixel", "permuted"] = "row"
    scale: Literal["unit", "standard", "paper"] = "unit"
    permutation_seed: int = 0
    limit: Positive | None = None
    val_limit: Positive | None = None
    split_rule: Literal["default", "authors"] = "default"


class WikiTextOptions(_Options):
    """``wikitext`` and ``wikitext-103``: vocabulary cap, BPTT window, first ``limit`` tokens."""

    max_vocab: Annotated[int, Field(ge=2)] | None = None
    bptt: Positive = DEFAULT_BPTT
    limit: Positive | None = None


class OneBOptions(WikiTextOptions):
    """``1b``: as WikiText-103, the paper's 100,000-word vocabulary, and the bundled sample."""

    max_vocab: Annotated[int, Field(ge=2)] | None = 100000
    sample: bool = False


class AddingOptions(_Options):
    """``adding``: sequence length T, split sizes, the seed of the one generator."""

    T: Annotated[int, Field(ge=2)] = 50
    n_train: Positive = 10000
    n_val: Positive = 1000
    n_test: Positive = 1000
    seed: int = 0


class CopyOptions(_Options):
    """``copy``: T symbols, the delay before the cue, split sizes, the seed."""

    T: Positive = 10
    delay: Positive = 20
    n_train: Positive = 10000
    n_val: Positive = 1000
    n_test: Positive = 1000
    seed: int = 0


@dataclass(frozen=True)
class TaskSpec:
    """One registered task.

    Attributes:
        name: the name ``load_task`` takes. kind: classification, language or regression (None:
            a user task's kind follows from its data). options: the options model (NOTE [Task
            options]). loader: ``"module:function"`` of a built-in loader ``(name, root, options)
            -> TaskData``, or a user's loader ``(**options)``. takes_root: whether ``root=``
            applies. builtin: shipped with the package.
    """

    name: str
    kind: str | None
    options: type[BaseModel]
    loader: str | Callable[..., Any]
    takes_root: bool = False
    builtin: bool = False

    @property
    def option_names(self) -> tuple[str, ...]:
        """The task's option names, in declaration order."""
        return tuple(self.options.model_fields)


def _builtin(name: str, kind: str, options: type[BaseModel], loader: str,
             takes_root: bool) -> TaskSpec:
    return TaskSpec(name, kind, options, f"spectrumkit.data.{loader}", takes_root, builtin=True)


_REGISTRY: dict[str, TaskSpec] = {s.name: s for s in (
    _builtin("seq-mnist", "classification", SeqMnistOptions, "mnist:mnist_task", True),
    _builtin("wikitext", "language", WikiTextOptions, "wikitext2:wikitext_task", True),
    _builtin("adding", "regression", AddingOptions, "synthetic:synthetic_task", False),
    _builtin("copy", "language", CopyOptions, "synthetic:synthetic_task", False),
    _builtin("wikitext-103", "language", WikiTextOptions, "corpora:corpus_task", True),
    _builtin("1b", "language", OneBOptions, "corpora:corpus_task", True),
)}

#: Open inside :func:`task_code_allowed` (NOTE [Your own task]).
_CODE_ALLOWED: ContextVar[bool] = ContextVar("spectrumkit_task_code_allowed", default=False)


def task_names() -> tuple[str, ...]:
    """The names of the built-in tasks, then of the registered ones, in registration order.

    >>> task_names()[:4]
    ('seq-mnist', 'wikitext', 'adding', 'copy')
    """
    return tuple(_REGISTRY)


def is_import_path(task: Any) -> bool:
    """Whether ``task`` reads as an import path ``"package.module:function"``."""
    return isinstance(task, str) and _IMPORT_PATH.fullmatch(task) is not None


@contextmanager
def task_code_allowed(allowed: bool = True) -> Iterator[None]:
    """Within this block an import path as a task is resolved (imported) where it is met."""
    token = _CODE_ALLOWED.set(bool(allowed))
    try:
        yield
    finally:
        _CODE_ALLOWED.reset(token)


def check_task_code(fn: str, task: str, allowed: bool, *, key: str = "task") -> None:
    """Refuse an import path as ``task`` unless ``allowed`` (``--allow-trial-code``)."""
    if is_import_path(task) and not allowed:
        raise fail(fn, f"{key} to be a task name, or an import path 'module:function' only with "
                   "--allow-trial-code (an import path runs that code)", repr(task))


def get_task(fn: str, task: Any, *, resolve: bool | None = None) -> TaskSpec:
    """The :class:`TaskSpec` of ``task``; an import path is resolved when ``resolve`` (default:
    inside :func:`task_code_allowed`), else refused naming the key and the flag."""
    if is_import_path(task):  # the gate holds even where the path was resolved before
        check_task_code(fn, task, _CODE_ALLOWED.get() if resolve is None else resolve)
        return _REGISTRY[task] if task in _REGISTRY else _resolve(fn, task)
    if isinstance(task, str) and task in _REGISTRY:
        return _REGISTRY[task]
    raise fail(fn, f"task name to be one of {', '.join(_REGISTRY)} (or an import path "
               "'module:function')", repr(task))


def _resolve(fn: str, path: str) -> TaskSpec:
    module, _, attr = path.partition(":")
    try:
        loader = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise fail(fn, f"task {path!r} to name a function of an importable module",
                   f"{type(e).__name__}: {e}") from None
    if not callable(loader):
        raise fail(fn, f"task {path!r} to name a function", type(loader).__name__)
    return _register(TaskSpec(path, None, _options_model(path, loader, None), loader))


def _option_type(default: Any) -> Any:
    if default is None:
        return Scalar
    for t in (bool, int, float, str):
        if type(default) is t:
            return t
    return None


def _options_model(name: str, loader: Callable[..., Any],
                   options: Mapping[str, Any] | type[BaseModel] | None) -> type[BaseModel]:
    fn = f"register_task {name!r}"
    if isinstance(options, type) and issubclass(options, BaseModel):
        return options
    if options is None:
        try:
            params = inspect.signature(loader).parameters.values()
        except (TypeError, ValueError):
            params = ()  # type: ignore[assignment]
        bad = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL)
               or (p.kind != p.VAR_KEYWORD and p.default is p.empty)]
        if bad:
            raise fail(fn, "a loader whose parameters are options with defaults (keyword "
                       "parameters with a default value)", f"parameter {bad[0]!r}")
        options = {p.name: p.default for p in params if p.kind != p.VAR_KEYWORD}
    if not isinstance(options, Mapping):
        raise fail(fn, "options as a mapping name -> default or a pydantic model class",
                   type(options).__name__)
    fields: dict[str, Any] = {}
    for k, default in options.items():
        t = _option_type(default)
        if not isinstance(k, str) or not k.isidentifier() or t is None:
            raise fail(fn, "options named by identifiers with a default of type bool, int, "
                       "float, str or None", f"{k!r} = {default!r}")
        fields[k] = (t, default)
    return create_model(f"Options of {name}", __base__=_Options, **fields)


def register_task(name: str, loader: Callable[..., Any], *,
                  options: Mapping[str, Any] | type[BaseModel] | None = None,
                  kind: str | None = None) -> TaskSpec:
    r"""Register your own task: ``load_task(name, **options)`` then returns ``loader(**options)``.

    Args:
        name: the task's name (letters, digits, ``.``, ``_``, ``-``; a built-in name is refused;
            registering a name again replaces the earlier user task).
        loader: called with the task's options as keywords; returns a
            :class:`~spectrumkit.data.TaskData`, tensors ``(xs, ys)`` or a mapping of splits, or a
            ``torch.utils.data.Dataset`` of ``(x, y)`` sequences (the forms:
            :func:`~spectrumkit.data.load_task`).
        options: the options and their defaults, as a mapping name -> default (the type is the
            default's: bool, int, float, str; None takes any scalar) or a pydantic model class;
            None takes the loader's keyword parameters with their defaults.
        kind: ``classification``, ``language`` or ``regression``; None infers it from the data.

    The task's data identity is its name and the fingerprint of what the loader returns
    (NOTE [User task identity] in ``spectrumkit/data/identity.py``). NOTE [Your own task].

    >>> spec = register_task("doc-constant", lambda n=4: None, kind="regression")
    >>> spec.option_names, check_task_options("doc-constant", {"n": 8})
    (('n',), {'n': 8})
    >>> unregister_task("doc-constant")
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail("register_task", "a name of letters, digits, '.', '_' and '-' (a name "
                   "'module:function' is an import path)", repr(name))
    if name in _REGISTRY and _REGISTRY[name].builtin:
        raise fail("register_task", f"a name other than the built-in tasks "
                   f"({', '.join(n for n, s in _REGISTRY.items() if s.builtin)})", repr(name))
    if not callable(loader):
        raise fail(f"register_task {name!r}", "a callable loader", type(loader).__name__)
    if kind is not None and kind not in _KINDS:
        raise fail(f"register_task {name!r}", f"kind to be one of {', '.join(_KINDS)} or None",
                   repr(kind))
    return _register(TaskSpec(name, kind, _options_model(name, loader, options), loader))


def _register(spec: TaskSpec) -> TaskSpec:
    _REGISTRY[spec.name] = spec
    return spec


def unregister_task(name: str) -> None:
    """Remove a user task (built-in tasks stay)."""
    spec = _REGISTRY.get(name)
    if spec is None or spec.builtin:
        raise fail("unregister_task", "the name of a registered user task", repr(name))
    del _REGISTRY[name]


def task_defaults(task: str) -> dict[str, Any]:
    """Every option of ``task`` with its default.

    >>> task_defaults("copy")
    {'T': 10, 'delay': 20, 'n_train': 10000, 'n_val': 1000, 'n_test': 1000, 'seed': 0}
    """
    return spec_defaults(get_task("task_defaults", task))


def spec_defaults(spec: TaskSpec) -> dict[str, Any]:
    """Every option of ``spec`` with its default."""
    return {k: f.get_default(call_default_factory=True) for k, f in
            spec.options.model_fields.items()}


_CONSTRAINTS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
                "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}
_TYPES = {"int_type": "an int", "bool_type": "true or false", "string_type": "a string",
          "float_type": "a number", "int_from_float": "an int"}


def _message(fn: str, task: str, err: ValidationError) -> str:
    e = err.errors(include_url=False)[0]
    name = next((str(p) for p in e.get("loc", ()) if isinstance(p, str)), "value")
    typ, ctx = e.get("type", ""), e.get("ctx") or {}
    if typ in _CONSTRAINTS:
        bound, op = _CONSTRAINTS[typ]
        what = f"{name} {op} {ctx.get(bound)}"
    elif typ == "literal_error":
        what = f"{name} to be one of {ctx.get('expected')}"
    elif typ in _TYPES:
        what = f"{name} to be {_TYPES[typ]}"
    else:
        what = f"{name} to be a valid value ({' '.join(str(e.get('msg', '')).split())})"
    return f"{fn}: expected {what} (an option of task {task!r}), got {e.get('input')!r}"


def validate_options(fn: str, spec: TaskSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """The given ``options`` of ``spec``, checked (unknown names are the caller's message)."""
    try:
        model = spec.options.model_validate(dict(options))
    except ValidationError as e:
        raise SpectrumkitError(_message(fn, spec.name, e)) from None
    return {k: getattr(model, k) for k in options}


def check_task_options(task: str, options: Mapping[str, Any]) -> dict[str, Any]:
    r"""The data options ``options`` of ``task``, checked against its declared options.

    Returns the options given (NOTE [Task options]: checked, defaults not added). Raises
    :class:`~spectrumkit.errors.SpectrumkitError` for an unknown task, an unknown option (naming
    the task's options) or a value of the wrong type or range.

    >>> check_task_options("wikitext", {"max_vocab": 1000})
    {'max_vocab': 1000}
    >>> check_task_options("wikitext", {"scale": "paper"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    spectrumkit.errors.SpectrumkitError: check_task_options: expected an option of task ...
    """
    fn = "check_task_options"
    spec = get_task(fn, task)
    if not isinstance(options, Mapping):
        raise fail(fn, f"the options of task {task!r} as a mapping", type(options).__name__)
    unknown = [k for k in options if k not in spec.option_names]
    if unknown:
        raise fail(fn, f"an option of task {task!r} ({', '.join(spec.option_names) or 'none'})",
                   repr(unknown[0]))
    return validate_options(fn, spec, options)
