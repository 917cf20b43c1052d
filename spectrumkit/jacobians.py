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

``block="hh"`` restricts everything to the h→h block ∂h_t/∂h_{t-1}, shape (N, N); for cells with
S = N it equals the full Jacobian.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.func import jacfwd, jacrev, jvp, vjp, vmap

from .cells import Cell, Params, get
from .choices import JACOBIAN_BLOCKS, JACOBIAN_METHODS, JacobianBlock, JacobianMethod
from .closed_form import (  # noqa: F401 - re-exported for spectra and the tests
    _CLOSED_FORMS,
    _closed_form,
    _closed_form_into,
    _graph_free,
    _new_output,
)
from .errors import check_choice, check_float_tensor, check_positive_int, fail
from .unroll import _unroll, batched_step, check_sequence

__all__ = [
    "BLOCKS",
    "METHODS",
    "JacobianChunk",
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

#: Default memory budget of one streamed chunk of Jacobians when ``chunk_size`` is None.
CHUNK_BYTES = 256 * 2**20


def resolve_steps(fn: str, steps: int | Sequence[int] | None, T: int) -> list[int]:
    """Turn a ``steps`` argument into a sorted list of 1-based step indices in 1..T.

    ``None`` means all steps; an int U means the last U steps (T-U+1..T); a sequence means those.
    """
    if steps is None:
        return list(range(1, T + 1))
    if isinstance(steps, bool):
        raise fail(fn, f"steps None, an int in 1..{T}, or a list of steps in 1..{T}", repr(steps))
    if isinstance(steps, int):
        if not 1 <= steps <= T:
            raise fail(fn, f"steps (last U) in 1..{T}", steps)
        return list(range(T - steps + 1, T + 1))
    try:
        out = [int(t) for t in steps]
    except (TypeError, ValueError):
        raise fail(fn, f"steps None, an int, or a list of steps in 1..{T}", repr(steps)) from None
    if not out:
        raise fail(fn, f"at least one step in 1..{T}", "an empty list")
    bad = [t for t in out if not 1 <= t <= T]
    if bad:
        raise fail(fn, f"steps in the valid range 1..{T}", bad)
    if len(set(out)) != len(out):
        raise fail(fn, f"distinct steps in 1..{T}", f"duplicates in {out}")
    return sorted(out)


# --------------------------------------------------------------------------------------------------
# Products J v and Jᵀ v
# --------------------------------------------------------------------------------------------------


def _check_step_args(fn: str, cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor,
                     v: torch.Tensor | None = None) -> None:
    check_sequence(fn, cell, params, x.unsqueeze(0) if isinstance(x, torch.Tensor) else x)
    check_float_tensor(fn, "s", s)
    if s.dim() != 2 or s.shape[0] != x.shape[0]:
        raise fail(fn, f"s of shape (B={x.shape[0]}, S)", f"shape {tuple(s.shape)}")
    if v is not None:
        check_float_tensor(fn, "v", v)
        if v.shape != s.shape:
            raise fail(fn, f"v of the shape of s {tuple(s.shape)}", f"shape {tuple(v.shape)}")


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
    _check_step_args("jvp_step", cell, params, x, s, v)
    return _jvp_step(cell, params, x, s, v)


# NOTE [Forward-AD first use]
# The first forward-mode AD call of a process (torch.func.jvp / jacfwd) makes torch import its
# jvp decompositions, which calls the deprecated torch.jit.script internally and emits a
# DeprecationWarning that is torch's business, not the caller's (and an error under pytest's
# "error" filter). We do that import once ourselves with the warning silenced.


@functools.cache
def _load_forward_ad() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from torch._decomp import decompositions_for_jvp  # noqa: F401
        except ImportError:  # a torch without it needs no preloading
            pass


def _jvp_step(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, v: torch.Tensor
              ) -> torch.Tensor:
    _load_forward_ad()
    step = batched_step(cell)
    return jvp(lambda s_: step(params, x, s_), (s,), (v,))[1]


def vjp_step(cell: str | Cell, params: Params, x: torch.Tensor, s: torch.Tensor, v: torch.Tensor
             ) -> torch.Tensor:
    r"""Batched vector-Jacobian product :math:`J^\top v` without forming J.

    Args:
        x: (B, D); s: (B, S); v: (B, S) cotangents.

    Returns:
        (B, S) with ``out[b] = J(x[b], s[b]).T @ v[b]``; differentiable with respect to ``params``.
    """
    cell = get(cell)
    _check_step_args("vjp_step", cell, params, x, s, v)
    return _vjp_step(cell, params, x, s, v)


def _vjp_step(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, v: torch.Tensor
              ) -> torch.Tensor:
    step = batched_step(cell)
    pullback = vjp(lambda s_: step(params, x, s_), s)[1]
    return pullback(v)[0]


# --------------------------------------------------------------------------------------------------
# The slow reference
# --------------------------------------------------------------------------------------------------


def _check_states(fn: str, states: torch.Tensor | None, xs: torch.Tensor, S: int) -> None:
    if states is None:
        return
    T, B = xs.shape[:2]
    check_float_tensor(fn, "states", states)
    if tuple(states.shape) != (T + 1, B, S):
        raise fail(fn, f"states of shape (T+1={T + 1}, B={B}, S={S})", tuple(states.shape))
    if states.dtype != xs.dtype:
        raise fail(fn, f"states of the params' dtype {xs.dtype}", states.dtype)


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
    _check_states(fn, states, xs, S)
    if states is None:
        with torch.no_grad():
            states = _unroll(cell, params, xs, s0)
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


# --------------------------------------------------------------------------------------------------
# Closed forms for the built-in cells (spectrumkit/closed_form.py)
# --------------------------------------------------------------------------------------------------


def has_closed_form(cell: str | Cell) -> bool:
    """Whether ``method="closed_form"`` exists for ``cell`` (the built-ins only).

    >>> has_closed_form("gru"), has_closed_form("lstm")
    (True, True)
    """
    return get(cell) in _CLOSED_FORMS


# --------------------------------------------------------------------------------------------------
# Autodiff engines and the public entry points
# --------------------------------------------------------------------------------------------------


def _autodiff(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, method: str,
              block: str) -> torch.Tensor:
    """Trusted: ``vmap(jacrev|jacfwd)`` over the rows; x (B, D), s (B, S) -> (B, S, S) or (B, N, N).
    """
    transform = jacrev if method == "jacrev" else jacfwd
    if method == "jacfwd":
        _load_forward_ad()
    if block == "full" or cell.state_factor == 1:
        return vmap(transform(cell.step, argnums=2), in_dims=(None, 0, 0))(params, x, s)
    N = s.shape[-1] // cell.state_factor

    def h_to_h(h: torch.Tensor, x_: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        return cell.step(params, x_, torch.cat([h, rest]))[:N]

    return vmap(transform(h_to_h))(s[:, :N], x, s[:, N:])


def _jacobians(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, method: str,
               block: str, size: int) -> torch.Tensor:
    """Trusted: the Jacobians of one chunk, x (c, B, D), s (c, B, S) -> (c, B, size, size).

    NOTE [Chunk invariance]
    Every matmul runs on exactly one step's B rows, whatever the chunk: a GEMM's rounding can
    depend on how many rows it is given, so batching the matmuls of several steps would make the
    last bits of J (and of its singular values) depend on ``chunk_size``. The closed form computes
    its terms step by step and assembles the chunk elementwise in one go; the autodiff engines run
    one ``vmap`` per step into a preallocated chunk. Chunked and unchunked results are identical.
    """
    c, B = x.shape[:2]
    if method == "closed_form" and _graph_free(params, x, s):  # NOTE [One pass over J]
        return _closed_form_into(cell, params, x, s, block, _new_output((c, B, size, size), x),
                                 zeroed=True)
    if method == "closed_form":
        J = _closed_form(cell, params, x.reshape(c * B, -1), s.reshape(c * B, -1), block, parts=c)
        return J.view(c, B, size, size)
    out = x.new_empty(c, B, size, size)
    for i in range(c):
        out[i] = _autodiff(cell, params, x[i], s[i], method, block)
    return out


class JacobianChunk(NamedTuple):
    """One chunk of a streamed Jacobian computation.

    Attributes:
        steps: the 1-based steps of this chunk, ascending.
        jacobians: (len(steps), B, S, S), or (len(steps), B, N, N) for ``block="hh"``.
    """

    steps: list[int]
    jacobians: torch.Tensor


@dataclass(frozen=True)
class _Plan:
    """Validated arguments shared by the streamed and the one-shot forms."""

    cell: Cell
    method: str
    block: str
    steps: list[int]
    chunk: int
    states: torch.Tensor
    size: int  # side of every returned matrix: S, or N for block "hh"


def _plan(fn: str, cell: str | Cell, params: Params, xs: torch.Tensor,
          states: torch.Tensor | None, steps: int | Sequence[int] | None, method: str,
          chunk_size: int | None, block: str, default_chunk: str) -> _Plan:
    """Validate at the door; resolve ``auto`` and the chunk; unroll when ``states`` is None."""
    cell = get(cell)
    _, N, s0 = check_sequence(fn, cell, params, xs)
    T, B = xs.shape[:2]
    S = cell.state_size(N)
    check_choice(fn, "method", method, METHODS)
    check_choice(fn, "block", block, BLOCKS)
    if chunk_size is not None:
        check_positive_int(fn, "chunk_size", chunk_size)
    if method == "closed_form" and cell not in _CLOSED_FORMS:
        raise fail(fn, "method 'jacrev' or 'jacfwd' for this cell: no closed form exists for "
                   f"the user-defined cell {cell.name!r}", "method='closed_form'")
    if method == "auto":
        method = "closed_form" if cell in _CLOSED_FORMS else "jacrev"
    _check_states(fn, states, xs, S)
    idx = resolve_steps(fn, steps, T)
    if states is None:
        with torch.no_grad():
            states = _unroll(cell, params, xs[: idx[-1]], s0)
    size = N if block == "hh" else S
    if chunk_size is None:
        per_step = B * size * size * xs.element_size()
        chunk_size = len(idx) if default_chunk == "all" else max(1, CHUNK_BYTES // per_step)
    return _Plan(cell, method, block, idx, min(chunk_size, len(idx)), states, size)


def _iter_chunks(plan: _Plan, params: Params, xs: torch.Tensor) -> Iterator[JacobianChunk]:
    for start in range(0, len(plan.steps), plan.chunk):
        chunk = plan.steps[start: start + plan.chunk]
        t = torch.tensor(chunk, device=xs.device) - 1
        J = _jacobians(plan.cell, params, xs[t], plan.states[t], plan.method, plan.block, plan.size)
        yield JacobianChunk(chunk, J)
        del J  # drop this frame's reference before the next chunk is computed


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
    plan = _plan("iter_step_jacobians", cell, params, xs, states, steps, method, chunk_size, block,
                 default_chunk="budget")
    return _iter_chunks(plan, params, xs)


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
    plan = _plan(fn, cell, params, xs, states, steps, method, chunk_size, block,
                 default_chunk="all")
    if plan.chunk == len(plan.steps):
        return next(_iter_chunks(plan, params, xs)).jacobians
    B = xs.shape[1]
    out = xs.new_empty(len(plan.steps), B, plan.size, plan.size)
    k = 0
    for chunk in _iter_chunks(plan, params, xs):
        n = len(chunk.steps)
        out[k: k + n] = chunk.jacobians
        k += n
        del chunk
    return out
