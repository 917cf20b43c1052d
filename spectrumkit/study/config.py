r"""Trial configs and their keys.

A *trial* is one pruned-and-trained network: data → model → scores → mask → training → metrics.
Its :class:`TrialConfig` is a frozen pydantic model that refuses unknown fields; its *key* is

    key = SHA-256( canonical JSON of {"schema_version": SCHEMA_VERSION, "config": config,
                                      "data": data identity} )

where canonical JSON is ``json.dumps(..., sort_keys=True, separators=(",", ":"))`` of
``config.model_dump(mode="json")``. The key names the result file ``trials/<key>.json``.

NOTE [What the key covers]
Only what changes a trial's numbers is in the key: the config (data options, model, scores, mask,
optimizer, schedule, seed and what to record) and the identity of the data files the trial reads
(NOTE [Data identity] in :mod:`spectrumkit.data`: bundled, or a root's file fingerprint; schema 2).
Run options are not: the output folder, the executor, the number of workers, CPUs/GPUs per trial,
the device, and the data root's *path* (the same files elsewhere are the same data). So a study
started on a laptop can be resumed on a GPU or a Ray cluster and the finished trials are kept,
while a ``--data-root`` run never reuses a bundled-data result. The device and the data (identity,
root path, the loader's description) are recorded in every result (``env.device``, ``data``).
Bumping :data:`SCHEMA_VERSION` invalidates every key at once.

NOTE [Canonical configs]
The score settings are ONE field, ``score``: the options object of the trial's method, a tagged
union (discriminated by ``method``) over the score models of
:data:`spectrumkit.scores.options.OPTION_MODELS` and the two training methods ``dense``
(:class:`DenseOptions`) and ``l2`` (:class:`L2Options`), built from the registry when this module
is imported, so a new option of a score method reaches the schema and the key with no edit here.
Input stays flat: ``method``, ``normalize``, ``horizon``, ``estimator``, ``through_time``,
``recipe``, ``score_options`` (a dict) and ``l2_stage_steps`` are folded into ``score``
(:data:`FLAT_SCORE_KEYS`; the nested ``score={...}`` form of a dumped config is accepted too).
Folding drops the options the method does not take (``horizon`` for ``snip``, ``normalize`` for
``random``, a jacobian ``recipe`` or ``discount`` for ``random``...), so a grid
``method × normalize`` holds one ``random`` trial, not two identical ones; an option that NO
method takes is an error. An option given with its default value (for jacobian: the value its
recipe gives) counts as not given (NOTE [Given options] in ``scores/options.py``), so giving a
default and leaving it out are one trial; then every option is written out with its value (the
jacobian defaults are those of its recipe, written out with the recipe's name), so a key never
depends on a default that might change later. A recipe's values are frozen under its name
(NOTE [Recipes]). Synflow's target density is the trial's ``1 - sparsity`` (not an option here),
and a precomputed ``gamma`` is not a trial option.
``block_swap`` is written out (True under ``pipeline="authors"``); ``dense`` and ``l2`` get
``pipeline="plain"``, ``block_swap=False``. Schema 3: the score settings moved into ``score``,
with every option written out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .. import cells as _cells
from ..choices import RECORDS, WORD_TASKS, Optimizer, Pipeline, Record, Scope, SpectrumMethod
from ..data.tasks import is_import_path, task_names
from ..errors import SpectrumkitError
from ..scores.options import OPTION_MODELS, ScoreOptions, option_names

__all__ = ["SCHEMA_VERSION", "TrialConfig", "trial_key", "canonical_json", "BUILTIN_TRIALS",
           "pydantic_message", "DATA_IDENTITY_FIELDS", "TRIAL_METRICS", "DenseOptions",
           "L2Options", "FLAT_SCORE_KEYS", "flat_config"]

SCHEMA_VERSION = 3  # 2: the data identity entered the key; 3: the score settings are one field

#: Built-in trial functions by name; any other ``trial`` value must be an import path
#: ``"package.module:function"`` (how user code, and the infrastructure tests, plug in).
BUILTIN_TRIALS = {"prune-train": "spectrumkit.study.trial:run_trial"}

_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
Scalar = Union[bool, int, float, str]

_SPECTRUM_RECORDS = ("sv_hist", "spectrum_steps", "lyapunov")


class DenseOptions(BaseModel):
    """The ``dense`` training method: no mask, no options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["dense"] = "dense"


