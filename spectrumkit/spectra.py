r"""Singular values of per-step Jacobians, their summaries, and the χ estimators.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size.

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
                 (E[v vᵀ] = I), with variance falling as 1/k.

Eq. 3 of the paper writes ``ones`` as if it were ``frobenius``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.func import jacrev, vmap

from .cells import Cell
from .errors import check_positive_int, fail
from .jacobians import _jvp_step, _vjp_step

__all__ = ["CHI_ESTIMATORS", "chi_step"]

Params = Mapping[str, torch.Tensor]

CHI_ESTIMATORS = ("ones", "transpose", "frobenius", "hutchinson")


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
        (B,) χ per example, already divided by S.
    """
    if estimator not in CHI_ESTIMATORS:
        raise fail("chi_step", f"estimator one of {', '.join(CHI_ESTIMATORS)}", repr(estimator))
    S = s.shape[-1]
    if estimator == "ones":
        return _jvp_step(cell, params, x, s, torch.ones_like(s)).pow(2).sum(-1) / S
    if estimator == "transpose":
        return _vjp_step(cell, params, x, s, torch.ones_like(s)).pow(2).sum(-1) / S
    if estimator == "frobenius":
        step = cell.step
        J = vmap(jacrev(step, argnums=2), in_dims=(None, 0, 0))(params, x, s)
        return J.pow(2).sum((-1, -2)) / S
    check_positive_int("chi_step", "probes", probes)
    if generator is None:
        raise fail("chi_step", "a generator for the hutchinson estimator", None)
    v = torch.randint(0, 2, (probes, *s.shape), generator=generator).to(s) * 2 - 1
    jv = vmap(lambda vi: _jvp_step(cell, params, x, s, vi))(v)
    return jv.pow(2).sum(-1).mean(0) / S

