r"""The typed parts of a run configuration: model, data, pruning, training and records.

Each part is a frozen pydantic model that refuses unknown fields and owns its fields' defaults,
descriptions and checks, once; :class:`~spectrumkit.config.RunConfig` holds one of each with the
score part (the method's options object, :mod:`spectrumkit.config.score`). A field's description
is its help text on the command line (``spectrumkit train --help``), and its name is its flag and
its key in a study's TOML (NOTE [Flat names] in :mod:`spectrumkit.config.run`).
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from .._cell_names import cell_names
from .._init_spec import parse_spec
from ..choices import OPTIMIZERS, Optimizer, Pipeline, Record, Scope, SpectrumMethod
from ..data.tasks import is_import_path, task_names
from ..errors import SpectrumkitError
from .messages import pydantic_message

__all__ = ["INSIDE_RUN", "DataConfig", "ModelConfig", "PART_MODELS", "PruningConfig",
           "RecordsConfig", "Scalar", "TrainingConfig"]

Scalar = Union[bool, int, float, str]

#: True while a RunConfig validates its parts: their errors then stay pydantic's, located at the
#: field, so that the RunConfig names the flat key the caller wrote.
INSIDE_RUN: ContextVar[bool] = ContextVar("INSIDE_RUN", default=False)


class _Part(BaseModel):
    """A part of a run configuration: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: field → its flat name where the two differ (NOTE [Flat names])
    FLAT_NAMES: ClassVar[dict[str, str]] = {}

    def __init__(self, **data: Any) -> None:
        """Built directly (the Python door), a bad value is one SpectrumkitError line naming
        the part and the field; inside a RunConfig, pydantic's errors name the flat key."""
        if INSIDE_RUN.get():
            super().__init__(**data)
            return
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise SpectrumkitError(pydantic_message(type(self).__name__, e)) from None


class ModelConfig(_Part):
    """The network: the cell, its width, its initialization and the language-model options."""

    cell: str = Field("gru", description="the recurrent cell (a built-in cell's name)")
    hidden_size: PositiveInt = Field(400, description="N, the hidden units")
    embed_size: PositiveInt | None = Field(None, description="language models: the embedding "
                                           "size E (default N)")
    softmax_samples: PositiveInt | None = Field(
        None, description="word-level language models: train with a sampled softmax of this "
        "many log-uniform candidates (0 < S < V; default: the full softmax; evaluation is always "
        "full)")
    init: str = Field("glorot", description="the initialization scheme (glorot, torch, "
                      "normal:0.1, ...)")
    dtype: Literal["float32", "float64"] = Field(
        "float32", description="the dtype of the parameters and the data (scores, training and "
        "spectra compute in it)")

    @field_validator("cell")
    @classmethod
    def _cell_known(cls, v: str) -> str:
        if v not in cell_names():
            raise ValueError(f"expected one of {', '.join(cell_names())}, got {v!r}")
        return v

    @field_validator("init")
    @classmethod
    def _init_parses(cls, v: str) -> str:
        try:
            parse_spec(v, None)
        except SpectrumkitError as e:
            raise ValueError(str(e)) from None
        return v


class DataConfig(_Part):
    """The task and that task's own options (checked against the task by the run configuration
    of a built-in trial, when it is built)."""

    FLAT_NAMES: ClassVar[dict[str, str]] = {"options": "data"}

    task: str = Field("seq-mnist", description="the task: seq-mnist, wikitext, wikitext-103, "
                      "1b, adding, copy, a registered task, or 'module:function' with "
                      "--allow-trial-code (docs/own-task.md)")
    options: dict[str, Scalar] = Field(default_factory=dict, description="options of the task's "
                                       "loader (load_task), e.g. limit=1000, variant=pixel")

    @field_validator("task")
    @classmethod
    def _task_known(cls, v: str) -> str:
        if v not in task_names() and not is_import_path(v):
            raise ValueError(f"expected one of {', '.join(task_names())} or an import path "
                             f"'package.module:function', got {v!r}")
        return v