class L2Options(BaseModel):
    """The paper's iterative magnitude prune-retrain baseline ``l2``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["l2"] = "l2"
    stage_steps: PositiveInt | None = Field(None, description="prune every stage_steps training "
                                            "steps (required)")


#: The flat input keys folded into ``score`` (NOTE [Canonical configs]); ``_FLAT_OPTIONS`` are
#: options of the score methods under their own names.
_FLAT_OPTIONS = ("normalize", "horizon", "estimator", "through_time", "recipe")
FLAT_SCORE_KEYS = ("method", *_FLAT_OPTIONS, "score_options", "l2_stage_steps")
#: options of compute_scores that a trial does not take (NOTE [Canonical configs])
_NOT_TRIAL_OPTIONS = ("density", "gamma")
_TRAIN_MODELS: dict[str, type[BaseModel]] = {"dense": DenseOptions, "l2": L2Options}


def _method_models() -> dict[str, type[BaseModel]]:
    """Every method's options model: the score registry, then dense and l2."""
    return {**OPTION_MODELS, **_TRAIN_MODELS}


def _score_union() -> Any:
    """The tagged union over :func:`_method_models`, discriminated by ``method``."""
    return Annotated[Union[tuple(_method_models().values())],  # noqa: UP007 (a runtime tuple)
                     Field(discriminator="method")]


if TYPE_CHECKING:
    ScoreUnion = Union[ScoreOptions, DenseOptions, L2Options]
else:
    ScoreUnion = _score_union()


def _options_of(model: type[BaseModel]) -> tuple[str, ...]:
    if issubclass(model, ScoreOptions):
        return option_names(model)
    return tuple(k for k in model.model_fields if k != "method")


