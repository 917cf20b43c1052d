r"""Per-step temporal Jacobians :math:`J_t = \partial s_t / \partial s_{t-1}` and their products.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size.

NOTE [Jacobian convention]
``J_t`` has shape (S, S) with index order (output, input): ``J_t[i, j] = ∂s_t[i] / ∂s_{t-1}[j]``.
Steps are numbered 1..T: ``J_t`` is evaluated at ``(x_t, s_{t-1})``, i.e. at ``xs[t-1]`` and
``states[t-1]`` in the time-major arrays returned by :func:`~spectrumkit.unroll.unroll`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.func import jvp, vjp

from .cells import Cell, get
from .errors import check_float_tensor, fail
from .unroll import _unroll, batched_step, check_sequence

__all__ = ["jvp_step", "reference_jacobian", "resolve_steps", "vjp_step"]

Params = Mapping[str, torch.Tensor]


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
        (B, S) with ``out[b] = J(x[b], s[b]) @ v[b]``. Differentiable with respect to ``params`` (and
        ``s``) by ordinary autograd, which is how the paper's score differentiates χ.
    """
    cell = get(cell)
    _check_step_args("jvp_step", cell, params, x, s, v)
    return _jvp_step(cell, params, x, s, v)


def _jvp_step(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, v: torch.Tensor
              ) -> torch.Tensor:
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
    _, pullback = vjp(lambda s_: step(params, x, s_), s)
    return pullback(v)[0]


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
    if states is None:
        with torch.no_grad():
            states = _unroll(cell, params, xs, s0)
    elif tuple(states.shape) != (T + 1, B, S):
        raise fail(fn, f"states of shape (T+1={T + 1}, B={B}, S={S})", tuple(states.shape))
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
