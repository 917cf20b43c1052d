r"""Models for a task, devices, and evaluation: what training and studies share.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, V = vocabulary,
n = examples.

:func:`make_model` builds the model a :class:`~spectrumkit.data.TaskData` calls for,
:func:`resolve_device` turns ``"auto"`` into CUDA-when-present, and :func:`evaluate` scores a model
on one split. :mod:`spectrumkit.training` builds on these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch

from ._evaluate import Model, check_pair, evaluate_split
from .cells import Cell
from .data import DEFAULT_BPTT, SequenceDataset, TaskData, TokenStream
from .errors import check_positive_int, fail
from .models import LanguageModel, SequenceClassifier, SequenceRegressor

__all__ = ["Model", "evaluate", "make_model", "resolve_device"]


# --------------------------------------------------------------------------------------------------
# Models and devices
# --------------------------------------------------------------------------------------------------


def make_model(task: TaskData, cell: str | Cell, hidden_size: int, *,
               init: str | Mapping = "glorot", seed: int | None = None,
               generator: torch.Generator | None = None, embed_size: int | None = None,
               bias: str | None = None, freeze_embedding: bool = True,
               device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
               softmax_samples: int | None = None) -> Model:
    r"""The model ``task`` calls for, around ``cell`` with N = ``hidden_size``.

    ``classification`` → :class:`~spectrumkit.models.SequenceClassifier` (D, N, C);
    ``regression`` → :class:`~spectrumkit.models.SequenceRegressor` (D, N);
    ``language`` → :class:`~spectrumkit.models.LanguageModel` (V, E, N) with E = ``embed_size``
    (default N) and a frozen N(0, 1) embedding unless ``freeze_embedding=False``, trained with a
    sampled softmax of ``softmax_samples`` candidates when given (language tasks only).
    Exactly one of ``seed`` / ``generator`` draws the initialization.

    >>> from spectrumkit.data import load_task
    >>> m = make_model(load_task("adding", T=4, n_train=2, n_val=2, n_test=2), "gru", 3, seed=0)
    >>> type(m).__name__, sorted(m.prunable())
    ('SequenceRegressor', ['weight_hh', 'weight_ih'])
    """
    fn = "make_model"
    if not isinstance(task, TaskData):
        raise fail(fn, "a TaskData from load_task", type(task).__name__)
    check_positive_int(fn, "hidden_size", hidden_size)
    kw: dict[str, Any] = dict(init=init, seed=seed, generator=generator, bias=bias, dtype=dtype,
                              device=device)
    if softmax_samples is not None and task.kind != "language":
        raise fail(fn, "softmax_samples=None for a task of kind " + repr(task.kind),
                   repr(softmax_samples))
    if task.kind == "classification":
        # load_task sets D and C for classification, D for regression, V for language
        return SequenceClassifier(cell, cast(int, task.input_size), hidden_size,
                                  cast(int, task.num_classes), **kw)
    if task.kind == "regression":
        return SequenceRegressor(cell, cast(int, task.input_size), hidden_size, **kw)
    if embed_size is not None:
        check_positive_int(fn, "embed_size", embed_size)
    return LanguageModel(cell, cast(int, task.vocab_size), embed_size or hidden_size, hidden_size,
                         freeze_embedding, softmax_samples=softmax_samples, **kw)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:K"`` checked."""
    fn = "resolve_device"
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise fail(fn, "device 'auto', 'cpu', 'cuda' or 'cuda:K'", repr(device)) from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise fail(fn, "device 'auto', 'cpu', 'cuda' or 'cuda:K'", repr(device))
    if not torch.cuda.is_available():
        raise fail(fn, "a CUDA device to be available for device=" + repr(str(device)),
                   "torch.cuda.is_available() == False")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise fail(fn, f"a CUDA index below {torch.cuda.device_count()}", repr(str(device)))
    return dev


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def evaluate(model: Model, split: SequenceDataset | TokenStream, *, batch_size: int | None = None,
             bptt: int = DEFAULT_BPTT, device: str | torch.device | None = None
             ) -> dict[str, float]:
    r"""Score ``model`` on one split, without gradients; the numbers are means over the whole split.

    * classifier: ``loss`` (mean cross-entropy), ``error_pct`` (100 · misclassified / n), ``n``;
    * regressor: ``mse`` (mean squared error), ``n``;
    * language model on a token stream: ``loss`` (mean next-token cross-entropy in nats),
      ``ppl`` = exp(loss), ``tokens``. The stream is cut into ``batch_size`` rows (default 64;
      fewer when the stream has under 2 · ``batch_size`` tokens) and read in windows of ``bptt``
      tokens, carrying the state across windows from a zero start;
    * language model on fixed sequences (copy task): per-step ``loss``, ``ppl``, ``tokens``.

    ``batch_size`` defaults to 256 sequences (64 rows for a token stream); it changes only the
    speed for sequences, but for a token stream it decides where the state restarts (64 rows
    restart it 63 more times than one row would: on WikiText-2's 245k test tokens that changes
    the perplexity negligibly and makes evaluation several times faster than the classic 10).
    ``device`` defaults to the model's.
    """
    fn = "evaluate"
    check_pair(fn, model, split)
    if batch_size is None:
        batch_size = 64 if isinstance(split, TokenStream) else 256
    check_positive_int(fn, "batch_size", batch_size)
    check_positive_int(fn, "bptt", bptt)
    dev = (next(iter(model.rnn.values())).device if device is None else resolve_device(device))
    model.to(dev)
    return evaluate_split(model, split, batch_size, bptt, dev)
