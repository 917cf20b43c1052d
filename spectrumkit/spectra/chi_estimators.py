r"""The χ estimators: mean squared singular values of the per-step Jacobians, without an SVD.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, U = selected steps,
k = probes.

NOTE [χ estimators]
The paper's χ is a mean squared singular value of the per-step Jacobian. Four estimators exist and
they are NOT equal in general (each is divided by S, the paper's 1/N with S = N for rnn and gru):

* ``ones``       ‖J 1‖² / S — the paper's Algorithm 1 (line 9): one JVP with an all-ones tangent.
                 ‖J 1‖² = Σ_i (Σ_j J_ij)² = ‖J‖_F² + Σ_i Σ_{j≠k} J_ij J_ik: the squared *row sums*,
                 so products of entries within a row count. It equals ``frobenius`` when those
                 cross terms vanish (e.g. J diagonal) and can be far from it otherwise (it is 0
                 for a J whose rows sum to zero).
* ``transpose``  ‖Jᵀ 1‖² / S — what the authors' code differentiates: squared *column* sums;
                 equals ``ones`` when J is symmetric.
* ``frobenius``  ‖J‖_F² / S = Σσ² / S = mean σ² — exact.
* ``hutchinson`` mean over k Rademacher probes v of ‖J v‖² / S — unbiased for ``frobenius``
                 (E[v vᵀ] = I), with variance 2(‖JᵀJ‖_F² − Σ_i (JᵀJ)_ii²) / (k S²) (Hutchinson 1990;
                 Avron & Toledo 2011, J. ACM 58(2)).

Eq. 3 of the paper writes ``ones`` as if it were ``frobenius``. With random weights W of scale
1/√N the cross terms have mean zero, so ``ones`` and ``frobenius`` agree in expectation over W, but
for one network they differ by O(1) relative amounts (the tests show this on a random GRU); they
agree exactly when every row of J has at most one non-zero entry, e.g. J diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.func import jacrev, vmap

from .._closed_form import ClosedForm
from .._steps import closed_form, jvp_step_fn, make_plan, vjp_step_fn
from ..cells import Cell, Params, get
from ..choices import ESTIMATORS, Estimator
from ..errors import check_choice, check_positive_int, fail
from ..init import make_generator

__all__ = ["CHI_ESTIMATORS", "chi", "chi_step"]

#: The χ estimators (NOTE [χ estimators]); ``choices.ESTIMATORS`` under its public name here.
CHI_ESTIMATORS = ESTIMATORS


# NOTE [J 1 in closed form]
# For a built-in cell whose Jacobian is "elementwise × shared matrix" (NOTE [Closed-form engine],
# every cell but gru_cho), J_b = Σ_g diag(β_{b,g}) M_g + diag(α_b), so
# (J_b 1)_{o,n} = Σ_g β_{b,o,g,n} (M_g 1)_n + Σ_p α_{b,o,p,n}: the row sums of the shared matrices
# replace the (B, S) × (S, G·N) product that a forward-mode J v with v = 1 costs (and its twin in
# the backward pass). Same J 1 as ``jvp_step`` up to the order of the float sums.
def _ones_closed_form(form: Any, params: Params, x: torch.Tensor, s: torch.Tensor
                      ) -> torch.Tensor:
    """Trusted: J 1 of every example, (B, S), for a closed form with ``reset is None``."""
    terms = form.terms(params, x, s)
    beta, alpha = terms.beta, terms.alpha                       # (B, O, G, N), (B, O, O, N)
    m = form.mats(params, beta.shape[-1]).sum(-1)               # (G, N): M_g 1
    j1 = (beta * m).sum(-2)                                     # (B, O, N)
    if alpha is not None:
        j1 = j1 + alpha.sum(-2)
    return j1.reshape(s.shape)


def chi_step(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, estimator: str = "ones",
             *, probes: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-example χ of one step, differentiable with respect to ``params`` and ``s``.

    Args:
        cell: a :class:`~spectrumkit.cells.Cell` (trusted: callers validate).
        x: (B, D) inputs; s: (B, S) previous states.
        estimator: one of :data:`CHI_ESTIMATORS` (see NOTE [χ estimators]).
        probes: number of Rademacher probes for ``hutchinson``.
        generator: required for ``hutchinson``; probes are drawn on the CPU and moved to s's device.

    Returns:
        (B,) χ per example, already divided by S. ``frobenius`` uses the closed form for the
        built-in cells (NOTE [Closed-form engine]) and ``vmap(jacrev)`` otherwise.
    """
    if estimator not in CHI_ESTIMATORS:
        raise fail("chi_step", f"estimator one of {', '.join(CHI_ESTIMATORS)}", repr(estimator))
    S = s.shape[-1]
    if estimator == "ones":
        form = cell.jacobian if isinstance(cell.jacobian, ClosedForm) else None
        if form is not None and form.reset is None:
            return _ones_closed_form(form, params, x, s).pow(2).sum(-1) / S
        return jvp_step_fn(cell, params, x, s, torch.ones_like(s)).pow(2).sum(-1) / S
    if estimator == "transpose":
        return vjp_step_fn(cell, params, x, s, torch.ones_like(s)).pow(2).sum(-1) / S
    if estimator == "frobenius":
        if cell.jacobian is not None:
            J = closed_form(cell, params, x, s, "full")
        else:
            J = vmap(jacrev(cell.step, argnums=2), in_dims=(None, 0, 0))(params, x, s)
        return J.pow(2).sum((-1, -2)) / S
    check_positive_int("chi_step", "probes", probes)
    if generator is None:
        raise fail("chi_step", "a generator for the hutchinson estimator", None)
    v = torch.randint(0, 2, (probes, *s.shape), generator=generator).to(s) * 2 - 1
    jv = vmap(lambda vi: jvp_step_fn(cell, params, x, s, vi))(v)
    return jv.pow(2).sum(-1).mean(0) / S


