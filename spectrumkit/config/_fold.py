r"""The flat form of a run configuration folded into its parts (NOTE [Canonical configs]).

Used by :mod:`spectrumkit.config.run`. Input is flat (``method``, ``normalize``, ``horizon``,
``estimator``, ``through_time``, ``recipe``, ``score_options`` and ``l2_stage_steps`` become the
``score`` part; every other key names the field of one part); the folding drops what does not
apply to the method, the task or the records, and writes out what does, so that one trial has
one form and one key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..choices import RECORDS, WORD_TASKS
from ..errors import SpectrumkitError
from .score import method_models, options_of

__all__ = ["FLAT_OPTIONS", "FLAT_SCORE_KEYS", "canonical", "canonical_score", "error",
           "from_flat", "relocated", "same_value", "score_defaults"]

#: options of the score methods under their own (flat) names
FLAT_OPTIONS = ("normalize", "horizon", "estimator", "through_time", "recipe")
#: the flat input keys folded into ``score``
FLAT_SCORE_KEYS = ("method", *FLAT_OPTIONS, "score_options", "l2_stage_steps")
#: options of compute_scores that a trial does not take: synflow's density is 1 - sparsity
_NOT_TRIAL_OPTIONS = ("density", "gamma")
_SPECTRUM_RECORDS = ("sv_hist", "spectrum_steps", "lyapunov")


def score_defaults(method: str, recipe: Any = None) -> dict[str, Any]:
    """Every option of ``method`` with its default (jacobian: ``recipe``'s values)."""
    model = method_models()[method]
    given = {"recipe": recipe} if recipe is not None else {}
    obj = model.model_validate({"method": method, **given})
    return {k: getattr(obj, k) for k in options_of(model)}


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type (``0`` is not ``False``; ``1`` is ``1.0``)."""
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, num)
                                                            and isinstance(b, num)):
        return type(a) is type(b) and a == b
    return bool(a == b)


def error(loc: tuple[str, ...], expected: str, got: str, value: Any = None) -> ValidationError:
    """A one-error ValidationError ``expected X, got Y`` at ``loc`` (the input ``value``)."""
    return ValidationError.from_exception_data("RunConfig", [InitErrorDetails(
        type=PydanticCustomError("value_error", "Value error, {m}",
                                 {"m": f"{expected}, got {got}"}), loc=loc, input=value)])


def from_flat(flat: dict[str, Any]) -> dict[str, Any]:
    """The ``score`` dict of the flat keys (NOTE [Canonical configs])."""
    method = flat.get("method", "jacobian")
    models = method_models()
    if not isinstance(method, str) or method not in models:
        raise ValidationError.from_exception_data("RunConfig", [InitErrorDetails(
            type="literal_error", loc=("method",), input=method,
            ctx={"expected": ", ".join(map(repr, models))})])
    so = flat.get("score_options") or {}
    if not isinstance(so, Mapping):
        raise error(("score_options",), "expected a table of score options",
                    type(so).__name__, so)
    given = {k: flat[k] for k in FLAT_OPTIONS if flat.get(k) is not None}
    given.update(so)
    if flat.get("l2_stage_steps") is not None:
        given["stage_steps"] = flat["l2_stage_steps"]
    known = {k for m in models.values() for k in options_of(m)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise error(("score_options",), "expected score options among "
                    f"{', '.join(sorted(known - set(_NOT_TRIAL_OPTIONS)))}",
                    ", ".join(unknown), unknown)
    takes = options_of(models[method])
    return {"method": method, **{k: v for k, v in given.items() if k in takes}}


def canonical_score(score: Any) -> Any:
    """Drop the options given with their default value (NOTE [Canonical configs]).

    A dumped score (the nested form) carries synflow's ``density`` as None: the trial's density
    is ``1 - sparsity``, filled in only when it scores; a density given here is refused.
    """
    if isinstance(score, BaseModel):
        score = {"method": getattr(score, "method", None),
                 **{k: getattr(score, k) for k in score.model_fields_set}}
    if not isinstance(score, Mapping) or score.get("method") not in method_models():
        return score  # pydantic names what is wrong
    method = score["method"]
    bad = sorted(k for k in _NOT_TRIAL_OPTIONS if score.get(k) is not None)
    if bad:
        raise error(("score_options",), "no density or gamma among a trial's score options "
                    "(synflow's density is 1 - sparsity)", ", ".join(bad), bad)
    recipe = score.get("recipe")
    if recipe is not None and (not isinstance(recipe, str) or recipe not in _recipes()):
        raise error(("recipe",), f"expected one of {', '.join(_recipes())}", repr(recipe),
                    recipe)
    try:
        dflt = score_defaults(method, recipe)
    except SpectrumkitError:
        return score
    return {k: v for k, v in score.items()
            if k in ("method", "recipe") or k not in dflt or not same_value(v, dflt[k])}


def _recipes() -> tuple[str, ...]:
    from ..scores.recipes import RECIPES
    return tuple(RECIPES)


_FLAT_LOC = {**{k: k for k in FLAT_OPTIONS}, "stage_steps": "l2_stage_steps"}


def _score_loc(loc: tuple[str, ...], msg: str, kind: str) -> tuple[tuple[str, ...], str, str]:
    """An error inside ``score`` at the flat key the caller wrote: ``("score", "jacobian",
    "horizon")`` is ``("horizon",)``, an option given in ``score_options``
    ``("score_options", name)``, a check across options ``()``."""
    field = loc[2] if len(loc) >= 3 else None
    inner = re.match(r"Value error, (?:\w+: )?expected (.*)$", msg, re.S)
    if inner:  # our check's 'fn: expected NAME to be X' reads 'expected X' at NAME
        body = inner.group(1)
        if field:
            body = body.removeprefix(f"{field} to be ").removeprefix(f"{field} ")
        msg, kind = f"Value error, expected {body}", "value_error"
    return ((() if field is None else (_FLAT_LOC[field],) if field in _FLAT_LOC
             else ("score_options", field)), msg, kind)


def relocated(err: ValidationError, flat_names: Mapping[tuple[str, str], str],
              part_locs: Mapping[str, tuple[str, ...]]) -> ValidationError:
    """Errors named by the flat key the caller wrote: a part's field by its flat name
    (``flat_names[(part, field)]``), a part's own check at ``part_locs[part]``, and the score's
    options as :func:`_score_loc` says."""
    out = []
    for e in err.errors(include_url=False):
        loc = tuple(str(p) for p in e.get("loc", ()))
        msg, kind = str(e.get("msg", "")), e["type"]
        if loc[:1] == ("score",):
            loc, msg, kind = _score_loc(loc, msg, kind)
        elif loc and loc[0] in part_locs:
            loc = ((flat_names[(loc[0], loc[1])], *loc[2:]) if len(loc) >= 2
                   and (loc[0], loc[1]) in flat_names else part_locs[loc[0]])
        out.append(InitErrorDetails(type=PydanticCustomError(kind, "{m}", {"m": msg}), loc=loc,
                                    input=e.get("input")))
    return ValidationError.from_exception_data("RunConfig", out)


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


def canonical(values: dict[str, Any]) -> dict[str, Any]:
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
