r"""Run a cell over a sequence: :math:`s_t = \mathrm{step}(\theta, x_t, s_{t-1})`, t = 1..T.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size.

Private by file name: the public face is the function :func:`spectrumkit.unroll`; the other plain
names (``batched_step``, ``check_sequence``, ``unroll_states``) serve the modules of the package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch.func import vmap

from .cells import Cell, check_params, get
from .errors import check_float_tensor, fail

__all__ = ["batched_step", "check_sequence", "unroll", "unroll_states"]


def batched_step(cell: Cell) -> Callable[[Mapping[str, torch.Tensor], torch.Tensor, torch.Tensor],
                                         torch.Tensor]:
    """``step`` over a leading batch dimension: ``(params, x (B, D), s (B, S)) -> (B, S)``.

    Built-in cells broadcast natively; user cells are wrapped in ``vmap``.
    """
    if cell.broadcasts:
        return cell.step
    return vmap(cell.step, in_dims=(None, 0, 0))


def check_sequence(fn: str, cell: Cell, params: Mapping[str, torch.Tensor], xs: torch.Tensor,
                   s0: torch.Tensor | None = None) -> tuple[int, int, torch.Tensor]:
    """Validate ``(params, xs (T, B, D), s0)``; return (D, N, s0 (B, S)) with s0 filled in."""
    check_float_tensor(fn, "xs", xs)
    if xs.dim() != 3:
        raise fail(fn, "xs of shape (T, B, D) (time-major)", f"shape {tuple(xs.shape)}")
    D, N = check_params(fn, cell, params)
    if xs.shape[-1] != D:
        raise fail(fn, f"xs of shape (T, B, D={D}) to match params", f"shape {tuple(xs.shape)}")
    if xs.shape[0] < 1 or xs.shape[1] < 1:
        raise fail(fn, "xs with at least one step and one example", f"shape {tuple(xs.shape)}")
    dtype = next(iter(params.values())).dtype
    if xs.dtype != dtype:
        raise fail(fn, f"xs of the params' dtype {dtype}", xs.dtype)
    S = cell.state_size(N)
    B = xs.shape[1]
    if s0 is None:
        s0 = xs.new_zeros(B, S)
    else:
        check_float_tensor(fn, "s0", s0)
        if s0.shape not in ((S,), (B, S)):
            raise fail(fn, f"s0 of shape ({S},) or ({B}, {S})", f"shape {tuple(s0.shape)}")
        s0 = s0.to(dtype).expand(B, S)
    return D, N, s0


def unroll_states(cell: Cell, params: Mapping[str, torch.Tensor], xs: torch.Tensor,
                  s0: torch.Tensor) -> torch.Tensor:
    """Trusted core of :func:`unroll`: xs (T, B, D), s0 (B, S) -> (T+1, B, S)."""
    step = batched_step(cell)
    states = [s0]
    s = s0
    for t in range(xs.shape[0]):
        s = step(params, xs[t], s)
        states.append(s)
    return torch.stack(states)


def unroll(cell: str | Cell, params: Mapping[str, torch.Tensor], xs: torch.Tensor,
           s0: torch.Tensor | None = None) -> torch.Tensor:
    r"""All states of ``cell`` run over ``xs``, time-major.

    Args:
        cell: a built-in name or a :class:`~spectrumkit.cells.Cell`.
        params: the cell's parameters.
        xs: inputs of shape (T, B, D), time-major.
        s0: initial state of shape (S,) or (B, S); zero by default.

    Returns:
        States of shape (T+1, B, S): ``out[0] = s0`` and
        ``out[t] = step(params, xs[t-1], out[t-1])``.

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("rnn", 2, 3, "normal:0.5", seed=0, dtype=torch.float64)
    >>> xs = torch.ones(4, 1, 2, dtype=torch.float64)
    >>> s = unroll("rnn", p, xs)
    >>> bool(torch.allclose(s[1, 0], torch.tanh(p["weight_ih"] @ xs[0, 0])))
    True
    """
    cell = get(cell)
    _, _, s0 = check_sequence("unroll", cell, params, xs, s0)
    return unroll_states(cell, params, xs, s0)