def _defaults(method: str, recipe: Any = None) -> dict[str, Any]:
    """Every option of ``method`` with its default (jacobian: ``recipe``'s values)."""
    model = _method_models()[method]
    given = {"recipe": recipe} if recipe is not None else {}
    obj = model.model_validate({"method": method, **given})
    return {k: getattr(obj, k) for k in _options_of(model)}


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (``0`` is not ``False``; ``1`` is ``1.0``)."""
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, num)
                                                            and isinstance(b, num)):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _error(loc: tuple[str, ...], expected: str, got: str, value: Any = None) -> ValidationError:
    """A one-error ValidationError ``expected X, got Y`` at ``loc`` (the input ``value``)."""
    return ValidationError.from_exception_data("TrialConfig", [InitErrorDetails(
        type=PydanticCustomError("value_error", "Value error, {m}",
                                 {"m": f"{expected}, got {got}"}), loc=loc, input=value)])


def _from_flat(flat: dict[str, Any]) -> dict[str, Any]:
    """The ``score`` dict of the flat keys (NOTE [Canonical configs])."""
    method = flat.get("method", "jacobian")
    models = _method_models()
    if not isinstance(method, str) or method not in models:
        raise ValidationError.from_exception_data("TrialConfig", [InitErrorDetails(
            type="literal_error", loc=("method",), input=method,
            ctx={"expected": ", ".join(map(repr, models))})])
    so = flat.get("score_options") or {}
    if not isinstance(so, Mapping):
        raise _error(("score_options",), "expected a table of score options",
                     type(so).__name__, so)
    given = {k: flat[k] for k in _FLAT_OPTIONS if flat.get(k) is not None}
    given.update(so)
    if flat.get("l2_stage_steps") is not None:
        given["stage_steps"] = flat["l2_stage_steps"]
    known = {k for m in models.values() for k in _options_of(m)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise _error(("score_options",), "expected score options among "
                     f"{', '.join(sorted(known - set(_NOT_TRIAL_OPTIONS)))}",
                     ", ".join(unknown), unknown)
    takes = _options_of(models[method])
    return {"method": method, **{k: v for k, v in given.items() if k in takes}}


def _canonical_score(score: Any) -> Any:
    """Drop the options given with their default value (NOTE [Canonical configs])."""
    if isinstance(score, BaseModel):
        score = {"method": getattr(score, "method", None),
                 **{k: getattr(score, k) for k in score.model_fields_set}}
    if not isinstance(score, Mapping) or score.get("method") not in _method_models():
        return score  # pydantic names what is wrong
    method = score["method"]
    bad = sorted(set(_NOT_TRIAL_OPTIONS) & set(score))
    if bad:
        raise _error(("score_options",), "no density or gamma among a trial's score options "
                     "(synflow's density is 1 - sparsity)", ", ".join(bad), bad)
    recipe = score.get("recipe")
    if recipe is not None and (not isinstance(recipe, str) or recipe not in _recipes()):
        raise _error(("recipe",), f"expected one of {', '.join(_recipes())}", repr(recipe),
                     recipe)
    try:
        dflt = _defaults(method, recipe)
    except SpectrumkitError:
        return score
    return {k: v for k, v in score.items()
            if k in ("method", "recipe") or k not in dflt or not _same(v, dflt[k])}


def _recipes() -> tuple[str, ...]:
    from ..scores.recipes import RECIPES
    return tuple(RECIPES)


_FLAT_LOC = {**{k: k for k in _FLAT_OPTIONS}, "stage_steps": "l2_stage_steps"}


def _relocated(err: ValidationError) -> ValidationError:
    """Errors inside ``score`` named by the flat key the caller wrote (NOTE [Canonical configs]):
    ``("score", "jacobian", "horizon")`` becomes ``("horizon",)``, an option given in
    ``score_options`` ``("score_options", name)``, a check across options ``()``."""
    errors = err.errors(include_url=False)
    if not any(tuple(e.get("loc", ()))[:1] == ("score",) for e in errors):
        return err
    out = []
    for e in errors:
        loc = tuple(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", ""))
        kind = e["type"]
        if loc[:1] == ("score",):
            field = loc[2] if len(loc) >= 3 else None
            inner = re.match(r"Value error, (?:\w+: )?expected (.*)$", msg, re.S)
            if inner:  # our check's 'fn: expected NAME to be X' reads 'expected X' at NAME
                body = inner.group(1)
                if field:
                    body = body.removeprefix(f"{field} to be ").removeprefix(f"{field} ")
                msg, kind = f"Value error, expected {body}", "value_error"
            loc = (() if field is None else (_FLAT_LOC[field],) if field in _FLAT_LOC
                   else ("score_options", field))
        out.append(InitErrorDetails(type=PydanticCustomError(kind, "{m}", {"m": msg}), loc=loc,
                                    input=e.get("input")))
    return ValidationError.from_exception_data("TrialConfig", out)


def _canonical_training(v: dict[str, Any], method: Any) -> None:
    """dense and l2 train without a score: one scope, no repeats, the plain pipeline."""
    if method in ("dense", "l2"):
        v["scope"], v["score_repeats"] = "global", 1
        v["pipeline"], v["block_swap"] = "plain", False  # the authors' pipeline needs a score
    if method == "dense":
        v["sparsity"] = 0.0
    if v.get("block_swap") is None:
        v["block_swap"] = v.get("pipeline", "plain") == "authors"


def _canonical_records(v: dict[str, Any]) -> None:
    """Records in their canonical order; their options only where a record uses them."""
    rec = v.get("record") or ()
    if isinstance(rec, (list, tuple)):
        rec = tuple(r for r in RECORDS if r in rec) + tuple(r for r in rec if r not in RECORDS)
        v["record"] = rec
    spectral = any(r in rec for r in _SPECTRUM_RECORDS)

    def given(k: str, d: Any) -> Any:
        return d if v.get(k) is None else v[k]
    v["spectrum_batch"] = given("spectrum_batch", 64) if spectral else None
    sm = v.get("spectrum_method")
    v["spectrum_method"] = "lanczos" if sm == "lanczos" and spectral else (
        None if sm in (None, "dense") or not spectral else sm)
    v["hist_bins"] = given("hist_bins", 50) if "sv_hist" in rec else None
    v["lyapunov_k"] = v.get("lyapunov_k") if "lyapunov" in rec else None


def _canonical(values: dict[str, Any]) -> dict[str, Any]:
    """NOTE [Canonical configs] for the fields around ``score``."""
    v = dict(values)
    score = v.get("score")
    method = score.get("method") if isinstance(score, Mapping) else getattr(score, "method", None)
    _canonical_training(v, method)
    _canonical_records(v)
    if v.get("task", "seq-mnist") not in WORD_TASKS:
        v["embed_size"] = None
        v["softmax_samples"] = None
    return v


def _score_option(name: str, doc: str) -> Any:
    """A read-only attribute of :class:`TrialConfig`: the score's option ``name``, or None."""
    return property(lambda self: getattr(self.score, name, None), doc=doc)


