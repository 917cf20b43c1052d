r"""Per-step temporal Jacobians :math:`J_t = \partial s_t / \partial s_{t-1}` and their products.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, G = gates.
Inside the closed-form engine the einsum letters are the same, lower-case, plus ``o``/``p`` for the
state block of an output/input entry (h or c; S = state_factor · N).

NOTE [Jacobian convention]
``J_t`` has shape (S, S) with index order (output, input): ``J_t[i, j] = ∂s_t[i] / ∂s_{t-1}[j]``.
Steps are numbered 1..T: ``J_t`` is evaluated at ``(x_t, s_{t-1})``, i.e. at ``xs[t-1]`` and
``states[t-1]`` in the time-major arrays returned by :func:`~spectrumkit.unroll.unroll`.

Four engines compute the same matrices and check one another in the tests:

=================  ===========================================================================
``closed_form``    the built-in cells only: analytic derivatives (NOTE [Closed-form engine])
``jacrev``         ``vmap(jacrev(step))`` over (step, example) pairs: any cell
``jacfwd``         ``vmap(jacfwd(step))``: any cell
reference          :func:`reference_jacobian`, row by row with ``torch.autograd.grad`` (slow)
=================  ===========================================================================

Large CPU outputs reuse the memory of freed ones (NOTE [Reused outputs] in ``_output_cache.py``):
at most 256 MiB of freed outputs is kept, and :func:`empty_cache` releases it.

``block="hh"`` restricts everything to the h→h block ∂h_t/∂h_{t-1}, shape (N, N); for cells with
S = N it equals the full Jacobian.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ._output_cache import empty_cache
from ._steps import (
    CHUNK_BYTES,
    JacobianChunk,
    check_states,
    check_step_args,
    iter_chunks,
    jvp_step_fn,
    make_plan,
    resolve_steps,
    vjp_step_fn,
)
from ._unroll import check_sequence, unroll_states
from .cells import Cell, Params, get
from .choices import JACOBIAN_BLOCKS, JACOBIAN_METHODS, JacobianBlock, JacobianMethod

__all__ = [
    "BLOCKS",
    "CHUNK_BYTES",
    "METHODS",
    "JacobianChunk",
    "empty_cache",
    "has_closed_form",
    "iter_step_jacobians",
    "jvp_step",
    "reference_jacobian",
    "resolve_steps",
    "step_jacobians",
    "vjp_step",
]

Method = JacobianMethod
Block = JacobianBlock

#: Accepted ``method`` values of :func:`step_jacobians` (``choices.JACOBIAN_METHODS``).
METHODS = JACOBIAN_METHODS
#: Accepted ``block`` values (``choices.JACOBIAN_BLOCKS``): the full (S, S) Jacobian or its h→h
#: block (N, N).
BLOCKS = JACOBIAN_BLOCKS


# --------------------------------------------------------------------------------------------------
# Products J v and Jᵀ v
# --------------------------------------------------------------------------------------------------


def jvp_step(cell: str | Cell, params: Params, x: torch.Tensor, s: torch.Tensor, v: torch.Tensor
             ) -> torch.Tensor:
    r"""Batched Jacobian-vector product :math:`J v` without forming J.

    Args:
        x: (B, D) inputs at the step; s: (B, S) previous states; v: (B, S) tangents.

    Returns:
        (B, S) with ``out[b] = J(x[b], s[b]) @ v[b]``. Differentiable with respect to ``params``
        (and ``s``) by ordinary autograd, which is how the paper's score differentiates χ.
    """
    cell = get(cell)
    check_step_args("jvp_step", cell, params, x, s, v)
    return jvp_step_fn(cell, params, x, s, v)



def vjp_step(cell: str | Cell, params: Params, x: torch.Tensor, s: torch.Tensor, v: torch.Tensor
             ) -> torch.Tensor:
    r"""Batched vector-Jacobian product :math:`J^\top v` without forming J.

    Args:
        x: (B, D); s: (B, S); v: (B, S) cotangents.

    Returns:
        (B, S) with ``out[b] = J(x[b], s[b]).T @ v[b]``; differentiable with respect to ``params``.
    """
    cell = get(cell)
    check_step_args("vjp_step", cell, params, x, s, v)
    return vjp_step_fn(cell, params, x, s, v)



# --------------------------------------------------------------------------------------------------
# The slow reference
# --------------------------------------------------------------------------------------------------


def reference_jacobian(cell: str | Cell, params: Params, xs: torch.Tensor, *,
                       states: torch.Tensor | None = None,
                       steps: int | Sequence[int] | None = None) -> torch.Tensor:
    r"""The slow, obviously correct reference: J_t built row by row with ``torch.autograd.grad``.

    One backward pass per (step, example, output row). Use it on tiny float64 cases to check the
    fast paths (see NOTE [Jacobian convention]).

    Args:
        xs: (T, B, D). states: (T+1, B, S) from ``unroll`` (computed if None). steps: see
            :func:`resolve_steps`.

    Returns:
        (len(steps), B, S, S).
    """
    fn = "reference_jacobian"
    cell = get(cell)
    _, N, s0 = check_sequence(fn, cell, params, xs)
    T, B = xs.shape[:2]
    S = cell.state_size(N)
    check_states(fn, states, xs, S)
    if states is None:
        with torch.no_grad():
            states = unroll_states(cell, params, xs, s0)
    idx = resolve_steps(fn, steps, T)
    out = xs.new_zeros(len(idx), B, S, S)
    for k, t in enumerate(idx):
        for b in range(B):
            s_prev = states[t - 1, b].detach().clone().requires_grad_(True)
            with torch.enable_grad():
                s_next = cell.step(params, xs[t - 1, b], s_prev)
                for i in range(S):
                    (row,) = torch.autograd.grad(s_next[i], s_prev, retain_graph=i < S - 1,
                                                 allow_unused=True)
                    if row is not None:
                        out[k, b, i] = row
    return out




def has_closed_form(cell: str | Cell) -> bool:
    """Whether ``method="closed_form"`` exists for ``cell``: it carries a ``jacobian`` (every
    built-in does; a user cell when made with ``make_cell(..., jacobian=...)``).

    >>> has_closed_form("gru"), has_closed_form("lstm")
    (True, True)
    """
    return get(cell).jacobian is not None


def iter_step_jacobians(cell: str | Cell, params: Params, xs: torch.Tensor, *,
                        states: torch.Tensor | None = None,
                        steps: int | Sequence[int] | None = None, method: Method = "auto",
                        chunk_size: int | None = None, block: Block = "full"
                        ) -> Iterator[JacobianChunk]:
    r"""Stream the per-step Jacobians in chunks of ``chunk_size`` steps.

    Same arguments and conventions as :func:`step_jacobians`; it yields
    :class:`JacobianChunk` ``(steps, jacobians (c, B, S, S))`` with c ≤ ``chunk_size``, in order.
    At most one chunk (c·B matrices, plus the engine's temporaries for it) is alive at a time if the
    caller drops each chunk before asking for the next. ``chunk_size=None`` picks the largest number
    of steps whose Jacobians fit in :data:`CHUNK_BYTES` (256 MiB), at least one.

    Inputs are validated when this function is called, not at the first ``next()``; the states are
    computed once (O(T·B·S) memory, no Jacobians).

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("rnn", 2, 3, "normal:0.5", seed=0, dtype=torch.float64)
    >>> xs = torch.ones(5, 2, 2, dtype=torch.float64)
    >>> [c.steps for c in iter_step_jacobians("rnn", p, xs, chunk_size=2)]
    [[1, 2], [3, 4], [5]]
    """
    plan = make_plan("iter_step_jacobians", cell, params, xs, states, steps, method, chunk_size,
                     block, default_chunk="budget")
    return iter_chunks(plan, params, xs)


def step_jacobians(cell: str | Cell, params: Params, xs: torch.Tensor, *,
                   states: torch.Tensor | None = None, steps: int | Sequence[int] | None = None,
                   method: Method = "auto", chunk_size: int | None = None,
                   block: Block = "full") -> torch.Tensor:
    r"""Per-step temporal Jacobians :math:`J_t = \partial s_t / \partial s_{t-1}` of a sequence.

    .. math::  J_t[b, i, j] = \frac{\partial\, \mathrm{step}(\theta, x_t^{(b)}, s)_i}
               {\partial s_j}\Big|_{s = s_{t-1}^{(b)}}

    (NOTE [Jacobian convention]: index order (output, input); step t is evaluated at ``xs[t-1]``
    and ``states[t-1]``.)

    Args:
        cell: a built-in name or a :class:`~spectrumkit.cells.Cell`.
        params: the cell's parameters.
        xs: (T, B, D) inputs, time-major, the params' dtype.
        states: (T+1, B, S) states from :func:`~spectrumkit.unroll.unroll`; computed from a zero
            initial state (under ``no_grad``) when None.
        steps: None for all steps, an int U for the last U steps, or a list of 1-based steps.
        method: ``closed_form`` (built-ins only; NOTE [Closed-form engine]), ``jacrev`` or
            ``jacfwd`` (``torch.func`` with ``vmap`` over (step, example) pairs; any cell), or
            ``auto`` (the closed form when one exists, else ``jacrev``).
        chunk_size: compute this many steps at a time (bounds the engines' temporaries); None
            computes all at once. The result is the same for every chunk size.
        block: ``full`` for (S, S), or ``hh`` for the h→h block ∂h_t/∂h_{t-1} of shape (N, N).

    Returns:
        (len(steps), B, S, S), or (len(steps), B, N, N) for ``block="hh"``. Not detached: with the
        closed form it is differentiable with respect to ``params`` by ordinary autograd.

    For a bounded-memory stream use :func:`iter_step_jacobians`.

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("rnn", 2, 3, "normal:0.5", seed=0, dtype=torch.float64)
    >>> xs = torch.randn(4, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> J = step_jacobians("rnn", p, xs, steps=2)
    >>> J.shape
    torch.Size([2, 2, 3, 3])
    >>> bool(torch.allclose(J, reference_jacobian("rnn", p, xs, steps=2), atol=1e-12))
    True
    """
    fn = "step_jacobians"
    plan = make_plan(fn, cell, params, xs, states, steps, method, chunk_size, block,
                     default_chunk="all")
    if plan.chunk == len(plan.steps):
        return next(iter_chunks(plan, params, xs)).jacobians
    B = xs.shape[1]
    out = xs.new_empty(len(plan.steps), B, plan.size, plan.size)
    k = 0
    for chunk in iter_chunks(plan, params, xs):
        n = len(chunk.steps)
        out[k: k + n] = chunk.jacobians
        k += n
        del chunk
    return out