def chi(cell: str | Cell, params: Params, xs: torch.Tensor, *,
        states: torch.Tensor | None = None, steps: int | Sequence[int] | None = None,
        estimator: Estimator = "ones", probes: int = 1,
        generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
    r"""χ of every selected step and example (NOTE [χ estimators]), divided by S.

    .. math::  \chi_t^{(b)} \in \Big\{\tfrac{\|J_t 1\|^2}{S},\ \tfrac{\|J_t^\top 1\|^2}{S},\
               \tfrac{\|J_t\|_F^2}{S},\ \tfrac1k\sum_{j=1}^k \tfrac{\|J_t v_j\|^2}{S}\Big\}

    Args:
        cell, params, xs (T, B, D), states (T+1, B, S), steps: as in
            :func:`~spectrumkit.jacobians.step_jacobians`. When ``states`` is None they are
            computed without gradient, so χ is differentiable with respect to ``params`` at fixed
            states; pass states that carry gradient to differentiate through time.
        estimator: ``ones``, ``transpose``, ``frobenius`` or ``hutchinson``.
        probes: Rademacher probes per step for ``hutchinson`` (k).
        generator, seed: exactly one is required for ``hutchinson`` (probes are drawn step by
            step in ascending order); ignored by the deterministic estimators.

    Returns:
        (U, B) with U = len(steps).

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("rnn", 2, 3, "normal:0.5", seed=0, dtype=torch.float64)
    >>> xs = torch.randn(4, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> from spectrumkit.jacobians import step_jacobians
    >>> J = step_jacobians("rnn", p, xs)
    >>> bool(torch.allclose(chi("rnn", p, xs, estimator="frobenius"), J.pow(2).sum((-1, -2)) / 3))
    True
    """
    fn = "chi"
    cell = get(cell)
    check_choice(fn, "estimator", estimator, CHI_ESTIMATORS)
    check_positive_int(fn, "probes", probes)
    g = make_generator(generator, seed, fn) if estimator == "hutchinson" else None
    plan = make_plan(fn, cell, params, xs, states, steps, "auto", 1, "full", default_chunk="all")
    return torch.stack([chi_step(cell, params, xs[t - 1], plan.states[t - 1], estimator,
                                 probes=probes, generator=g) for t in plan.steps])