class TrialConfig(BaseModel):
    r"""Everything that determines one trial's result (NOTE [What the key covers]).

    Data: ``task`` and ``data`` (options passed to :func:`spectrumkit.data.load_task`).
    Model: ``cell``, ``hidden_size`` (N), ``embed_size`` (language models), ``init``,
    ``softmax_samples`` (word-level language models: a sampled softmax with S candidates in
    training; None = full).
    Pruning: ``score``, the options object of the method (NOTE [Canonical configs]; given flat as
    ``method`` (``dense`` = no mask; ``l2`` = the paper's iterative magnitude prune-retrain
    baseline, pruning every ``l2_stage_steps`` steps), ``normalize``, ``horizon`` (U, or
    ``"all"``), ``estimator``, ``through_time``, ``recipe`` (jacobian: a named recipe,
    NOTE [Recipes]; its values fill the options not given) and ``score_options`` (any further
    option of :func:`spectrumkit.scores.compute_scores`); all readable back as properties),
    ``sparsity`` (K = round((1 - sparsity)·P) kept), ``scope``, ``include_bias``, ``score_batch``
    (the minibatch the scores see), ``score_repeats`` (timing: the best of k runs).
    The authors' pipeline (docs/authors-code.md §6): ``pipeline="authors"`` trains the pruned GRU as
    their code does: zero trainable biases, no +0.1 (``bias_hh`` held at 0, one bias per
    pre-activation) and, with ``block_swap`` (its default there), the z/candidate blocks and
    masks swapped (:func:`spectrumkit.interop.authors_trained_gru`). ``block_swap=True`` alone
    swaps the blocks and keeps the biases.
    Training: exactly one of ``epochs`` / ``steps`` (a budget in optimizer steps, as the paper
    counts; 0 = no training, evaluate at init),
    ``batch_size``, ``lr``, ``optimizer``, ``clip``, ``eval_every``.
    Records: ``record`` ⊆ anatomy, connection_map, sv_hist, spectrum_steps, lyapunov, with
    ``spectrum_batch`` sequences, ``hist_bins`` bins and ``lyapunov_k`` exponents;
    ``spectrum_method="lanczos"`` computes sv_hist and spectrum_steps without forming J
    (:mod:`spectrumkit.matfree`; None, the default, is the dense SVD and stays out of the key).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    trial: str = "prune-train"
    seed: NonNegativeInt = 0
    # data
    task: str = "seq-mnist"  # a registered task or "module:function" (NOTE [Your own task])
    data: dict[str, Scalar] = Field(default_factory=dict)
    # model
    cell: str = "gru"
    hidden_size: PositiveInt = 400
    embed_size: PositiveInt | None = None
    softmax_samples: PositiveInt | None = None  # None = full softmax (NOTE [Sampled softmax])
    init: str = "glorot"
    # pruning
    score: ScoreUnion = Field(default_factory=lambda: OPTION_MODELS["jacobian"].model_validate(
        {"method": "jacobian"}), description="the method and its options")
    sparsity: float = Field(0.95, ge=0.0, lt=1.0)
    scope: Scope = "global"
    include_bias: bool = False
    score_batch: PositiveInt = 64
    score_repeats: PositiveInt = 1
    # the authors' training pipeline (NOTE [The authors' pipeline] in trial.py)
    pipeline: Pipeline = "plain"
    block_swap: bool | None = None
    # training
    epochs: NonNegativeInt | None = None
    steps: NonNegativeInt | None = None
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    optimizer: Optimizer = "adam"
    clip: PositiveFloat | None = None
    eval_every: PositiveInt | None = None
    # what to record
    record: tuple[Record, ...] = ()
    spectrum_batch: PositiveInt | None = None
    spectrum_method: SpectrumMethod | None = None
    hist_bins: PositiveInt | None = None
    lyapunov_k: PositiveInt | None = None

    @classmethod
    def input_keys(cls) -> tuple[str, ...]:
        """The keys a config accepts as input: its fields and :data:`FLAT_SCORE_KEYS`."""
        return (*cls.model_fields, *FLAT_SCORE_KEYS)

    @field_validator("trial")
    @classmethod
    def _trial_known(cls, v: str) -> str:
        if v not in BUILTIN_TRIALS and not _IMPORT_PATH.fullmatch(v):
            raise ValueError(f"expected one of {', '.join(BUILTIN_TRIALS)} or an import path "
                             f"'package.module:function', got {v!r}")
        return v

    @field_validator("task")
    @classmethod
    def _task_known(cls, v: str) -> str:
        if v not in task_names() and not is_import_path(v):
            raise ValueError(f"expected one of {', '.join(task_names())} or an import path "
                             f"'package.module:function', got {v!r}")
        return v

    @field_validator("cell")
    @classmethod
    def _cell_known(cls, v: str) -> str:
        from ..cells import available
        if v not in available():
            raise ValueError(f"expected one of {', '.join(available())}, got {v!r}")
        return v

    @field_validator("init")
    @classmethod
    def _init_parses(cls, v: str) -> str:
        from ..init import _parse_spec
        try:
            _parse_spec(v, None)
        except SpectrumkitError as e:
            raise ValueError(str(e)) from None
        return v

    @model_validator(mode="wrap")
    @classmethod
    def _fold_score(cls, values: Any, handler: ModelWrapValidatorHandler[TrialConfig]
                    ) -> TrialConfig:
        """NOTE [Canonical configs]: the flat keys become ``score``; errors keep their names."""
        if not isinstance(values, dict):
            return handler(values)
        v = {k: x for k, x in values.items() if k not in FLAT_SCORE_KEYS}
        flat = {k: values[k] for k in FLAT_SCORE_KEYS if k in values}
        if flat and "score" in values:
            raise _error((), "expected either score= or the flat keys "
                         f"{', '.join(FLAT_SCORE_KEYS)}", ", ".join(flat), list(flat))
        v["score"] = _canonical_score(values["score"] if "score" in values else _from_flat(flat))
        try:
            return handler(_canonical(v))
        except ValidationError as e:
            raise _relocated(e) from None

    @model_validator(mode="after")
    def _schedule(self) -> TrialConfig:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("expected exactly one of epochs / steps, got "
                             + ("both" if self.epochs is not None else "neither"))
        if self.method == "l2" and (self.l2_stage_steps is None
                                    or not (self.epochs or self.steps)):
            raise ValueError("expected l2_stage_steps and some training for method 'l2', got "
                             f"l2_stage_steps={self.l2_stage_steps}, epochs={self.epochs}, "
                             f"steps={self.steps}")
        if (self.pipeline == "authors" or self.block_swap) and self.cell not in ("gru", "gru_cho"):
            raise ValueError("expected cell 'gru_cho' or 'gru' with pipeline='authors' or "
                             f"block_swap=True (the z/candidate swap), got cell {self.cell!r}")
        if len(set(self.record)) != len(self.record):
            raise ValueError(f"expected record entries without repeats, got {list(self.record)}")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_spectrum_method(self, handler: Any) -> Any:
        """``spectrum_method`` (added later) is left out while None (dense, the old behaviour),
        so every config written before it keeps its dump, hence its key."""
        out = handler(self)
        if isinstance(out, dict) and out.get("spectrum_method", 0) is None:
            del out["spectrum_method"]
        return out

    # the flat view of ``score`` (NOTE [Canonical configs]); None where the method has no such
    # option
    @property
    def method(self) -> str:
        """The pruning method: a score method, ``dense`` or ``l2``."""
        return str(self.score.method)

    # the flat view of the score's options (None where the method has no such option)
    normalize = _score_option("normalize", "The score's ``normalize`` (jacobian, snip, foresight).")
    horizon = _score_option("horizon", "The jacobian score's U (an int, or ``'all'`` = T).")
    estimator = _score_option("estimator", "The jacobian score's χ estimator.")
    through_time = _score_option("through_time", "The jacobian score's ``through_time``.")
    recipe = _score_option("recipe", "The jacobian score's recipe.")
    l2_stage_steps = _score_option("stage_steps", "The ``l2`` method's pruning period in steps.")

    @property
    def score_options(self) -> dict[str, Any]:
        """The score's options given beyond the flat ones (with values other than the defaults)."""
        skip = {*_FLAT_OPTIONS, "method", "stage_steps"}
        return {k: getattr(self.score, k) for k in sorted(self.score.model_fields_set)
                if k not in skip}

    def score_kwargs(self, T: int) -> dict[str, Any]:
        """The keyword options of :func:`~spectrumkit.scores.compute_scores` for a scoring batch
        of T steps: jacobian's ``horizon="all"`` is T and a larger horizon is cut to T; synflow's
        density is the trial's; the options given (``score_options``) win."""
        o: dict[str, Any] = {}
        if self.method == "jacobian":
            h = self.horizon
            o.update(recipe=self.recipe, horizon=T if h == "all" else min(int(h or T), T),
                     estimator=self.estimator, through_time=self.through_time)
        if self.normalize is not None:
            o["normalize"] = self.normalize
        if self.method == "synflow":
            o["density"] = self.density
        o.update(self.score_options)
        return o

    @property
    def density(self) -> float:
        """1 - sparsity: the kept fraction."""
        return 1.0 - self.sparsity

    @property
    def target(self) -> str:
        """The import path ``module:function`` of the trial function."""
        return BUILTIN_TRIALS.get(self.trial, self.trial)