class PruningConfig(_Part):
    """How the scores become a mask, and the authors' training pipeline."""

    sparsity: float = Field(0.95, ge=0.0, lt=1.0, description="the fraction of the cell's "
                            "weights pruned (0 for dense)")
    scope: Scope = Field("global", description="one global top-K, or top-K within every tensor")
    include_bias: bool = Field(False, description="score and prune the cell's biases too")
    score_batch: PositiveInt = Field(64, description="examples in the scoring batch")
    score_repeats: PositiveInt = Field(1, description="time the scores as the best of this many "
                                       "runs")
    pipeline: Pipeline = Field("plain", description="authors: train the pruned GRU as the "
                               "authors' code does (z and candidate blocks swapped, zero "
                               "trainable biases)")
    block_swap: bool | None = Field(None, description="swap the z and candidate blocks before "
                                    "training (default: with pipeline authors)")


class TrainingConfig(_Part):
    r"""How the network trains: the length (epochs or steps), the batch, the optimizer.

    Exactly one of ``epochs`` / ``steps``; given neither, the run trains ``epochs=1``.

    >>> TrainingConfig(steps=5).epochs, TrainingConfig().epochs
    (None, 1)
    """

    epochs: NonNegativeInt | None = Field(None, description="passes over the training split "
                                          "(0: evaluate at initialization; default 1)")
    steps: NonNegativeInt | None = Field(None, description="optimizer steps (instead of epochs; "
                                         "0: evaluate at initialization)")
    batch_size: int = Field(64, description="B, the training batch")
    lr: float = Field(1e-3, description="the learning rate")
    optimizer: Optimizer = Field("adam", description="adam (torch's betas) or sgd (no momentum)")
    clip: float | None = Field(None, description="the largest global gradient norm")
    eval_every: int | None = Field(None, description="steps between evaluations (default: "
                                   "every epoch)")

    @model_validator(mode="before")
    @classmethod
    def _one_epoch_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("epochs") is None and data.get("steps") is None:
            return {**data, "epochs": 1}
        return data

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer(cls, v: Any) -> Any:
        if v not in OPTIMIZERS:
            raise ValueError(f"expected one of {', '.join(map(repr, OPTIMIZERS))}, got {v!r}")
        return v

    @field_validator("lr", "clip")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"expected a finite number > 0, got {v!r}")
        return v

    @field_validator("batch_size", "eval_every")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        if v is not None and v <= 0:
            raise ValueError(f"expected a positive integer, got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_length(self) -> TrainingConfig:
        if self.epochs is not None and self.steps is not None:
            raise ValueError("expected exactly one of epochs / steps, got both")
        return self

    @property
    def length(self) -> int:
        """The epochs or steps asked for."""
        return int(self.epochs if self.epochs is not None else self.steps or 0)


class RecordsConfig(_Part):
    """What a run records beyond its metrics, and the options of those records."""

    record: tuple[Record, ...] = Field((), description="a record of the run, repeatable")
    spectrum_batch: PositiveInt | None = Field(None, description="sequences for the spectral "
                                               "records (default 64)")
    spectrum_method: SpectrumMethod | None = Field(None, description="dense SVD (default) or "
                                                   "lanczos (without forming J)")
    hist_bins: PositiveInt | None = Field(None, description="bins of sv_hist (default 50)")
    lyapunov_k: PositiveInt | None = Field(None, description="Lyapunov exponents to record "
                                           "(default: all)")

    @model_validator(mode="after")
    def _no_repeats(self) -> RecordsConfig:
        if len(set(self.record)) != len(self.record):
            raise ValueError(f"expected record entries without repeats, got {list(self.record)}")
        return self


#: The parts of a run configuration beside its score, by attribute name, in order.
PART_MODELS: dict[str, type[_Part]] = {
    "model": ModelConfig, "dataset": DataConfig, "pruning": PruningConfig,
    "training": TrainingConfig, "records": RecordsConfig}
