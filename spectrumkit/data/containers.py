r"""The data containers: sequences, token streams, a corpus, and a task's :class:`TaskData`.

Legend: n = examples (or tokens), T = steps, D = input size, V = vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ._stream import StreamedTokens
from .tasks import DEFAULT_BPTT

__all__ = ["DEFAULT_BPTT", "KINDS", "Kind", "SequenceDataset", "TaskData", "TokenStream",
           "WikiText"]

Kind = Literal["classification", "language", "regression"]
KINDS: tuple[str, ...] = ("classification", "language", "regression")


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    r"""Fixed-length sequences with one target each (or one target per step for the copy task).

    Attributes:
        xs: float32 inputs (n, T, D), batch-first; for the copy task, token ids (n, T), long.
        ys: targets: class labels (n,) long (classification), values (n,) float32 (regression),
            or token ids (n, T) long (copy task).
        description: what this data is, in words (source, split rule, scale).
    """

    xs: torch.Tensor
    ys: torch.Tensor
    description: str

    def __len__(self) -> int:
        return int(self.xs.shape[0])


@dataclass(frozen=True, eq=False)
class TokenStream:
    """One split of a corpus as a single stream of token ids ``ids`` (n,) long."""

    ids: torch.Tensor
    description: str

    def __len__(self) -> int:
        return int(self.ids.numel())


@dataclass(frozen=True, eq=False)
class WikiText:
    """A tokenised corpus: ``train``/``val``/``test`` streams and ``vocab`` (id -> word)."""

    train: TokenStream
    val: TokenStream
    test: TokenStream
    vocab: tuple[str, ...]
    description: str


@dataclass(frozen=True, eq=False)
class TaskData:
    r"""Everything a trainer needs to know about a task, from :func:`load_task`.

    Attributes:
        name: a task of :func:`~spectrumkit.data.task_names` (built-in or registered).
        kind: ``classification`` (cross-entropy on the final state, error %), ``language``
            (per-step cross-entropy, perplexity) or ``regression`` (MSE on the final state).
        train, val: the training and validation splits (:class:`SequenceDataset` or
            :class:`TokenStream`; the training split of ``wikitext-103`` and ``1b`` is a
            :class:`~spectrumkit.data.StreamedTokens`); test: the test split or None (bundled
            MNIST has none).
        input_size: D for classification and regression; None for language (tokens).
        num_classes: C for classification, else None. vocab_size: V for language, else None.
        bptt: truncation length for token streams (None for fixed-length sequences).
        vocab: id -> word for WikiText, else None.
        description: one line for every output of a run.
    """

    name: str
    kind: Kind
    train: SequenceDataset | TokenStream | StreamedTokens
    val: SequenceDataset | TokenStream
    test: SequenceDataset | TokenStream | None
    description: str
    input_size: int | None = None
    num_classes: int | None = None
    vocab_size: int | None = None
    bptt: int | None = None
    vocab: tuple[str, ...] | None = None

