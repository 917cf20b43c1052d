r"""The one ranking rule of spectrumkit: exact K, higher score first, ties by position.

Legend: P = number of entries ranked.

NOTE [Exact-K ranking]
Entries are ranked by score, highest first; equal scores (including -0.0 and 0.0) are ranked by
their position, lowest first. The rule is a stable descending sort, so the top K are unique for any
K, and the top K₁ are contained in the top K₂ whenever K₁ ≤ K₂ (masks are nested across
densities). K = round(density · P) rounds halves up: K = ⌊density · P + ½⌋.
:func:`~spectrumkit.masks.topk_mask` and the iterative SynFlow score share this rule, so that
``topk_mask(synflow_scores, density)`` is exactly SynFlow's own final mask.
"""

from __future__ import annotations

import math

import torch

__all__ = ["k_of", "top_k"]


def k_of(density: float, count: int) -> int:
    """K = ⌊density · P + ½⌋ (NOTE [Exact-K ranking]).

    >>> k_of(0.05, 513600), k_of(0.5, 3), k_of(0.05, 10)
    (25680, 2, 1)
    """
    return int(math.floor(density * count + 0.5))


def top_k(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean (P,) mask of the top ``k`` entries of ``flat`` (P,) under NOTE [Exact-K ranking].

    Computed without a full sort: the k-th highest value v is found by selection, every entry
    above v is kept, and the remaining places go to the entries equal to v, lowest position first
    — the same set a stable descending sort would give.

    >>> top_k(torch.tensor([1.0, 3.0, 3.0, 0.0, 3.0]), 2).tolist()
    [False, True, True, False, False]
    >>> top_k(torch.tensor([1.0, 3.0]), 0).tolist()
    [False, False]
    """
    P = flat.numel()
    if k >= P:
        return torch.ones(P, dtype=torch.bool, device=flat.device)
    if k <= 0:  # K = 0 keeps nothing (the L2 schedule of a tiny layer can reach it)
        return torch.zeros(P, dtype=torch.bool, device=flat.device)
    v = torch.kthvalue(flat, P - k + 1).values  # the k-th highest
    keep = flat > v
    ties = (flat == v).nonzero().flatten()[: k - int(keep.sum())]
    keep[ties] = True
    return keep
