r"""Evaluation's trusted core and the helpers training shares with it.

Legend: T = steps, B = batch, D = input size, V = vocabulary, n = examples.

:func:`evaluate_split` is the core of :func:`spectrumkit.evaluation.evaluate` (which checks its
inputs first); :mod:`spectrumkit.training` and :mod:`spectrumkit.batches` call these directly on
inputs they have checked.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data import SequenceDataset, TokenStream, bptt_batches
from .errors import fail
from .models import LanguageModel, SequenceClassifier, SequenceRegressor

__all__ = ["Model", "check_pair", "evaluate_split", "model_dtype", "to_device"]

Model = SequenceClassifier | LanguageModel | SequenceRegressor


def model_dtype(model: Model) -> torch.dtype:
    """The dtype of the model's recurrent parameters."""
    return next(iter(model.rnn.values())).dtype


def check_pair(fn: str, model: nn.Module, split: Any) -> None:
    """Refuse a model/split pairing that cannot be scored."""
    if not isinstance(model, (SequenceClassifier, LanguageModel, SequenceRegressor)):
        raise fail(fn, "a SequenceClassifier, SequenceRegressor or LanguageModel",
                   type(model).__name__)
    if isinstance(split, TokenStream):
        if not isinstance(model, LanguageModel):
            raise fail(fn, "a LanguageModel for a token stream", type(model).__name__)
        if split.ids.numel() and int(split.ids.max()) >= model.vocab_size:
            raise fail(fn, f"token ids below the model's vocab_size {model.vocab_size}",
                       int(split.ids.max()))
    elif isinstance(split, SequenceDataset):
        if len(split) == 0:
            raise fail(fn, "a non-empty split", "0 examples")
        model.check_batch(fn, (split.xs[:2], split.ys[:2]))
    else:
        raise fail(fn, "a SequenceDataset or TokenStream split", type(split).__name__)


@torch.no_grad()
def evaluate_split(model: Model, split: SequenceDataset | TokenStream, batch_size: int, bptt: int,
              device: torch.device) -> dict[str, float]:
    """Trusted core of :func:`evaluate`: sums over the whole split, then one mean."""
    was_training = model.training
    model.eval()
    dtype = model_dtype(model)
    try:
        if isinstance(split, TokenStream):
            rows = max(1, min(batch_size, len(split) // 2))
            s, total, count = None, 0.0, 0
            for inputs, tgt in bptt_batches(split.ids.to(device), rows, bptt):
                logits, s = model(inputs, s)
                total += float(F.cross_entropy(logits.reshape(-1, model.vocab_size),
                                               tgt.reshape(-1), reduction="sum"))
                count += tgt.numel()
            return {"loss": total / count, "ppl": math.exp(total / count), "tokens": count}
        total, wrong, count = 0.0, 0, 0
        for start in range(0, len(split), batch_size):
            xs = split.xs[start:start + batch_size].to(device)
            ys = split.ys[start:start + batch_size].to(device)
            if xs.is_floating_point():
                xs = xs.to(dtype)
            if isinstance(model, SequenceClassifier):
                logits = model(xs)
                total += float(F.cross_entropy(logits, ys, reduction="sum"))
                wrong += int((logits.argmax(-1) != ys).sum())
                count += ys.numel()
            elif isinstance(model, SequenceRegressor):
                total += float(F.mse_loss(model(xs), ys.to(dtype), reduction="sum"))
                count += ys.numel()
            else:  # per-step targets (copy task)
                logits, _ = model(xs)
                total += float(F.cross_entropy(logits.reshape(-1, model.vocab_size),
                                               ys.reshape(-1), reduction="sum"))
                count += ys.numel()
        if isinstance(model, SequenceClassifier):
            return {"loss": total / count, "error_pct": 100.0 * wrong / count, "n": count}
        if isinstance(model, SequenceRegressor):
            return {"mse": total / count, "n": count}
        return {"loss": total / count, "ppl": math.exp(total / count), "tokens": count}
    finally:
        model.train(was_training)


def to_device(split: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """A copy of ``split`` on ``device``, its floating tensors in ``dtype``."""
    if isinstance(split, TokenStream):
        return TokenStream(split.ids.to(device), split.description)
    xs = split.xs.to(device, dtype) if split.xs.is_floating_point() else split.xs.to(device)
    ys = split.ys.to(device, dtype) if split.ys.is_floating_point() else split.ys.to(device)
    return SequenceDataset(xs, ys, split.description)