def flat_config(d: Mapping[str, Any]) -> dict[str, Any]:
    """The flat view of a dumped config (``model_dump(mode="json")``): ``score`` becomes
    ``method``, ``normalize``, ``horizon``, ``estimator``, ``through_time``, ``recipe`` (None where
    the method has no such option), ``l2_stage_steps`` and ``score_options`` (the options whose
    value is not the method's default), as a config is given (NOTE [Canonical configs]).

    >>> c = TrialConfig(epochs=1, method="snip", score_options={"balance": "gate"})
    >>> f = flat_config(c.model_dump(mode="json"))
    >>> f["method"], f["normalize"], f["horizon"], f["score_options"]
    ('snip', 'none', None, {'balance': 'gate'})
    """
    out = {k: v for k, v in d.items() if k != "score"}
    score = dict(d.get("score") or {})
    method = score.get("method")
    out["method"] = method
    for k in _FLAT_OPTIONS:
        out[k] = score.get(k)
    out["l2_stage_steps"] = score.get("stage_steps")
    try:
        dflt = _defaults(method, score.get("recipe")) if method in _method_models() else {}
    except SpectrumkitError:
        dflt = {}
    out["score_options"] = {k: v for k, v in score.items()
                            if k not in (*_FLAT_OPTIONS, "method", "stage_steps")
                            and not (k in dflt and _same(v, dflt[k]))}
    return out


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, ASCII, no NaN: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


