r"""The paper's Jacobian-spectrum score (Zhang & Stadie, ICLR 2020, Algorithm 1).

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, U = horizon.

.. math::  d_n = \frac{\sum_{u=1}^{U} \lambda^{u-1}\,
           \big|\partial\chi^{(u)}/\partial\theta_n\big|}{\max(|\gamma_n|, \tau)},
           \qquad \chi^{(u)} = \frac1B\sum_{b=1}^{B}\chi\big(J_{T-u+1}(x_b, s_b)\big),

with λ = ``discount`` (1.0 by default; the authors' code uses 0.9), χ one of the estimators of
NOTE [χ estimators] (``spectrumkit/spectra/chi_estimators.py``; each already divided by S), γ and
τ as in NOTE [γ normalization] and NOTE [γ objective] (``normalize="none"`` drops the
denominator). Named bundles of all these options: NOTE [Recipes] (``recipe="authors"``,
``"paper"``, ...).

NOTE [Horizon indexing]
χ^(u), u = 1..U, is the χ of the step Jacobian evaluated at the state s_{T-u}: in the 1-based
numbering of NOTE [Jacobian convention] that is J_{T-u+1} = ∂s_{T-u+1}/∂s_{T-u}, taken at the input
x_{T-u+1} = ``xs[T-u]`` and the state ``states[T-u]``. So u = 1 is the last step J_T, and U = T
reaches back to J_1 (at the initial state). The state starts at zero, as in the model. χ^(u) is
the mean over the first ``batch_size`` (64) examples of the batch (all of them if it has fewer).
Each horizon contributes its own absolute gradient: Σ_u |∂χ^(u)/∂θ|, not |∂(Σ_u χ^(u))/∂θ|.

NOTE [through_time]
``through_time=False`` (default): the states s_{T-u} are computed once, without a graph, and held
constant, so ∂χ^(u)/∂θ is the sensitivity of the step map's own spectrum at the observed state — the
weights enter J_{T-u+1} directly and through the gate pre-activations of that step (input weights
included: x_{T-u+1} W_ih moves every σ'/tanh' factor). ``through_time=True``: s_{T-u} is a function
of θ, and the total derivative adds the path θ → s_1 → … → s_{T-u} (back-propagation through the
T-u earlier steps, once per horizon).

Why False is the default: (1) the quantity the paper prunes by is the spectrum of the per-step
Jacobian, a property of the step map, and the state dependence would mix in ∂s/∂θ — the very kind
of trajectory sensitivity that γ measures and divides out; (2) cost: with constant states the
score needs one forward pass without a graph plus U one-step computations, while True adds U
back-propagations through up to T steps (about U + 1 times the work of SNIP's one), at odds with
the paper's Table 6 (ours ≈ SNIP).

Randomness: γ's draws (NOTE [γ normalization]) come first, then the Rademacher probes of the
``hutchinson`` estimator for u = 1, ..., U, all from the one generator.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.func import grad, vmap

from .._unroll import unroll_states
from ..protocols import RecurrentModel
from ..spectra import chi_step
from .common import grads
from .gamma import gamma_denominator, gamma_of


def jacobian_scores(fn: str, model: RecurrentModel, batch: Any, xs: torch.Tensor,
                    theta: dict[str, torch.Tensor], generator: torch.Generator | None,
                    o: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Trusted core (see the module docstring); xs: (T, B, D) cell inputs, detached."""
    cell, params = model.cell, model.cell_params()
    xs = xs[:, : o["batch_size"]]
    T, B, _ = xs.shape
    U, through_time = o["horizon"], o["through_time"]
    S = cell.state_size(model.hidden_size)

    gamma, states = o["gamma"], None
    if o["normalize"] == "gamma" and gamma is None:
        # With the data as γ inputs and a zero state, γ's forward pass IS the trajectory χ needs.
        share = (o["gamma_inputs"] == "data" and o["gamma_state"] == "zero"
                 and o["gamma_steps"] in (None, T) and o["gamma_sequences"] in (None, B))
        gamma, g_states = gamma_of(model, theta, xs, generator, o, o["estimator"],
                                   probes=o["probes"], keep_graph=share and through_time)
        if share:
            states = g_states[:T]
    if states is None:
        with torch.set_grad_enabled(through_time):
            states = unroll_states(cell, params, xs[: T - 1], xs.new_zeros(B, S))  # s_0 .. s_{T-1}
    if not through_time:
        states = states.detach()

    total = {n: torch.zeros_like(p) for n, p in theta.items()}
    if not through_time and o["estimator"] != "hutchinson":
        # NOTE [Batched horizons]: with constant states the U horizons are independent one-step
        # problems; vmap(grad) over u computes the same U gradients, as batched products instead
        # of U separate backward passes (for the benchmark's GRU: 73 -> 54 ms with the jvp J 1,
        # 29 -> 27.5 ms with the closed-form J 1 of NOTE [J 1 in closed form]).
        # Hutchinson keeps the loop below: its probes are drawn horizon by horizon.
        rest = {n: p.detach() for n, p in params.items() if n not in theta}
        est = o["estimator"]

        def chi_of(th: dict[str, torch.Tensor], x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            return chi_step(cell, {**rest, **th}, x, s, est).mean()

        us = torch.arange(T - 1, T - 1 - U, -1, device=xs.device)  # index T-u for u = 1..U
        gs = vmap(grad(chi_of), in_dims=(None, 0, 0))(
            {n: p.detach() for n, p in theta.items()}, xs[us], states[us])
        for u in range(1, U + 1):
            w = o["discount"] ** (u - 1)
            for n in total:
                total[n] += w * gs[n][u - 1].abs()
    else:
        for u in range(1, U + 1):
            chi = chi_step(cell, params, xs[T - u], states[T - u], o["estimator"],
                           probes=o["probes"], generator=generator).mean()
            w = o["discount"] ** (u - 1)
            for n, g in grads(chi, theta, retain_graph=through_time and u < U).items():
                total[n] += w * g.abs()
    if o["normalize"] == "gamma":
        den = gamma_denominator(fn, gamma, o["gamma_floor"])
        total = {n: t / den[n] for n, t in total.items()}
    return total
