r"""Windows over token streams (truncated BPTT) and the scoring batch of a split.

Legend: n = tokens or examples, B = batch (rows), L = row length, t = window length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from ..errors import check_positive_int, fail
from ._stream import StreamedTokens
from .containers import DEFAULT_BPTT, SequenceDataset, TokenStream

__all__ = ["batchify", "bptt_batches", "bptt_window", "bptt_window_count", "sample_batch"]


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a stream (n,) into ``batch_size`` contiguous rows (B, n // B), dropping the remainder."""
    check_positive_int("batchify", "batch_size", batch_size)
    if ids.dim() != 1 or ids.numel() < 2 * batch_size:
        raise fail("batchify", f"a 1-D stream of at least {2 * batch_size} tokens",
                   f"shape {tuple(ids.shape)}")
    L = ids.numel() // batch_size
    return ids[: L * batch_size].view(batch_size, L)


def bptt_window(rows: torch.Tensor, k: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Window ``k`` of a stream cut into rows (B, L): ``(inputs (B, t), targets (B, t))``.

    ``inputs = rows[:, k·bptt : k·bptt + t]`` and ``targets`` the same columns shifted by one
    token, with t = min(``bptt``, L − 1 − k·``bptt``); a pass has ⌈(L − 1) / ``bptt``⌉ windows
    (:func:`bptt_window_count`). The one windowing rule of training, evaluation and
    :func:`bptt_batches`; the caller checks ``k``.

    >>> [a.tolist() for a in bptt_window(torch.arange(10).view(2, 5), 1, 3)]
    [[[3], [8]], [[4], [9]]]
    """
    start = k * bptt
    t = min(bptt, rows.shape[1] - 1 - start)
    return rows[:, start:start + t], rows[:, start + 1:start + 1 + t]


def bptt_window_count(length: int, bptt: int) -> int:
    """Windows of :func:`bptt_window` in a pass over rows of L = ``length``: ⌈(L − 1) / bptt⌉.

    >>> bptt_window_count(5, 2), bptt_window_count(5, 4), bptt_window_count(5, 3)
    (2, 1, 2)
    """
    return math.ceil((length - 1) / bptt)


def bptt_batches(ids: torch.Tensor, batch_size: int, bptt: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    r"""Truncated-BPTT windows over a token stream.

    The stream is cut into B = ``batch_size`` contiguous rows (:func:`batchify`); window k yields
    ``inputs = rows[:, k·bptt : k·bptt + t]`` and ``targets`` shifted by one token, both (B, t)
    with t = ``bptt`` except possibly in the last window (:func:`bptt_window`). Row b of window
    k+1 continues row b of window k, so a model may carry its state across windows.

    >>> [a.tolist() for a, _ in bptt_batches(torch.arange(10), 2, 2)]
    [[[0, 1], [5, 6]], [[2, 3], [7, 8]]]
    """
    check_positive_int("bptt_batches", "bptt", bptt)
    rows = batchify(ids, batch_size)
    for k in range(bptt_window_count(rows.shape[1], bptt)):
        yield bptt_window(rows, k, bptt)


def sample_batch(split: SequenceDataset | TokenStream | StreamedTokens, n: int, *,
                 generator: torch.Generator, bptt: int | None = None,
                 device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One batch of ``n`` examples of a split, in the models' batch format, on ``device``.

    Fixed-length sequences: ``n`` examples drawn without replacement by ``generator`` (all of them
    if the split is smaller), returned as ``(xs (B, T, D), ys)``. A token stream: the first ``bptt``
    window (:data:`DEFAULT_BPTT` if None) of the stream cut into ``n`` rows, returned as
    ``(inputs (B, t), targets (B, t))``; the generator is not used. This is the scoring batch of
    ``spectrumkit train`` and of study trials.
    """
    check_positive_int("sample_batch", "n", n)
    if isinstance(split, StreamedTokens):
        inputs, targets = split.head_window(n, bptt or DEFAULT_BPTT)
        return inputs.to(device), targets.to(device)
    if isinstance(split, TokenStream):
        inputs, targets = next(iter(bptt_batches(split.ids, n, bptt or DEFAULT_BPTT)))
        return inputs.to(device), targets.to(device)
    if not isinstance(split, SequenceDataset):
        raise fail("sample_batch", "a SequenceDataset or TokenStream", type(split).__name__)
    idx = torch.randperm(len(split), generator=generator)[: min(n, len(split))]
    return split.xs[idx].to(device), split.ys[idx].to(device)

