r"""One typed options object per score method: its defaults, its checks, its randomness.

Every option of :func:`~spectrumkit.scores.compute_scores` is a field of one pydantic model per
method (:data:`OPTION_MODELS`), with its type, its default and a description. Everything else is
derived from these models: the keyword arguments ``compute_scores`` accepts, the views
:data:`OPTIONS` and :data:`METHODS`, the flags of ``spectrumkit prune`` (``cli/_options.py``) and
the ``score`` field of a study trial (:class:`~spectrumkit.study.TrialConfig`). Adding an option
to a method is one edit: a field here.

An unknown option name, a misspelled choice or a value of the wrong type is a
:class:`SpectrumkitError` that lists the accepted ones (NOTE [Score options] in
``spectrumkit/scores/__init__.py``).

NOTE [Given options]
Some rules depend on whether an option was GIVEN rather than left at its default: a jacobian
``recipe`` fills only the options not given (NOTE [Recipes]); ``probes`` may only be given with
``estimator='hutchinson'``; γ options may only be given with ``normalize='gamma'``; a precomputed
``gamma=`` excludes the options that make one; and with ``gamma_inputs='data'`` a default (or a
recipe's) γ length and count are capped at the batch's own while given ones are checked. "Given"
is pydantic's ``model_fields_set``: the fields present in the input. A recipe's values are written
into the object after validation without entering that set, so ``model_fields_set`` always holds
exactly what the caller passed.
"""

from __future__ import annotations

import copy
import importlib
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..choices import (
    SCORE_METHODS,
    Balance,
    Estimator,
    GammaInputs,
    GammaObjective,
    GammaReadout,
    GammaState,
    Normalization,
    RecipeName,
)

# (the duplicates tool pairs this import list with train.py's by shape alone: isort's one name
# per line; no logic repeats)
from ..errors import (
    SpectrumkitError,
    check_choice,
    check_keys,
    check_positive_int,
    check_unit_interval,
    fail,
)
from .recipes import DEFAULT_RECIPE, RECIPES

if TYPE_CHECKING:  # the options need no torch; the implementations do (ScoreMethod.load)
    import torch

__all__ = ["ForesightOptions", "GammaOptions", "JacobianOptions", "METHODS", "MagnitudeOptions",
           "OPTIONS", "OPTION_MODELS", "RandomOptions", "SCORE_REGISTRY", "ScoreMethod",
           "ScoreOptions", "SnipOptions",
           "SynflowOptions", "option_names", "options_for"]

_FN = "compute_scores"


def gamma_needs_generator(inputs: str, state: str) -> bool:
    """Whether γ from these inputs and this state draws random numbers (NOTE [γ normalization]
    in ``scores/gamma.py``): all but the batch's own inputs from a zero state."""
    return inputs != "data" or state != "zero"


def _fn(info: ValidationInfo) -> str:
    """The function named in error messages: ``context={"fn": ...}`` or compute_scores."""
    ctx = info.context
    return str(ctx.get("fn", _FN)) if isinstance(ctx, Mapping) else _FN


