r"""The run configuration: one typed object, validated once at each door, passed down unchanged.

A :class:`RunConfig` holds everything that determines one run's numbers: ``seed``, ``trial``
(the trial function of a study), and the parts ``model``, ``dataset``, ``score``, ``pruning``,
``training`` and ``records`` (:mod:`spectrumkit.config.parts`, :mod:`spectrumkit.config.score`).
The Python API, ``spectrumkit train``'s flags and a study's TOML all build one, and the pipeline,
:func:`~spectrumkit.scores.compute_scores` and :func:`~spectrumkit.training.train` take it or
its parts as they are.

NOTE [Flat names]
Every field of every part has one *flat name*, its own name but for the data part's ``options``
(flat name ``data``): the key in a study's TOML, the flag of ``spectrumkit train``
(``--hidden-size``, ``--data-option`` for ``data``) and the key of the flat dump. A configuration
is built from flat keys (``RunConfig(hidden_size=8, steps=5)``), from parts
(``RunConfig(model=ModelConfig(hidden_size=8), training=TrainingConfig(steps=5))``) or from both,
and reads back either way (``c.hidden_size`` is ``c.model.hidden_size``). Its dump
(``model_dump``) is flat, with the score part nested under ``score``: the same form a study
stored before the parts existed, so every trial keeps its key (:func:`trial_key`).

NOTE [Canonical configs]
The score settings are ONE part, ``score``: the options object of the run's method, a tagged
union (discriminated by ``method``) over the score registry and the two training methods
``dense`` and ``l2``. Input may stay flat: ``method``, ``normalize``, ``horizon``, ``estimator``,
``through_time``, ``recipe``, ``score_options`` (a dict) and ``l2_stage_steps`` are folded into
``score`` (:data:`FLAT_SCORE_KEYS`; the nested ``score={...}`` form of a dump is accepted too).
Folding drops the options the method does not take (``horizon`` for ``snip``, ``normalize`` for
``random``...), so a grid ``method × normalize`` holds one ``random`` trial, not two identical
ones; an option that NO method takes is an error. An option given with its default value (for
jacobian: the value its recipe gives) counts as not given (NOTE [Given options] in
``scores/options.py``), so giving a default and leaving it out are one trial; then every option is
written out with its value, so a key never depends on a default that might change later.
Synflow's target density is the run's ``1 - sparsity`` (not an option here; a dump holds it as
None), and a precomputed ``gamma`` is not a run option. ``block_swap`` is written out (True under
``pipeline="authors"``); ``dense`` and ``l2`` get ``pipeline="plain"``, ``block_swap=False``;
``dense`` has sparsity 0. The record options are kept only where a record uses them, and the
language-model options only for a word-level task.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    NonNegativeInt,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from ..data.tasks import check_task_options, is_import_path
from ..errors import SpectrumkitError
from ..scores.options import OPTION_MODELS, ScoreOptions, options_for
from ._fold import (
    FLAT_OPTIONS,
    FLAT_SCORE_KEYS,
    canonical,
    canonical_score,
    error,
    from_flat,
    relocated,
    same_value,
    score_defaults,
)
from .parts import (
    INSIDE_RUN,
    PART_MODELS,
    DataConfig,
    ModelConfig,
    PruningConfig,
    RecordsConfig,
    TrainingConfig,
)
from .score import ScoreUnion, method_models

__all__ = ["BUILTIN_TRIALS", "DATA_IDENTITY_FIELDS", "FLAT_FIELDS", "FLAT_SCORE_KEYS",
           "SCHEMA_VERSION", "RunConfig", "canonical_json", "flat_config", "trial_key"]

SCHEMA_VERSION = 3  # 2: the data identity entered the key; 3: the score settings are one field

#: Built-in trial functions by name; any other ``trial`` value must be an import path
#: ``"package.module:function"`` (how user code, and the infrastructure tests, plug in).
BUILTIN_TRIALS = {"prune-train": "spectrumkit.study.trial:run_trial"}

_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")

#: Flat name → (part, field) for every field of every part (NOTE [Flat names]).
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    model.FLAT_NAMES.get(f, f): (part, f)
    for part, model in PART_MODELS.items() for f in model.model_fields}
_FLAT_OF = {pf: flat for flat, pf in FLAT_FIELDS.items()}
#: where a part's own check (across its fields) is reported
_PART_LOCS: dict[str, tuple[str, ...]] = {p: () for p in PART_MODELS}
_PART_LOCS["dataset"] = ("data",)


def _flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parts given as objects or dicts → their flat keys (NOTE [Flat names])."""
    out = {k: v for k, v in values.items() if k not in PART_MODELS}
    for part in PART_MODELS:
        if part not in values:
            continue
        given = values[part]
        if isinstance(given, BaseModel):
            given = {k: getattr(given, k) for k in given.model_fields_set}
        if not isinstance(given, Mapping):
            raise error((part,), f"expected a {PART_MODELS[part].__name__} or a table",
                        type(given).__name__, given)
        for k, v in given.items():
            flat = _FLAT_OF.get((part, k), f"{part}.{k}")
            if flat in out:
                raise error((flat,), f"expected {flat} given once", "it twice", v)
            out[flat] = v
    return out


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat keys → the parts' dicts; an unknown key stays at the top (and is refused there)."""
    out: dict[str, Any] = {p: {} for p in PART_MODELS}
    for k, v in flat.items():
        if k in FLAT_FIELDS:
            part, f = FLAT_FIELDS[k]
            out[part][f] = v
        else:
            out[k] = v
    return out


