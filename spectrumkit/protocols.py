r"""The model contract: what the scores, the masks and the training loop ask of a model.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size.

:class:`RecurrentModel` is a ``typing.Protocol``: any object with these members works, the
built-in :class:`~spectrumkit.models.SequenceClassifier`, :class:`~spectrumkit.models.LanguageModel`
and :class:`~spectrumkit.models.SequenceRegressor` as much as a user's own model. It is
``runtime_checkable``, so ``isinstance(model, RecurrentModel)`` checks that the members exist (not
their signatures) and :func:`check_model` turns a miss into one line.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from .cells import Cell
from .errors import fail

__all__ = ["MODEL_MEMBERS", "RecurrentModel", "check_model"]


@runtime_checkable
class RecurrentModel(Protocol):
    """A recurrent model whose cell spectrumkit can score, prune and train.

    Attributes:
        cell: the recurrent cell (:class:`~spectrumkit.cells.Cell`).
        input_size: D, the width of the cell's inputs.
        hidden_size: N.
    """

    cell: Cell
    input_size: int
    hidden_size: int

    def cell_params(self) -> dict[str, torch.Tensor]:
        """The cell's tensors by name: the dict the cell's ``step`` takes."""
        ...

    def prunable(self, include_bias: bool = False) -> dict[str, torch.nn.Parameter]:
        """The cell's parameters a mask covers: the weights, and the biases with include_bias."""
        ...

    def cell_inputs(self, batch: Any) -> torch.Tensor:
        """The cell's inputs xs (T, B, D) for one batch in the model's format."""
        ...

    def check_batch(self, fn: str, batch: Any) -> None:
        """Raise a one-line SpectrumkitError (``fn: expected X, got Y``) for a malformed batch."""
        ...

    def loss(self, batch: Any) -> torch.Tensor:
        """The task loss of one batch (a scalar)."""
        ...


#: The members :class:`RecurrentModel` requires, in the order an error lists them.
MODEL_MEMBERS = ("cell", "cell_params", "prunable", "cell_inputs", "check_batch", "loss",
                 "input_size", "hidden_size")


def check_model(fn: str, model: object) -> RecurrentModel:
    """``model`` itself if it meets :class:`RecurrentModel`, else a one-line error naming the gaps.

    >>> check_model("f", object())
    Traceback (most recent call last):
    ...
    spectrumkit.errors.SpectrumkitError: f: expected a spectrumkit model \
(spectrumkit.protocols.RecurrentModel) with cell, cell_params, prunable, cell_inputs, \
check_batch, loss, input_size, hidden_size, got object lacking cell, cell_params, prunable, \
cell_inputs, check_batch, loss, input_size, hidden_size
    """
    missing = [a for a in MODEL_MEMBERS if not hasattr(model, a)]
    if missing or not isinstance(model, RecurrentModel):
        raise fail(fn, "a spectrumkit model (spectrumkit.protocols.RecurrentModel) with "
                   + ", ".join(MODEL_MEMBERS),
                   f"{type(model).__name__} lacking {', '.join(missing)}")
    return model