def _check_bool(fn: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(fn, f"{name} to be True or False", repr(value))
    return value


def _check_count(fn: str, name: str, value: Any, what: str) -> int | None:
    """None (the batch's own) or an int >= 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise fail(fn, f"{name} to be None ({what} of the batch) or an integer >= 1", repr(value))
    return value


class ScoreOptions(BaseModel):
    """The options every score method takes; the base of every method's options model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    balance: Balance = Field("none", description="rescale the scores per group: "
                             "none, gate or block")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any, info: ValidationInfo) -> Any:
        """Refuse an option the method does not take, listing the ones it takes."""
        if not isinstance(data, Mapping):
            raise fail(_fn(info), f"options of method {cls.method_name()!r} as a mapping",
                       type(data).__name__)
        given = {k: v for k, v in data.items() if k != "method"}
        check_keys(_fn(info), f"options of method {cls.method_name()!r}", given,
                   option_names(cls))
        return data

    @field_validator("balance", "normalize", "gamma_inputs", "gamma_state", "gamma_readout",
                     "gamma_objective", "recipe", "estimator", mode="before", check_fields=False)
    @classmethod
    def _choice(cls, v: Any, info: ValidationInfo) -> Any:
        """A field typed by a set of choices (a Literal of ``choices.py``) takes one of them,
        checked exactly and named in the project's one-line form (the choices come from the
        field's type; the discriminator ``method`` cannot have a before-validator)."""
        name = str(info.field_name)
        return check_choice(_fn(info), name, v, typing.get_args(cls.model_fields[name].annotation))

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> ScoreOptions:
        self._check_together(_fn(info))
        return self

    def _check_together(self, fn: str) -> None:
        """Checks across fields (subclasses extend it); NOTE [Given options]."""

    @classmethod
    def method_name(cls) -> str:
        """The method these options belong to (the ``method`` field's one value)."""
        return str(cls.model_fields["method"].default)

    def draws_random(self) -> str | None:
        """Why the method draws random numbers with these options (it then needs a generator),
        or None."""
        return None

    def for_batch(self, fn: str, T: int, B: int) -> dict[str, Any]:
        """Every option as a plain dict, checked against a batch of T steps and B examples.

        The implementations receive this dict; the batch-dependent rules live here.
        """
        return {k: getattr(self, k) for k in option_names(type(self))}


class GammaOptions(ScoreOptions):
    """The options of the scores that may divide by γ (NOTE [γ normalization], [γ objective])."""

    normalize: Normalization = Field("none", description="divide by γ or not")
    gamma_inputs: GammaInputs = Field("gaussian", description="γ's inputs")
    gamma_state: GammaState = Field("zero", description="γ's initial state")
    gamma_steps: int | None = Field(None, description="γ's sequence length (None: the batch's T)")
    gamma_sequences: int | None = Field(None, description="γ's sequence count (None: the batch's "
                                        "B)")
    gamma_readout: GammaReadout = Field("sum", description="γ from all steps (sum) or the last")
    gamma_objective: GammaObjective = Field("hidden", description="γ differentiates Σh (hidden, "
                                            "Eq. 7) or χ of its own steps (chi)")
    gamma_floor: float = Field(1e-3, description="relative floor of |γ| in [0, 1) (0: none)")
    gamma: Any = Field(None, exclude=True, json_schema_extra={"python_only": True},
                       description="a precomputed γ from compute_gamma (Python only)")

    #: the options that choose how γ is computed (a precomputed ``gamma=`` excludes them)
    GAMMA_MAKERS: ClassVar[tuple[str, ...]] = ("gamma_inputs", "gamma_state", "gamma_steps",
                                               "gamma_sequences", "gamma_readout",
                                               "gamma_objective")
    #: the options that only act with normalize='gamma'
    GAMMA_FIELDS: ClassVar[tuple[str, ...]] = (*GAMMA_MAKERS, "gamma_floor", "gamma")

    @field_validator("gamma_steps", "gamma_sequences", mode="before")
    @classmethod
    def _gamma_count(cls, v: Any, info: ValidationInfo) -> Any:
        what = "the steps" if info.field_name == "gamma_steps" else "the examples"
        return _check_count(_fn(info), str(info.field_name), v, what)

    @field_validator("gamma_floor", mode="before")
    @classmethod
    def _gamma_floor(cls, v: Any, info: ValidationInfo) -> Any:
        return check_unit_interval(_fn(info), "gamma_floor", v, low_open=False, high_open=True)

    def _check_together(self, fn: str) -> None:
        super()._check_together(fn)
        given = self.model_fields_set
        unused = sorted(set(self.GAMMA_FIELDS) & given)
        if unused and self.normalize != "gamma":
            raise fail(fn, "gamma options only together with normalize='gamma'",
                       f"{', '.join(unused)} with normalize={self.normalize!r}")
        clash = sorted(set(self.GAMMA_MAKERS) & given)
        if self.gamma is not None and clash:
            raise fail(fn, "either a precomputed gamma= or the options that make one "
                       f"({', '.join(self.GAMMA_MAKERS)})", f"gamma= and {', '.join(clash)}")

    def draws_random(self) -> str | None:
        """γ from drawn inputs or a drawn state."""
        if (self.normalize == "gamma" and self.gamma is None
                and gamma_needs_generator(self.gamma_inputs, self.gamma_state)):
            return f"gamma_inputs={self.gamma_inputs!r}, gamma_state={self.gamma_state!r}"
        return super().draws_random()

    def _examples(self, B: int) -> int:
        """How many of the batch's B examples the score (and a data γ) sees."""
        return B

    def for_batch(self, fn: str, T: int, B: int) -> dict[str, Any]:
        """With ``gamma_inputs='data'``, γ's length and count are capped at the batch's own when
        not given, and checked when given (NOTE [Given options])."""
        o = super().for_batch(fn, T, B)
        if o.get("normalize") != "gamma" or o["gamma_inputs"] != "data":
            return o
        n = self._examples(B)
        for k, lim in (("gamma_steps", T), ("gamma_sequences", n)):
            if k not in self.model_fields_set and o[k] is not None:
                o[k] = min(o[k], lim)
        if o["gamma_steps"] is not None and o["gamma_steps"] > T:
            raise fail(fn, f"gamma_steps <= T={T} with gamma_inputs='data' (the batch's "
                       "own steps)", o["gamma_steps"])
        if o["gamma_sequences"] is not None and o["gamma_sequences"] > n:
            raise fail(fn, f"gamma_sequences <= {n} with gamma_inputs='data' (the batch's "
                       "own examples)", o["gamma_sequences"])
        return o