class RunConfig(BaseModel):
    r"""Everything that determines one run's result (NOTE [Flat names], [Canonical configs]).

    Parts: ``model`` (:class:`~spectrumkit.config.ModelConfig`: cell, N, E, init, sampled
    softmax), ``dataset`` (:class:`~spectrumkit.config.DataConfig`: the task and its options,
    flat ``task`` and ``data``), ``score`` (the method's options object: a score method's, or
    ``dense`` = no mask, ``l2`` = the paper's iterative magnitude prune-retrain baseline pruning
    every ``l2_stage_steps`` steps), ``pruning`` (:class:`~spectrumkit.config.PruningConfig`:
    sparsity, K = round((1 - sparsity)·P) kept, scope, the scoring batch, the authors'
    pipeline), ``training`` (:class:`~spectrumkit.config.TrainingConfig`) and ``records``
    (:class:`~spectrumkit.config.RecordsConfig`: ``anatomy``, ``connection_map``, ``sv_hist``,
    ``spectrum_steps``, ``lyapunov``, ``mask``). Every field reads back flat: ``c.hidden_size``,
    ``c.method``, ``c.horizon`` (None where the method has no such option).

    >>> c = RunConfig(hidden_size=8, steps=5, method="snip")
    >>> c.model.hidden_size, c.hidden_size, c.training.steps, c.method, c.horizon
    (8, 8, 5, 'snip', None)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    trial: str = Field("prune-train", description="the trial function of a study")
    seed: NonNegativeInt = Field(0, description="seeds the initialization, the data order and "
                                 "the scores")
    model: ModelConfig = Field(default_factory=lambda: ModelConfig.model_validate({}))
    dataset: DataConfig = Field(default_factory=lambda: DataConfig.model_validate({}))
    score: ScoreUnion = Field(default_factory=lambda: OPTION_MODELS["jacobian"].model_validate(
        {"method": "jacobian"}), description="the method and its options")
    pruning: PruningConfig = Field(default_factory=lambda: PruningConfig.model_validate({}))
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig.model_validate({}))
    records: RecordsConfig = Field(default_factory=lambda: RecordsConfig.model_validate({}))

    @classmethod
    def input_keys(cls) -> tuple[str, ...]:
        """The flat keys a configuration accepts: trial, seed, every part's fields, score and
        :data:`FLAT_SCORE_KEYS`."""
        return ("trial", "seed", *FLAT_FIELDS, "score", *FLAT_SCORE_KEYS)

    @field_validator("trial")
    @classmethod
    def _trial_known(cls, v: str) -> str:
        if v not in BUILTIN_TRIALS and not _IMPORT_PATH.fullmatch(v):
            raise ValueError(f"expected one of {', '.join(BUILTIN_TRIALS)} or an import path "
                             f"'package.module:function', got {v!r}")
        return v

    @model_validator(mode="wrap")
    @classmethod
    def _fold(cls, values: Any, handler: ModelWrapValidatorHandler[RunConfig]) -> RunConfig:
        """NOTE [Canonical configs]: flat keys and parts become the parts; errors keep the
        names the caller wrote."""
        if not isinstance(values, dict):
            return handler(values)
        given = _flatten(values)
        v = {k: x for k, x in given.items() if k not in FLAT_SCORE_KEYS}
        flat = {k: given[k] for k in FLAT_SCORE_KEYS if k in given}
        if flat and "score" in given:
            raise error((), "expected either score= or the flat keys "
                        f"{', '.join(FLAT_SCORE_KEYS)}", ", ".join(flat), list(flat))
        v["score"] = canonical_score(given["score"] if "score" in given else from_flat(flat))
        token = INSIDE_RUN.set(True)
        try:
            return handler(_nest(canonical(v)))
        except ValidationError as e:
            raise relocated(e, _FLAT_OF, _PART_LOCS) from None
        finally:
            INSIDE_RUN.reset(token)

    @model_validator(mode="after")
    def _across_parts(self) -> RunConfig:
        # a user's trial function takes its own data options; an import-path task checks its own
        if self.trial in BUILTIN_TRIALS and not is_import_path(self.dataset.task):
            try:
                check_task_options(self.dataset.task, self.dataset.options)
            except SpectrumkitError as e:
                raise ValueError("expected data to be " + str(e).split(": expected ", 1)[-1]
                                 ) from None
        if self.method == "l2" and (self.l2_stage_steps is None or not self.training.length):
            raise ValueError("expected l2_stage_steps and some training for method 'l2', got "
                             f"l2_stage_steps={self.l2_stage_steps}, epochs={self.epochs}, "
                             f"steps={self.steps}")
        p = self.pruning
        if (p.pipeline == "authors" or p.block_swap) and self.model.cell not in ("gru",
                                                                                 "gru_cho"):
            raise ValueError("expected cell 'gru_cho' or 'gru' with pipeline='authors' or "
                             f"block_swap=True (the z/candidate swap), got cell "
                             f"{self.model.cell!r}")
        return self

    @model_serializer(mode="wrap")
    def _flat_dump(self, handler: Any) -> Any:
        """The flat dump (NOTE [Flat names]); ``spectrum_method`` and ``dtype`` (added later) are
        left out at their defaults (None, float32), so every config written before them keeps its
        dump, hence its key."""
        out = handler(self)
        if not isinstance(out, dict):
            return out
        flat = {k: v for k, v in out.items() if k not in PART_MODELS}
        for part in PART_MODELS:
            for f, value in (out.get(part) or {}).items():
                flat[_FLAT_OF[(part, f)]] = value
        if flat.get("spectrum_method", 0) is None:
            del flat["spectrum_method"]
        if flat.get("dtype") == "float32":
            del flat["dtype"]
        return flat

    def __getattr__(self, name: str) -> Any:
        """A part's field by its flat name (NOTE [Flat names])."""
        where = FLAT_FIELDS.get(name)
        if where is not None:
            return getattr(getattr(self, where[0]), where[1])
        return super().__getattr__(name)  # type: ignore[misc]

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> RunConfig:
        """A copy; ``update`` takes flat keys and parts, and the copy is validated again."""
        if not update:
            return super().model_copy(deep=deep)
        base = self.model_dump()
        if any(k in FLAT_SCORE_KEYS for k in update):
            base = flat_config(base)
        return type(self).model_validate({**base, **update})

    # the flat view of ``score``
    @property
    def method(self) -> str:
        """The method: a score method, ``dense`` or ``l2``."""
        return str(self.score.method)

    @property
    def normalize(self) -> Any:
        """The score's ``normalize`` (jacobian, snip, foresight), or None."""
        return getattr(self.score, "normalize", None)

    @property
    def horizon(self) -> Any:
        """The jacobian score's U (an int, or ``'all'`` = T), or None."""
        return getattr(self.score, "horizon", None)

    @property
    def estimator(self) -> Any:
        """The jacobian score's χ estimator, or None."""
        return getattr(self.score, "estimator", None)

    @property
    def through_time(self) -> Any:
        """The jacobian score's ``through_time``, or None."""
        return getattr(self.score, "through_time", None)

    @property
    def recipe(self) -> Any:
        """The jacobian score's recipe, or None."""
        return getattr(self.score, "recipe", None)

    @property
    def l2_stage_steps(self) -> Any:
        """The ``l2`` method's pruning period in steps, or None."""
        return getattr(self.score, "stage_steps", None)

    @property
    def score_options(self) -> dict[str, Any]:
        """The score's options given beyond the flat ones (with values other than the defaults)."""
        skip = {*FLAT_OPTIONS, "method", "stage_steps"}
        return {k: getattr(self.score, k) for k in sorted(self.score.model_fields_set)
                if k not in skip}

    @property
    def density(self) -> float:
        """1 - sparsity: the kept fraction."""
        return 1.0 - self.pruning.sparsity

    @property
    def target(self) -> str:
        """The import path ``module:function`` of the trial function."""
        return BUILTIN_TRIALS.get(self.trial, self.trial)

    def scoring(self) -> ScoreOptions | None:
        """The score part as :func:`~spectrumkit.scores.compute_scores` takes it (None for
        ``dense`` and ``l2``): synflow's ``density`` is the run's ``1 - sparsity``."""
        if not isinstance(self.score, ScoreOptions):
            return None
        if self.method != "synflow":
            return self.score
        given = {k: getattr(self.score, k) for k in self.score.model_fields_set
                 if k != "method"}
        return options_for("synflow", "RunConfig", **given, density=self.density)


