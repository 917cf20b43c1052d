r"""Holding a mask through training, and the L2 baseline's magnitude masks.

NOTE [Holding a mask]
A mask is ``{name: bool tensor}`` over the cell's tensors (keys as ``model.prunable()``; True =
keep). Pruned entries must stay exactly 0.0 through every step. Three things do it:
1. before the first step the pruned parameters are set to 0.0;
2. after every backward pass the pruned gradient entries are set to 0.0, so Adam's first and
   second moments of those entries stay exactly 0 (they start at 0 and only ever see 0) and the
   update m̂ / (√v̂ + ε) is exactly 0 / ε = 0; gradient clipping then sees the masked gradient;
3. after every optimizer step the pruned parameters are set to 0.0 again, which covers optimizers
   that move an entry even with a zero gradient (weight decay, stale momentum).
When a mask *changes* during training (the L2 schedule), the optimizer's per-entry state (Adam's
moments, SGD's momentum) is zeroed at the newly pruned entries so that no stale momentum remains.
``masked_fill_`` is used rather than multiplication so that a pruned entry is +0.0, never −0.0.
The model's forward pass is unchanged (dense kernels with zeros), so masking costs only these
element-wise fills (``benchmarks/bench_train.py`` measures it).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .errors import fail
from .scores.ranking import k_of, top_k

__all__ = ["L2_DENSITIES", "MaskHolder", "magnitude_mask", "prune_steps"]

#: The paper's L2 baseline anneals the density along this schedule (stopping at the target).
L2_DENSITIES = (0.8, 0.6, 0.4, 0.2, 0.1, 0.05, 0.02, 0.01)


class MaskHolder:
    r"""Holds a mask on a model's cell tensors through training (NOTE [Holding a mask]).

    :meth:`hold` sets the pruned parameters to 0.0 and zeroes the optimizer's per-entry state at
    them, so a mask that changes leaves no stale momentum; :meth:`mask_grads` runs after every
    backward pass, :meth:`mask_params` after every optimizer step. Without a mask (``mask`` is
    None) the three do nothing and :meth:`density` is 1.0.
    """

    def __init__(self, params: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer
                 ) -> None:
        self._params, self._opt = dict(params), optimizer
        self.mask: dict[str, torch.Tensor] | None = None
        self._pruned: list[tuple[torch.Tensor, torch.Tensor]] = []

    @torch.no_grad()
    def hold(self, mask: Mapping[str, torch.Tensor]) -> None:
        """Hold ``mask`` ``{name: bool tensor}`` (True = keep) from now on."""
        self.mask = dict(mask)
        self._pruned = [(self._params[k], ~v) for k, v in mask.items()]
        for p, pruned in self._pruned:
            p.masked_fill_(pruned, 0.0)
            for buf in self._opt.state.get(p, {}).values():
                if isinstance(buf, torch.Tensor) and buf.shape == p.shape:
                    buf.masked_fill_(pruned, 0.0)

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Set the gradient of every pruned entry to 0.0."""
        for p, pruned in self._pruned:
            if p.grad is not None:
                p.grad.masked_fill_(pruned, 0.0)

    @torch.no_grad()
    def mask_params(self) -> None:
        """Set every pruned parameter to 0.0."""
        for p, pruned in self._pruned:
            p.masked_fill_(pruned, 0.0)

    def density(self) -> float:
        """Kept fraction of the masked entries; 1.0 without a mask."""
        if self.mask is None:
            return 1.0
        return (sum(int(v.sum()) for v in self.mask.values())
                / sum(v.numel() for v in self.mask.values()))


def magnitude_mask(params: Mapping[str, torch.Tensor], old: Mapping[str, torch.Tensor] | None,
                    density: float) -> dict[str, torch.Tensor]:
    r"""Exactly K = ⌊density · P + ½⌋ entries of largest |θ|, global over ``params``.

    The ranking is NOTE [Exact-K ranking] (:func:`~spectrumkit.scores.ranking.top_k`) over the
    concatenation of the flattened tensors in ``params`` order, so ties break by that position,
    lowest first. Entries that ``old`` already prunes score −1, below every |θ| ≥ 0, so the masks
    of a schedule are nested.
    """
    names = list(params)
    scores = []
    for k in names:
        s = params[k].detach().abs().flatten().double()
        if old is not None and k in old:
            s = torch.where(old[k].flatten(), s, torch.full_like(s, -1.0))
        scores.append(s)
    flat = torch.cat(scores)
    keep = top_k(flat, k_of(density, flat.numel()))
    parts = keep.split([params[k].numel() for k in names])
    return {k: part.view_as(params[k]) for k, part in zip(names, parts)}


def prune_steps(prune: tuple[int | None, list[float]] | None, total: int) -> dict[int, float]:
    """``{step: density}`` of the L2 schedule ``prune`` = (stage_steps or None, densities)."""
    if prune is None:
        return {}
    stage, schedule = prune
    stage = stage if stage is not None else total // (len(schedule) + 1)
    prune_at = {stage * (i + 1): d for i, d in enumerate(schedule)}
    if stage < 1 or max(prune_at) >= total:
        raise fail("train_l2_iterative", f"the last of {len(schedule)} pruning stages "
                   f"(every {stage} steps) before the end of training", f"{total} steps in all")
    return prune_at


