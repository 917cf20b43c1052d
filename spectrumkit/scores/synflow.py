r"""SynFlow (Tanaka et al., NeurIPS 2020) for a recurrent cell: iterative, data-free.

Legend: T = steps, D = input size, N = hidden size, S = state size, P = pruned entries.

Every cell parameter is replaced by its absolute value |θ|, the cell is run from a zero state over
an all-ones input of the batch's length T (one sequence), and the objective is the sum of the final
hidden state, R = 1ᵀ h_T (the recurrent layer's own output; the head is not pruned and is left
out). The score is |θ| ⊙ ∂R/∂|θ| with the current mask applied. Pruning is iterative with the
exponential schedule of the SynFlow paper: round k = 1..n keeps the top
K_k = round(density^(k/n) · P) entries (NOTE [Exact-K ranking]) among those still kept, then
recomputes the scores on the masked weights.

Returned scores: the scores of the last round for the entries that entered it, and for entries
pruned in an earlier round k < n, a value below all of those, lower the earlier k
(min_last − (n − k)(1 + |min_last|)). So ``topk_mask(scores, density)`` (global scope) is
exactly the mask SynFlow arrives at; the values below the last round's carry only their order.

Caveat: SynFlow's argument — that with |θ| and a positive input the score of each layer sums to
the same "synaptic flow", so iterative pruning never disconnects a layer first — holds for
positively homogeneous networks (linear and ReLU layers). It does NOT hold for sigmoid and tanh
gates, nor for the GRU's convex combination (1 − z) n + z h, whose derivative in z has either sign;
for gated cells the scores can be negative and layer collapse is not ruled out.
"""

from __future__ import annotations

from typing import Any

import torch

from .._unroll import unroll_states
from ..errors import fail
from ..protocols import RecurrentModel
from .common import grads
from .ranking import k_of, top_k


def synflow_scores(fn: str, model: RecurrentModel, batch: Any, xs: torch.Tensor,
                   theta: dict[str, torch.Tensor], generator: torch.Generator | None,
                   o: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Trusted core (see the module docstring)."""
    cell = model.cell
    T, _, D = xs.shape
    S = cell.state_size(model.hidden_size)
    names = sorted(theta)  # the flat order of topk_mask's global scope
    sizes = [theta[n].numel() for n in names]
    P = sum(sizes)
    density, n_rounds = o["density"], o["iterations"]
    if k_of(density, P) < 1:
        raise fail(fn, f"a synflow density that keeps at least one of the {P} entries",
                   f"density={density} (K rounds to 0)")
    base = {k: v.detach().abs() for k, v in model.cell_params().items()}
    x1, s0 = xs.new_ones(T, 1, D), xs.new_zeros(1, S)
    alive = torch.ones(P, dtype=torch.bool, device=xs.device)
    pruned_at = torch.zeros(P, dtype=torch.long, device=xs.device)
    last = alive_last = None
    for k in range(1, n_rounds + 1):
        masks = dict(zip(names, alive.split(sizes)))
        leaves = {n: (base[n] * masks[n].view_as(base[n])).requires_grad_(True) for n in names}
        states = unroll_states(cell, {**base, **leaves}, x1, s0)
        g = grads(cell.output(states[-1]).sum(), leaves)
        last = torch.cat([(leaves[n].detach() * g[n]).reshape(-1) for n in names])
        alive_last = alive
        keep = top_k(torch.where(alive, last, torch.full_like(last, -torch.inf)),
                     k_of(density ** (k / n_rounds), P))
        pruned_at[alive & ~keep] = k
        alive = keep
    assert last is not None and alive_last is not None  # iterations >= 1 (checked)
    low = last[alive_last].min()
    below = low - (n_rounds - pruned_at).to(last.dtype) * (1 + low.abs())
    out = dict(zip(names, torch.where(alive_last, last, below).split(sizes)))
    return {n: out[n].view_as(p) for n, p in theta.items()}