#: The fields of a data identity that enter the key (NOTE [What the key covers]).
DATA_IDENTITY_FIELDS = ("source", "fingerprint")

#: The metrics each built-in trial reports: a study's ``[report]`` metric must be one of them.
TRIAL_METRICS = {"prune-train": (
    "density", "kept", "prunable", "score_seconds", "ir_ratio", "gate_imbalance", "dead_units",
    "kept_input", "kept_recurrent",  # the I/R ratio's counts (NOTE [Undefined values])
    "diverged_at_step", "steps", "epochs", "train_seconds", "train_loss", "sv_mean_init",
    "sv_mean_trained", "val_loss", "val_error_pct", "val_ppl", "val_mse", "test_loss",
    "test_error_pct", "test_ppl", "test_mse",
    # each gate's share of the kept entries, for the gates of every built-in cell
    *sorted({f"share_{g}" for c in _cells.available() for g in _cells.get(c).gates}))}


def trial_key(config: TrialConfig, data: dict[str, Any] | None = None) -> str:
    r"""The trial's key: SHA-256 hex of the canonical JSON of the config, the data identity and
    the schema version.

    ``data`` is the identity of the data the trial reads (:func:`spectrumkit.data.data_identity`;
    only its ``source`` and ``fingerprint`` count); None means the bundled data of the config's
    task.

    >>> a = TrialConfig(seed=0, epochs=1, method="random", normalize="gamma")
    >>> b = TrialConfig(seed=0, epochs=1, method="random", horizon=8)
    >>> trial_key(a) == trial_key(b)         # both options are ignored by 'random'
    True
    >>> trial_key(a) == trial_key(TrialConfig(seed=1, epochs=1, method="random"))
    False
    """
    if data is None:
        from ..data import data_identity
        data = data_identity(config.task, None)
    ident = {k: data.get(k) for k in DATA_IDENTITY_FIELDS}
    payload = {"schema_version": SCHEMA_VERSION, "config": config.model_dump(mode="json"),
               "data": ident}
    return hashlib.sha256(canonical_json(payload).encode("ascii")).hexdigest()