def flat_config(d: Mapping[str, Any]) -> dict[str, Any]:
    """The flat view of a dumped config (``model_dump(mode="json")``): ``score`` becomes
    ``method``, ``normalize``, ``horizon``, ``estimator``, ``through_time``, ``recipe`` (None where
    the method has no such option), ``l2_stage_steps`` and ``score_options`` (the options whose
    value is not the method's default), as a config is given (NOTE [Canonical configs]).

    >>> c = RunConfig(epochs=1, method="snip", score_options={"balance": "gate"})
    >>> f = flat_config(c.model_dump(mode="json"))
    >>> f["method"], f["normalize"], f["horizon"], f["score_options"]
    ('snip', 'none', None, {'balance': 'gate'})
    """
    from ..errors import SpectrumkitError

    out = {k: v for k, v in d.items() if k != "score"}
    score = dict(d.get("score") or {})
    method = score.get("method")
    out["method"] = method
    for k in FLAT_OPTIONS:
        out[k] = score.get(k)
    out["l2_stage_steps"] = score.get("stage_steps")
    try:
        dflt = score_defaults(method, score.get("recipe")) if method in method_models() else {}
    except SpectrumkitError:
        dflt = {}
    out["score_options"] = {k: v for k, v in score.items()
                            if k not in (*FLAT_OPTIONS, "method", "stage_steps")
                            and not (k in dflt and same_value(v, dflt[k]))}
    return out


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, ASCII, no NaN: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


