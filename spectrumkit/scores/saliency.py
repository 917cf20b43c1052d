r"""Saliency scores from the loss and the weights: SNIP, Foresight (GraSP), magnitude, random.

Legend: B = batch, P = pruned parameters; θ the pruned weights, L the model's mean loss on the
batch.

* SNIP (Lee et al., ICLR 2019):        |θ ⊙ ∇_θ L|.
* Foresight / GraSP (Wang et al., ICLR 2020): θ ⊙ (H g), NOTE [Foresight sign].
* magnitude:                           |θ|.
* random:                              U(0, 1) per entry, drawn from the generator on the CPU in the
                                       order of ``model.prunable()`` and moved to θ's device.

``normalize="gamma"`` divides SNIP and Foresight by max(|γ|, τ) (NOTE [γ normalization]); these
are the paper's Table 2 "Norm." rows. γ's batch has the batch's B and T unless ``gamma_steps`` /
``gamma_sequences`` say otherwise; ``gamma_inputs="data"`` uses the batch itself (NOTE [γ
objective]).

NOTE [Foresight sign]
g = ∇_θ L, H = ∇²_θ L, both over the pruned set only (the head, embedding and — unless pruned —
biases are constants), on the batch. H g is computed by double back-propagation: the gradient is
taken with ``create_graph=True`` and z = Σ_n g_n · stopgrad(g_n) is differentiated once more, so
∇_θ z = H g with g detached (z's second factor contributes nothing). GraSP scores S(−θ) = −θ ⊙ H g
and removes the entries with the HIGHEST S: removing θ_n changes the gradient norm by about
−θ_n (H g)_n, and GraSP removes the weights whose removal reduces gradient flow the least.
Equivalently, it keeps the highest θ ⊙ H g — which is what this score returns (higher = keep,
signed: no absolute value).
"""

from __future__ import annotations

from typing import Any, cast

import torch

from ..protocols import RecurrentModel
from .common import grads
from .gamma import gamma_denominator, gamma_of


def _normalized(fn: str, model: RecurrentModel, scores: dict[str, torch.Tensor], xs: torch.Tensor,
                theta: dict[str, torch.Tensor], generator: torch.Generator | None,
                o: dict[str, Any]) -> dict[str, torch.Tensor]:
    if o["normalize"] != "gamma":
        return scores
    gamma = o["gamma"]
    if gamma is None:
        gamma = gamma_of(model, theta, xs, generator, o, "transpose")[0]
    den = gamma_denominator(fn, gamma, o["gamma_floor"])
    return {n: s / den[n] for n, s in scores.items()}


def snip_scores(fn: str, model: RecurrentModel, batch: Any, xs: torch.Tensor,
                theta: dict[str, torch.Tensor], generator: torch.Generator | None,
                o: dict[str, Any]) -> dict[str, torch.Tensor]:
    """|θ ⊙ ∇L| on the batch (one forward with a graph, one backward)."""
    g = grads(model.loss(batch), theta)
    scores = {n: (p.detach() * g[n]).abs() for n, p in theta.items()}
    return _normalized(fn, model, scores, xs, theta, generator, o)


def foresight_scores(fn: str, model: RecurrentModel, batch: Any, xs: torch.Tensor,
                     theta: dict[str, torch.Tensor], generator: torch.Generator | None,
                     o: dict[str, Any]) -> dict[str, torch.Tensor]:
    """θ ⊙ (H g) with g detached, by double back-propagation (NOTE [Foresight sign])."""
    g = grads(model.loss(batch), theta, create_graph=True)
    z = cast(torch.Tensor, sum((gn * gn.detach()).sum() for gn in g.values()))
    hg = grads(z, theta)
    scores = {n: p.detach() * hg[n] for n, p in theta.items()}
    return _normalized(fn, model, scores, xs, theta, generator, o)


def magnitude_scores(fn: str, model: RecurrentModel, batch: Any, xs: torch.Tensor,
                     theta: dict[str, torch.Tensor], generator: torch.Generator | None,
                     o: dict[str, Any]) -> dict[str, torch.Tensor]:
    """|θ|."""
    return {n: p.detach().abs() for n, p in theta.items()}


def random_scores(fn: str, model: RecurrentModel, batch: Any, xs: torch.Tensor,
                  theta: dict[str, torch.Tensor], generator: torch.Generator | None,
                  o: dict[str, Any]) -> dict[str, torch.Tensor]:
    """U(0, 1) per entry from ``generator`` (CPU draws, in the order of the pruned set)."""
    return {n: torch.rand(p.shape, generator=generator, dtype=p.dtype).to(p.device)
            for n, p in theta.items()}