#: The default recipe's values: the jacobian defaults (NOTE [Recipes]).
_RECIPE_DEFAULT = RECIPES[DEFAULT_RECIPE].score


def _recipe_default(name: str) -> Any:
    """GammaOptions' field ``name`` with the default recipe's value as its default."""
    f = copy.copy(GammaOptions.model_fields[name])
    f.default = _RECIPE_DEFAULT[name]
    return f


class JacobianOptions(GammaOptions):
    """Options of the paper's Jacobian score (``scores/jacobian.py``); defaults: the default
    recipe's (NOTE [Recipes]), and a given ``recipe`` fills every option not given."""

    method: Literal["jacobian"] = "jacobian"
    horizon: int | Literal["all"] = Field(_RECIPE_DEFAULT["horizon"], description="U, the last "
                                          "steps whose χ is scored (an integer >= 1, or all = T)")
    estimator: Estimator = Field(_RECIPE_DEFAULT["estimator"], description="the χ estimator: "
                                 "ones ‖J1‖², transpose ‖Jᵀ1‖², frobenius, hutchinson")
    through_time: bool = Field(_RECIPE_DEFAULT["through_time"], description="differentiate "
                               "through the earlier steps too")
    discount: float = Field(_RECIPE_DEFAULT["discount"], description="λ in (0, 1]: horizon u "
                            "weighs λ^(u-1)")
    batch_size: int = Field(_RECIPE_DEFAULT["batch_size"], description="examples of the batch "
                            "χ and γ use")
    probes: int = Field(1, description="Rademacher probes of the hutchinson estimator")
    recipe: RecipeName = Field(DEFAULT_RECIPE, description="a named bundle of the options "
                               "(--list-recipes); options given override it")
    normalize: Normalization = _recipe_default("normalize")
    gamma_inputs: GammaInputs = _recipe_default("gamma_inputs")
    gamma_state: GammaState = _recipe_default("gamma_state")
    gamma_steps: int | None = _recipe_default("gamma_steps")
    gamma_sequences: int | None = _recipe_default("gamma_sequences")
    gamma_readout: GammaReadout = _recipe_default("gamma_readout")
    gamma_objective: GammaObjective = _recipe_default("gamma_objective")
    gamma_floor: float = _recipe_default("gamma_floor")

    @field_validator("horizon", mode="before")
    @classmethod
    def _horizon(cls, v: Any, info: ValidationInfo) -> Any:
        return v if v == "all" and isinstance(v, str) else check_positive_int(_fn(info),
                                                                               "horizon", v)

    @field_validator("through_time", mode="before")
    @classmethod
    def _through_time(cls, v: Any, info: ValidationInfo) -> Any:
        return _check_bool(_fn(info), "through_time", v)

    @field_validator("batch_size", "probes", mode="before")
    @classmethod
    def _positive(cls, v: Any, info: ValidationInfo) -> Any:
        return check_positive_int(_fn(info), str(info.field_name), v)

    @field_validator("discount", mode="before")
    @classmethod
    def _discount(cls, v: Any, info: ValidationInfo) -> Any:
        return check_unit_interval(_fn(info), "discount", v, low_open=True, high_open=False)

    def _check_together(self, fn: str) -> None:
        # NOTE [Given options]: the recipe fills what was not given, outside model_fields_set
        for k, v in RECIPES[self.recipe].score.items():
            if k not in self.model_fields_set:
                object.__setattr__(self, k, v)
        super()._check_together(fn)
        if "probes" in self.model_fields_set and self.estimator != "hutchinson":
            raise fail(fn, "probes only together with estimator='hutchinson'",
                       f"probes with estimator={self.estimator!r}")

    def draws_random(self) -> str | None:
        """Hutchinson probes, or γ's draws."""
        if self.estimator == "hutchinson":
            return "estimator 'hutchinson'"
        return super().draws_random()

    def _examples(self, B: int) -> int:
        return min(B, self.batch_size)

    def for_batch(self, fn: str, T: int, B: int) -> dict[str, Any]:
        """``horizon="all"`` is T; a horizon above T is an error."""
        o = super().for_batch(fn, T, B)
        if o["horizon"] == "all":
            o["horizon"] = T
        elif o["horizon"] > T:
            raise fail(fn, f"horizon U in 1..T={T} (the batch has T={T} steps)", o["horizon"])
        return o