#: The fields of a data identity that enter the key (NOTE [What the key covers]).
DATA_IDENTITY_FIELDS = ("source", "fingerprint")


def trial_key(config: RunConfig, data: Mapping[str, Any] | None = None) -> str:
    r"""The run's key: SHA-256 hex of the canonical JSON of the flat dump, the data identity and
    the schema version,

        key = SHA-256( canonical JSON of {"schema_version": SCHEMA_VERSION, "config": dump,
                                          "data": data identity} )

    ``data`` is the identity of the data the run reads (:func:`spectrumkit.data.data_identity`;
    only its ``source`` and ``fingerprint`` count); None means the bundled data of the task.

    >>> a = RunConfig(seed=0, epochs=1, method="random", normalize="gamma")
    >>> b = RunConfig(seed=0, epochs=1, method="random", horizon=8)
    >>> trial_key(a) == trial_key(b)         # both options are ignored by 'random'
    True
    >>> trial_key(a) == trial_key(RunConfig(seed=1, epochs=1, method="random"))
    False
    """
    if data is None:
        from ..data import data_identity
        data = data_identity(config.task, None)
    ident = {k: data.get(k) for k in DATA_IDENTITY_FIELDS}
    payload = {"schema_version": SCHEMA_VERSION, "config": config.model_dump(mode="json"),
               "data": ident}
    return hashlib.sha256(canonical_json(payload).encode("ascii")).hexdigest()
