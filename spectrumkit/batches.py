r"""Training batches: one iterator per kind of training data, behind one small protocol.

Legend: T = steps, B = batch, D = input size, S = state size, n = examples, t = window length.

:class:`SequenceBatches` (fixed-length sequences in memory), :class:`StreamBatches` (a token
stream in memory, read by BPTT windows) and :class:`StreamedBatches` (a corpus streamed from disk,
:mod:`spectrumkit.data.corpora`) all meet :class:`Batches`, which is all the training loop
(:func:`spectrumkit.training.train`) asks of its data; :func:`batches_for` picks the one of a task.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol, cast

import torch

from ._evaluate import Model, to_device
from .checkpoints import TrainState
from .data import (
    DEFAULT_BPTT,
    SequenceDataset,
    StreamedTokens,
    TaskData,
    TokenStream,
    batchify,
    bptt_window,
    bptt_window_count,
)
from .errors import fail
from .models import LanguageModel

__all__ = ["Batches", "SequenceBatches", "StreamBatches", "StreamedBatches", "batches_for"]


class Batches(Protocol):
    """What the loop asks of its training data: the batches of an epoch and their loss.

    ``per_epoch`` batches make an epoch; :meth:`start_epoch` runs when ``st.pos`` is 0;
    :meth:`next_batch` returns batch ``st.pos``; :meth:`loss` is the training loss of a batch
    (and updates the state a stream carries). ``eval_batch_size`` is evaluation's batch size.
    """

    per_epoch: int
    eval_batch_size: int

    def start_epoch(self, st: TrainState, g: torch.Generator) -> None:
        """Prepare a new epoch (draw its order, reset the carried state)."""

    def next_batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``st.pos`` of the epoch."""

    def loss(self, model: Model, batch: tuple[torch.Tensor, torch.Tensor], st: TrainState,
             g: torch.Generator) -> torch.Tensor:
        """The training loss of ``batch``."""


class SequenceBatches:
    r"""Fixed-length sequences in memory: every epoch a fresh permutation drawn from ``g``.

    Batch ``pos`` holds the examples ``order[pos·B : (pos + 1)·B]`` (the last one may be short);
    ``per_epoch`` = ⌈n / B⌉. The loss is the model's task loss (a copy-task language model with a
    sampled softmax draws its candidates from ``g``, NOTE [Sampled softmax]).
    """

    eval_batch_size = 256

    def __init__(self, split: SequenceDataset, batch_size: int, device: torch.device) -> None:
        self.split, self.batch_size, self.device = split, batch_size, device
        self.per_epoch = math.ceil(len(split) / batch_size)

    def start_epoch(self, st: TrainState, g: torch.Generator) -> None:
        """Draw the epoch's order (n,) from ``g``."""
        st.order = torch.randperm(len(self.split), generator=g).to(self.device)

    def next_batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        """``(xs (B, T, D), ys)`` of batch ``st.pos``."""
        if st.order is None:
            raise fail("train", "an epoch order (start_epoch first)", "none")
        idx = st.order[st.pos * self.batch_size:(st.pos + 1) * self.batch_size]
        return self.split.xs[idx], self.split.ys[idx]

    def loss(self, model: Model, batch: tuple[torch.Tensor, torch.Tensor], st: TrainState,
             g: torch.Generator) -> torch.Tensor:
        """The task loss of ``batch``."""
        if isinstance(model, LanguageModel) and model.softmax_samples is not None:
            return model.train_loss(batch, generator=g)[0]
        return model.loss(batch)


class _TokenWindows:
    """The loss of a token window, with the state carried across windows from a zero start."""

    eval_batch_size = 64

    def start_epoch(self, st: TrainState, g: torch.Generator) -> None:
        """Restart the carried state from zero."""
        st.carry = None

    def loss(self, model: Model, batch: tuple[torch.Tensor, torch.Tensor], st: TrainState,
             g: torch.Generator) -> torch.Tensor:
        """Next-token loss of ``(inputs (B, t), targets (B, t))`` from ``st.carry``."""
        lm = cast(LanguageModel, model)  # a token stream pairs with a LanguageModel (_check_pair)
        # the sampled softmax draws its candidates from g (NOTE [Sampled softmax])
        loss, s_next = lm.train_loss(batch, st.carry, generator=g)
        st.carry = s_next.detach()
        return loss


class StreamBatches(_TokenWindows):
    r"""A token stream in memory, cut into B rows and read window by window (:func:`bptt_window`).

    ``per_epoch`` = ⌈(⌊n / B⌋ − 1) / bptt⌉; the state is carried from window to window and
    restarts from zero at every epoch.
    """

    def __init__(self, split: TokenStream, batch_size: int, bptt: int) -> None:
        self.rows, self.bptt = batchify(split.ids, batch_size), bptt
        self.per_epoch = bptt_window_count(self.rows.shape[1], bptt)

    def next_batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        """Window ``st.pos``: ``(inputs (B, t), targets (B, t))``."""
        return bptt_window(self.rows, st.pos, self.bptt)


class StreamedBatches(_TokenWindows):
    r"""A corpus streamed from disk (:class:`~spectrumkit.data.StreamedTokens`), by windows.

    The windows of :class:`StreamBatches` over the whole stream, read on demand: a reader opens at
    the first window of an epoch, or at window ``st.pos`` after a resume.
    """

    def __init__(self, split: StreamedTokens, batch_size: int, bptt: int,
                 device: torch.device) -> None:
        self.split, self.batch_size, self.bptt, self.device = split, batch_size, bptt, device
        self.per_epoch = split.num_windows(batch_size, bptt)
        self._windows: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    def start_epoch(self, st: TrainState, g: torch.Generator) -> None:
        """Restart the carried state and the reader."""
        super().start_epoch(st, g)
        self._windows = None

    def next_batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        """Window ``st.pos``, read from disk, on the device."""
        if self._windows is None:  # a new epoch, or a resume mid-epoch
            self._windows = self.split.windows(self.batch_size, self.bptt, start=st.pos)
        inputs, targets = next(self._windows)
        return inputs.to(self.device), targets.to(self.device)


def batches_for(data: TaskData, batch_size: int, device: torch.device,
                 dtype: torch.dtype) -> Batches:
    """The batch iterator of ``data``'s training split (moved to ``device`` unless streamed)."""
    bptt = data.bptt or DEFAULT_BPTT
    if isinstance(data.train, StreamedTokens):  # read from disk (spectrumkit.data.corpora)
        return StreamedBatches(data.train, batch_size, bptt, device)
    split = to_device(data.train, device, dtype)
    if isinstance(split, TokenStream):
        return StreamBatches(split, batch_size, bptt)
    return SequenceBatches(split, batch_size, device)
