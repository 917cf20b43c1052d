r"""The score part of a run configuration: the options object of the run's method.

The score methods' options models are those of :data:`spectrumkit.scores.options.OPTION_MODELS`
(one registry, :data:`spectrumkit.scores.options.SCORE_REGISTRY`); two training methods join
them here, ``dense`` (no mask, :class:`DenseOptions`) and ``l2`` (the paper's iterative magnitude
prune-retrain baseline, :class:`L2Options`). :data:`ScoreUnion` is the tagged union over all of
them, discriminated by ``method``, built from the registry when this module is imported, so a new
option of a score method reaches the configuration, its schema, its flags and its key with no
edit here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from ..scores.options import OPTION_MODELS, ScoreOptions, option_names

__all__ = ["DenseOptions", "L2Options", "ScoreUnion", "method_models", "options_of"]


class DenseOptions(BaseModel):
    """The ``dense`` training method: no mask, no options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["dense"] = "dense"


class L2Options(BaseModel):
    """The paper's iterative magnitude prune-retrain baseline ``l2``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["l2"] = "l2"
    stage_steps: PositiveInt | None = Field(None, description="l2: prune every stage_steps "
                                            "training steps (required)")


_TRAIN_MODELS: dict[str, type[BaseModel]] = {"dense": DenseOptions, "l2": L2Options}


def method_models() -> dict[str, type[BaseModel]]:
    """Every method's options model: the score registry, then dense and l2."""
    return {**OPTION_MODELS, **_TRAIN_MODELS}


def options_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The option names of a method's options model (not ``method``)."""
    if issubclass(model, ScoreOptions):
        return option_names(model)
    return tuple(k for k in model.model_fields if k != "method")


def _score_union() -> Any:
    """The tagged union over :func:`method_models`, discriminated by ``method``."""
    return Annotated[Union[tuple(method_models().values())],  # noqa: UP007 (a runtime tuple)
                     Field(discriminator="method")]


if TYPE_CHECKING:
    ScoreUnion = Union[ScoreOptions, DenseOptions, L2Options]
else:
    ScoreUnion = _score_union()
