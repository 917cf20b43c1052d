r"""The dense path: singular values of formed per-step Jacobians, and the streamed :func:`spectrum`.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, U = selected steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from .._closed_form import graph_free
from .._steps import iter_chunks, iter_closed_form_steps, make_plan
from ..cells import Cell, Params
from ..errors import check_choice, check_float_tensor, fail
from ..jacobians import METHODS as JACOBIAN_METHODS
from ..jacobians import Block, Method
from ._common import bin_counts, check_bins, check_near_zero, summarize
from .slq import lanczos_spectrum
from .summary import SUMMARY_COLUMNS, Histogram, Spectrum

__all__ = ["reference_singular_values", "singular_values", "spectrum"]


def _check_matrices(fn: str, J: torch.Tensor) -> None:
    check_float_tensor(fn, "J", J)
    if J.dim() < 2 or J.shape[-1] == 0 or J.shape[-2] == 0:
        raise fail(fn, "J of shape (..., M, K) with M, K >= 1", f"shape {tuple(J.shape)}")


def singular_values(J: torch.Tensor) -> torch.Tensor:
    r"""Singular values :math:`\sigma_1 \ge \dots \ge \sigma_{\min(M,K)} \ge 0` of every matrix.

    Args:
        J: (..., M, K), e.g. (U, B, S, S) from :func:`~spectrumkit.jacobians.step_jacobians`.

    Returns:
        (..., min(M, K)), descending, in J's dtype and on its device (``torch.linalg.svdvals``).
        Σ_i σ_i² = ‖J‖_F².

    >>> import torch
    >>> singular_values(torch.tensor([[3.0, 0.0], [0.0, -4.0]])).tolist()
    [4.0, 3.0]
    """
    _check_matrices("singular_values", J)
    return torch.linalg.svdvals(J)


def reference_singular_values(J: torch.Tensor) -> torch.Tensor:
    """The float64 reference: ``numpy.linalg.svd(J, compute_uv=False)`` on the CPU.

    Args:
        J: (..., M, K). Returns (..., min(M, K)) float64 on the CPU, descending.
    """
    _check_matrices("reference_singular_values", J)
    a = J.detach().cpu().to(torch.float64).numpy()
    return torch.from_numpy(np.linalg.svd(a, compute_uv=False).copy())


# NOTE [Spectra one step at a time]
# The closed form computes its terms and products one step at a time anyway (NOTE [Chunk
# invariance]), so nothing is gained by holding a chunk of Jacobians before their SVDs: spectrum()
# writes each step's (B, S, S) into one reused buffer (NOTE [One pass over J]) and takes its
# singular values at once. The Jacobians' memory is then one step's, B·S² numbers, not
# chunk_size·B·S² (at T = 784, N = 100, B = 64, chunk_size 64, float32: 2.6 MB instead of 164 MB),
# and the fresh pages of a new chunk are paid once instead of once per chunk. The singular values
# are the same bit for bit: the same matrices, the same svdvals calls.


def spectrum(cell: str | Cell, params: Params, xs: torch.Tensor, *,
             states: torch.Tensor | None = None, steps: int | Sequence[int] | None = None,
             method: Method | Literal["lanczos"] = "auto", chunk_size: int | None = None,
             block: Block = "full", bins: int | Sequence[float] = 50,
             value_range: tuple[float, float] | None = None, near_zero: float = 1e-2,
             lanczos: Any = None, generator: torch.Generator | None = None,
             seed: int | None = None) -> Spectrum:
    r"""Streamed singular-value spectra of the per-step Jacobians of a sequence.

    ``method="lanczos"`` never forms a Jacobian: it returns the same table, pooled summary and
    histogram (on the same bins) from stochastic Lanczos quadrature, with the options ``lanczos``
    (:class:`~spectrumkit.spectra.LanczosOptions` or a dict) and exactly one of ``generator`` /
    ``seed`` for the probes; see :func:`~spectrumkit.spectra.lanczos_spectrum`. The other methods
    (dense) take neither.

    With the closed form the Jacobians are formed one step at a time into one reused (B, S, S)
    buffer and reduced to their singular values (O(B·S) per step) before the next step, whatever
    ``chunk_size`` (NOTE [Spectra one step at a time]). The autodiff engines' Jacobians come chunk
    by chunk from :func:`~spectrumkit.jacobians.iter_step_jacobians` (``steps``, ``method``,
    ``chunk_size``, ``block`` as there; chunk_size None fits a chunk in 256 MiB), each chunk reduced
    before the next is computed, so at most one chunk is alive. The SVD runs one step at a time, so
    the copy ``svdvals`` makes is one step's matrices. The result does not depend on
    ``chunk_size``.

    Args:
        cell, params, xs (T, B, D), states (T+1, B, S): as in
            :func:`~spectrumkit.jacobians.step_jacobians`.
        bins, value_range: of the pooled histogram (see :func:`~spectrumkit.spectra.histogram`).
        near_zero: threshold of ``frac_near_zero`` (see
            :func:`~spectrumkit.spectra.spectrum_summary`).

    Returns:
        :class:`~spectrumkit.spectra.Spectrum` with the per-step table, the pooled summary and
        histogram and the singular values (U, B, S).

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("gru", 2, 4, "normal:0.5", seed=0, dtype=torch.float64)
    >>> xs = torch.randn(6, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> sp = spectrum("gru", p, xs, steps=4, chunk_size=3, bins=8)
    >>> list(sp.table.index), int(sp.histogram.counts.sum())
    ([3, 4, 5, 6], 48)
    """
    fn = "spectrum"
    check_choice(fn, "method", method, (*JACOBIAN_METHODS, "lanczos"))
    if method == "lanczos":
        if chunk_size is not None:
            raise fail(fn, "chunk_size only with a dense method (lanczos sizes its own chunks)",
                       chunk_size)
        return lanczos_spectrum(cell, params, xs, states=states, steps=steps, block=block,
                                lanczos=lanczos, generator=generator, seed=seed, bins=bins,
                                value_range=value_range, near_zero=near_zero)
    given = [n for n, v in (("lanczos", lanczos), ("generator", generator), ("seed", seed))
             if v is not None]
    if given:
        raise fail(fn, f"{', '.join(given)} only with method='lanczos'", f"method={method!r}")
    near_zero = check_near_zero(fn, near_zero)
    check_bins(fn, bins, value_range)
    plan = make_plan(fn, cell, params, xs, states, steps, method, chunk_size, block,
                 default_chunk="budget")
    B = xs.shape[1]
    with torch.no_grad():
        sv = torch.empty(len(plan.steps), B, plan.size, dtype=xs.dtype)
        if plan.method == "closed_form" and graph_free(params, xs, plan.states):
            # one step at a time in one reused buffer (NOTE [Spectra one step at a time])
            for k, J in enumerate(iter_closed_form_steps(plan.cell, params, xs, plan.states,
                                                          plan.steps, plan.block, plan.size)):
                sv[k] = torch.linalg.svdvals(J).cpu()
        else:
            k = 0
            for chunk in iter_chunks(plan, params, xs):
                for J in chunk.jacobians:                   # one step (B, S, S) at a time
                    sv[k] = torch.linalg.svdvals(J).cpu()
                    k += 1
                del chunk, J
    steps = plan.steps
    del plan                            # the states, when computed here, are no longer needed
    a = sv.to(torch.float64).numpy()
    rows = [summarize(a[i], near_zero) for i in range(len(steps))]
    table = pd.DataFrame(rows, index=pd.Index(steps, name="step"), columns=list(SUMMARY_COLUMNS))
    hist = Histogram(*bin_counts(a, bins, value_range))
    return Spectrum(table, summarize(a, near_zero), hist, sv)


