r"""The k largest and k smallest singular values of every per-step Jacobian, matrix-free.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, U = selected steps,
k = extreme singular values. The Golub–Kahan–Lanczos kernel (NOTE [Golub–Kahan–Lanczos] in
:mod:`~spectrumkit.spectra.krylov`) runs on the Jacobians as operators (J v one JVP, Jᵀ u one VJP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch

from ..cells import Cell
from ..errors import check_positive_int, fail
from ..init import make_generator
from ._matfree import check_tol, concat_extremes, extremes, ritz_runs, setup, stack_extremes
from .krylov import ritz_values

__all__ = ["ExtremeSingularValues", "extreme_singular_values"]


class ExtremeSingularValues(NamedTuple):
    """The k largest and k smallest Ritz singular values of every matrix, with their residuals.

    Attributes:
        top: (U, B, k) descending. top_residual: (U, B, k) relative residuals (÷ σ_1).
        top_converged: (U, B, k) bool, residual ≤ tol.
        bottom: (U, B, k) ascending (smallest first); bottom_residual, bottom_converged likewise.
        iterations: (U,) Lanczos steps taken at each step.
        tol: the tolerance the flags use.
    """

    top: torch.Tensor
    top_residual: torch.Tensor
    top_converged: torch.Tensor
    bottom: torch.Tensor
    bottom_residual: torch.Tensor
    bottom_converged: torch.Tensor
    iterations: torch.Tensor
    tol: float


def extreme_singular_values(cell: str | Cell, params: Mapping[str, torch.Tensor],
                            xs: torch.Tensor, *, states: torch.Tensor | None = None,
                            steps: int | Sequence[int] | None = None, block: str = "full",
                            k: int = 5, iterations: int = 200, tol: float = 1e-6,
                            generator: torch.Generator | None = None, seed: int | None = None
                            ) -> ExtremeSingularValues:
    r"""The k largest and k smallest singular values of every per-step Jacobian, matrix-free.

    Golub–Kahan–Lanczos (NOTE [Golub–Kahan–Lanczos]) from one random unit start per matrix, batched
    over the B examples of a step (one JVP and one VJP of the whole batch per Lanczos step, no
    (S, S) matrix anywhere). It stops when the top k Ritz values of every example of the step have
    relative residuals ≤ ``tol`` (checked every 10 steps) or after ``iterations`` steps (capped at
    S). Convergence is reported per value in the result, never assumed.

    Args:
        cell, params, xs (T, B, D), states (T+1, B, S), steps, block: as in
            :func:`~spectrumkit.jacobians.step_jacobians`.
        k: 1 ≤ k < S (k < N for ``block="hh"``).
        iterations: the most Lanczos steps per step (≥ k). tol: relative residual target (> 0).
        generator, seed: exactly one (the start vectors).

    Returns:
        :class:`ExtremeSingularValues`, tensors of shape (U, B, k), float64 on the CPU.

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> from spectrumkit.jacobians import step_jacobians
    >>> p = init_params("gru", 3, 12, "glorot", seed=0, dtype=torch.float64)
    >>> xs = torch.randn(4, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> ev = extreme_singular_values("gru", p, xs, steps=1, k=3, seed=0)
    >>> dense = torch.linalg.svdvals(step_jacobians("gru", p, xs, steps=1))[..., :3]
    >>> bool(torch.allclose(ev.top, dense, rtol=1e-10)), bool(ev.top_converged.all())
    (True, True)
    """
    fn = "extreme_singular_values"
    check_positive_int(fn, "k", k)
    check_positive_int(fn, "iterations", iterations)
    tol = check_tol(fn, tol)
    if iterations < k:
        raise fail(fn, f"iterations >= k={k}", iterations)
    g = make_generator(generator, seed, fn)
    st = setup(fn, cell, params, xs, states, steps, block, k)
    m = min(iterations, st.size)
    parts, used = [], []

    def stop(alpha: torch.Tensor, beta: torch.Tensor) -> bool:
        return bool((ritz_values(alpha, beta).residual[:, :k] <= tol).all())

    with torch.no_grad():
        for t in st.steps:
            runs = ritz_runs(st, xs, t, 1, m, block, g, stop)
            parts.append(concat_extremes([extremes(r, k, tol) for r in runs]))
            used.append(max(r.sigma.shape[1] for r in runs))
    return ExtremeSingularValues(*stack_extremes(parts), torch.tensor(used), tol)
