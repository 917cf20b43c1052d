"""Rescaling scores per group of entries before ranking (NOTE [Balance])."""

from __future__ import annotations

import torch

from ..cells import BLOCKS, Cell, entry_labels, require_layout
from ..errors import SpectrumkitError, fail

__all__ = ["balance_scores"]


# NOTE [Balance]
# The authors' code can rescale scores so that groups of entries compete on an equal footing:
# ``balance="gate"`` divides every score by the mean |score| over all pruned entries of its gate
# (input, recurrent, peephole and — when pruned — bias entries together); ``balance="block"`` by the
# mean |score| over its block (input / recurrent / cell / bias, all gates together). A group whose
# mean |score| is exactly 0 is all zeros and is left as is. Balancing needs the cell's layout.


def balance_scores(fn: str, scores: dict[str, torch.Tensor], cell: Cell, input_size: int,
                   hidden_size: int, how: str) -> dict[str, torch.Tensor]:
    """Apply NOTE [Balance] to ``scores`` ({name: tensor}); returns a new dict."""
    if how == "none":
        return scores
    try:
        require_layout(fn, cell)
    except SpectrumkitError:
        raise fail(fn, f"balance={how!r} only for a cell with a layout "
                   "(make_cell(..., layout=...))", f"cell {cell.name!r} without one") from None
    labels = entry_labels(cell, input_size, hidden_size)
    groups = []
    for name in scores:
        gate, block = labels[name]
        groups.append((gate if how == "gate" else torch.full_like(gate, BLOCKS.index(block)))
                      .reshape(-1))
    first = next(iter(scores.values()))
    idx = torch.cat(groups).to(first.device)
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    n_groups = len(cell.gates) if how == "gate" else len(BLOCKS)
    sums = flat.new_zeros(n_groups).scatter_add_(0, idx, flat.abs())
    mean = sums / torch.bincount(idx, minlength=n_groups).clamp_min(1).to(flat.dtype)
    scale = torch.where(mean > 0, mean, torch.ones_like(mean))
    out = (flat / scale[idx]).split([s.numel() for s in scores.values()])
    return {name: o.view_as(s) for (name, s), o in zip(scores.items(), out)}