class SnipOptions(GammaOptions):
    """Options of SNIP (``scores/saliency.py``)."""

    method: Literal["snip"] = "snip"


class ForesightOptions(GammaOptions):
    """Options of Foresight / GraSP (``scores/saliency.py``)."""

    method: Literal["foresight"] = "foresight"


class MagnitudeOptions(ScoreOptions):
    """Options of the magnitude score |θ|."""

    method: Literal["magnitude"] = "magnitude"


class RandomOptions(ScoreOptions):
    """Options of the random score U(0, 1)."""

    method: Literal["random"] = "random"

    def draws_random(self) -> str | None:
        """Always: the scores are the draws."""
        return "method 'random'"


class SynflowOptions(ScoreOptions):
    """Options of SynFlow (``scores/synflow.py``); ``density`` is required when scoring."""

    method: Literal["synflow"] = "synflow"
    density: float | None = Field(None, description="the target density in (0, 1] it prunes "
                                  "towards, iteratively (required)")
    iterations: int = Field(100, description="rounds of the exponential schedule")

    @field_validator("density", mode="before")
    @classmethod
    def _density(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None:
            return v
        return check_unit_interval(_fn(info), "density", v, low_open=True, high_open=False)

    @field_validator("iterations", mode="before")
    @classmethod
    def _iterations(cls, v: Any, info: ValidationInfo) -> Any:
        return check_positive_int(_fn(info), "iterations", v)

    def for_batch(self, fn: str, T: int, B: int) -> dict[str, Any]:
        """SynFlow prunes towards a density: it must be given."""
        if self.density is None:
            raise fail(fn, "density= for synflow (the target density it prunes towards, "
                       "iteratively)", "none")
        return super().for_batch(fn, T, B)


@dataclass(frozen=True)
class ScoreMethod:
    """One score method: its options model and its function.

    ``function`` is the import path ``"module:name"`` of the implementation, imported when the
    method first scores (:meth:`load`), so that the options, the configuration and the flags are
    known without loading the implementations. The function is called as
    ``function(fn, model, batch, xs, theta, generator, options)`` with the dict of
    :meth:`ScoreOptions.for_batch`.
    """

    options: type[ScoreOptions]
    function: str

    def load(self) -> Callable[..., dict[str, torch.Tensor]]:
        """The implementation."""
        module, name = self.function.split(":")
        return cast("Callable[..., dict[str, torch.Tensor]]",
                    getattr(importlib.import_module(module), name))


#: THE registry of score methods: each method's options model and function, keyed by method
#: (the CLI flags, the run configuration's ``score`` part and compute_scores are built from it).
SCORE_REGISTRY: dict[str, ScoreMethod] = {
    "jacobian": ScoreMethod(JacobianOptions, "spectrumkit.scores.jacobian:jacobian_scores"),
    "snip": ScoreMethod(SnipOptions, "spectrumkit.scores.saliency:snip_scores"),
    "foresight": ScoreMethod(ForesightOptions, "spectrumkit.scores.saliency:foresight_scores"),
    "magnitude": ScoreMethod(MagnitudeOptions, "spectrumkit.scores.saliency:magnitude_scores"),
    "random": ScoreMethod(RandomOptions, "spectrumkit.scores.saliency:random_scores"),
    "synflow": ScoreMethod(SynflowOptions, "spectrumkit.scores.synflow:synflow_scores"),
}
#: The options model of every score method, keyed by method (a view of :data:`SCORE_REGISTRY`).
OPTION_MODELS: dict[str, type[ScoreOptions]] = {k: m.options for k, m in SCORE_REGISTRY.items()}
assert tuple(OPTION_MODELS) == SCORE_METHODS, "SCORE_REGISTRY must list choices.SCORE_METHODS"

#: The score methods, in the order of :data:`OPTION_MODELS`.
METHODS: tuple[str, ...] = tuple(OPTION_MODELS)


def option_names(model: type[ScoreOptions]) -> tuple[str, ...]:
    """The options of ``model``: its own fields first, then those of its bases (not ``method``).

    >>> option_names(SnipOptions)[:2], option_names(MagnitudeOptions)
    (('normalize', 'gamma_inputs'), ('balance',))
    """
    names: list[str] = []
    for klass in model.__mro__:
        for k in getattr(klass, "__annotations__", {}):
            if k in model.model_fields and k != "method" and k not in names:
                names.append(k)
    return tuple(names)


class _OptionTable(Mapping[str, dict[str, Any]]):
    """``{method: {option: default}}``, read from :data:`OPTION_MODELS` on every access."""

    def __getitem__(self, method: str) -> dict[str, Any]:
        model = OPTION_MODELS[method]
        return {k: model.model_fields[k].default for k in option_names(model)}

    def __iter__(self) -> Iterator[str]:
        return iter(OPTION_MODELS)

    def __len__(self) -> int:
        return len(OPTION_MODELS)

    def __repr__(self) -> str:
        return repr(dict(self))


#: Accepted options and their defaults, per method (jacobian: those of :data:`DEFAULT_RECIPE`):
#: a view of :data:`OPTION_MODELS`.
OPTIONS: Mapping[str, dict[str, Any]] = _OptionTable()


def options_for(method: str, fn: str = _FN, **options: Any) -> ScoreOptions:
    """The validated options object of ``method`` from keyword arguments.

    Errors read ``fn: expected X, got Y`` (a :class:`SpectrumkitError`).

    >>> o = options_for("jacobian", recipe="authors", estimator="ones")
    >>> o.estimator, o.through_time, o.discount, sorted(o.model_fields_set)
    ('ones', True, 0.9, ['estimator', 'method', 'recipe'])
    """
    check_choice(fn, "method", method, tuple(OPTION_MODELS))
    try:
        return OPTION_MODELS[method].model_validate({**options, "method": method},
                                                    context={"fn": fn})
    except ValidationError as e:
        raise _one_line(fn, e) from None


def _one_line(fn: str, err: ValidationError) -> SpectrumkitError:
    """Our own check's error, or pydantic's first complaint as ``fn: expected X, got Y``."""
    first = err.errors(include_url=False)[0]
    inner = (first.get("ctx") or {}).get("error")
    if isinstance(inner, SpectrumkitError):
        return inner
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return fail(fn, f"{loc or 'options'}: {first.get('msg', '')}", repr(first.get("input")))