def pydantic_message(fn: str, err: ValidationError, where: str = "") -> str:
    """One line ``fn: expected FIELD CONSTRAINT[ where], got VALUE`` from pydantic's first error."""
    e = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in e.get("loc", ()) if not isinstance(p, int)) or "value"
    msg = " ".join(str(e.get("msg", "")).split())
    where = f" {where}" if where else ""
    got = repr(e.get("input"))
    if e.get("type") == "value_error":
        inner = msg.removeprefix("Value error, ")
        # our own validators already speak 'field: expected X, got Y'
        m = re.match(r"(?:\w+: )?expected (.*), got (.*)$", inner)
        if m:
            what = f"{loc} to be {m.group(1)}" if loc != "value" else m.group(1)
            return f"{fn}: expected {what}{where}, got {m.group(2)}"
        return f"{fn}: expected a valid {loc}{where}, got {got} ({inner})"
    if e.get("type") == "extra_forbidden":
        return f"{fn}: expected known keys{where}, got unknown key {loc!r}"
    if e.get("type") == "missing":
        return f"{fn}: expected {loc} to be given{where}, got nothing"
    constraint = msg.removeprefix("Input should be ").removeprefix("input should be ")
    if constraint == msg:
        constraint = msg[:1].lower() + msg[1:]
    return f"{fn}: expected {loc} {constraint}{where}, got {got}"


def memory_terms(c: TrialConfig, *, input_size: int = 1, heads: int = 0, seq_len: int = 1,
                 name: Mapping[str, str] | None = None) -> dict[str, int]:
    r"""The entries one trial needs at least, by the setting that drives each (NOTE [Memory
    terms] in ``spectrumkit/errors.py``): the model with its gradient and optimizer state
    (``hidden_size``), one training batch (``batch_size`` × T × (D + S)), one scoring batch
    (``score_batch``), γ's own batch (``score_options.gamma_steps`` × ``gamma_sequences``) and,
    for dense spectra, one step's Jacobians and their SVD's copy (2 × ``spectrum_batch`` × S²).

    ``input_size`` D, ``heads`` (the readout's parameters) and ``seq_len`` T are the data's where
    known (the defaults 1 and 0 keep a lower bound when they are not, as at a study's load).
    ``name`` maps a field to how the user wrote it (``{"hidden_size": "--hidden"}``).
    A cell that is not built in gives no terms: its own checks apply.
    """
    def n(field: str) -> str:
        return (name or {}).get(field, field)

    try:
        S = _cells.get(c.cell).state_size(c.hidden_size)
        P = _cells.count_params(c.cell, c.embed_size or input_size, c.hidden_size,
                                include_bias=True)
    except SpectrumkitError:
        return {}
    D = c.embed_size or input_size
    copies = 4 if c.optimizer == "adam" else 2
    terms = {f"{n('hidden_size')} {c.hidden_size} (cell {c.cell}): a model, its gradient and "
             "its optimizer state": copies * (P + heads),
             f"{n('batch_size')} {c.batch_size}: a training batch's inputs and states":
                 c.batch_size * seq_len * (D + S),
             f"{n('score_batch')} {c.score_batch}: the scoring batch's inputs and states":
                 c.score_batch * seq_len * (D + S)}
    so = c.score_options or {}
    t, b = so.get("gamma_steps"), so.get("gamma_sequences")
    if isinstance(t, int) or isinstance(b, int):
        t = t if isinstance(t, int) else seq_len
        b = b if isinstance(b, int) else c.score_batch
        terms[f"{n('gamma_steps')} {t} and {n('gamma_sequences')} {b}: γ's batch"] = \
            t * b * (D + S)
    if c.spectrum_batch is not None and c.spectrum_method != "lanczos":
        # the dense spectra hold one step's Jacobians (spectrum_batch, S, S) and the SVD's copy
        terms[f"{n('spectrum_batch')} {c.spectrum_batch}: one step's Jacobians for the spectra"] = \
            2 * c.spectrum_batch * S * S
    return terms
