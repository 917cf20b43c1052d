r"""The machinery behind ``jacobians.py`` that other modules share: validation, the plan of a
Jacobian computation, its engines and the streamed chunks, and the batched J v and Jᵀ v.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size. Conventions:
NOTE [Jacobian convention] in ``jacobians.py``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.func import jacfwd, jacrev, jvp, vjp, vmap

from ._closed_form import ClosedForm, assemble, assemble_into, graph_free
from ._output_cache import take_output
from ._unroll import batched_step, check_sequence, unroll_states
from .cells import Cell, Params, get
from .choices import JACOBIAN_BLOCKS, JACOBIAN_METHODS
from .errors import check_choice, check_float_tensor, check_positive_int, fail

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



def check_step_args(fn: str, cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor,
                     v: torch.Tensor | None = None) -> None:
    check_sequence(fn, cell, params, x.unsqueeze(0) if isinstance(x, torch.Tensor) else x)
    check_float_tensor(fn, "s", s)
    if s.dim() != 2 or s.shape[0] != x.shape[0]:
        raise fail(fn, f"s of shape (B={x.shape[0]}, S)", f"shape {tuple(s.shape)}")
    if v is not None:
        check_float_tensor(fn, "v", v)
        if v.shape != s.shape:
            raise fail(fn, f"v of the shape of s {tuple(s.shape)}", f"shape {tuple(v.shape)}")



def check_states(fn: str, states: torch.Tensor | None, xs: torch.Tensor, S: int) -> None:
    if states is None:
        return
    T, B = xs.shape[:2]
    check_float_tensor(fn, "states", states)
    if tuple(states.shape) != (T + 1, B, S):
        raise fail(fn, f"states of shape (T+1={T + 1}, B={B}, S={S})", tuple(states.shape))
    if states.dtype != xs.dtype:
        raise fail(fn, f"states of the params' dtype {xs.dtype}", states.dtype)



# NOTE [Forward-AD first use]
# The first forward-mode AD call of a process (torch.func.jvp / jacfwd) makes torch import its
# jvp decompositions, which calls the deprecated torch.jit.script internally and emits a
# DeprecationWarning that is torch's business, not the caller's (and an error under pytest's
# "error" filter). We do that import once ourselves with the warning silenced.


@functools.cache
def load_forward_ad() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from torch._decomp import decompositions_for_jvp  # noqa: F401
        except ImportError:  # a torch without it needs no preloading
            pass


def jvp_step_fn(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, v: torch.Tensor
              ) -> torch.Tensor:
    load_forward_ad()
    step = batched_step(cell)
    return jvp(lambda s_: step(params, x, s_), (s,), (v,))[1]



def vjp_step_fn(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, v: torch.Tensor
              ) -> torch.Tensor:
    step = batched_step(cell)
    pullback = vjp(lambda s_: step(params, x, s_), s)[1]
    return pullback(v)[0]



# --------------------------------------------------------------------------------------------------
# Closed forms: the cell's own (Cell.jacobian), the built-ins' through the one-pass engine
# --------------------------------------------------------------------------------------------------


def closed_form(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, block: str,
                parts: int = 1) -> torch.Tensor:
    """Trusted, differentiable: x (K, D), s (K, S) -> J (K, S, S), or (K, N, N) for block "hh",
    from ``cell.jacobian`` (not None), evaluated on ``parts`` equal slices of the rows (one per
    step: NOTE [Chunk invariance])."""
    form = cell.jacobian
    assert form is not None
    if isinstance(form, ClosedForm):
        return assemble(form, params, x, s, block, parts)
    J = torch.cat([form(params, xi, si) for xi, si in zip(x.chunk(parts), s.chunk(parts))])
    if block == "hh":
        N = s.shape[-1] // cell.state_factor
        J = J[:, :N, :N]
    return J


def closed_form_into(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, block: str,
                     out: torch.Tensor, zeroed: bool = False) -> torch.Tensor:
    """Trusted, without a graph: x (c, B, D), s (c, B, S) -> ``out`` (c, B, size, size) filled
    (NOTE [One pass over J] for the built-ins; ``zeroed`` as in ``assemble_step_into``)."""
    form = cell.jacobian
    assert form is not None
    if isinstance(form, ClosedForm):
        return assemble_into(form, params, x, s, block, out, zeroed)
    with torch.no_grad():
        for i in range(x.shape[0]):
            out[i] = closed_form(cell, params, x[i], s[i], block)
    return out


def iter_closed_form_steps(cell: Cell, params: Params, xs: torch.Tensor, states: torch.Tensor,
                           steps: list[int], block: str, size: int) -> Iterator[torch.Tensor]:
    """Trusted: yield J_t (B, size, size) for each step t, one at a time, in ONE reused buffer.

    Each yielded tensor is overwritten by the next step: the consumer reduces it first (the
    streamed spectra take its singular values). Same values as :func:`closed_form_into`.
    """
    buf, zeroed = take_output((1, xs.shape[1], size, size), xs)
    for t in steps:
        yield closed_form_into(cell, params, xs[t - 1: t], states[t - 1: t], block, buf,
                               zeroed=zeroed)[0]
        zeroed = True   # the blocks no gate reaches hold zeros and diagonals from here on


# --------------------------------------------------------------------------------------------------
# Autodiff engines, the plan and the chunks
# --------------------------------------------------------------------------------------------------


def autodiff(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, method: str,
              block: str) -> torch.Tensor:
    """Trusted: ``vmap(jacrev|jacfwd)`` over the rows; x (B, D), s (B, S) -> (B, S, S) or (B, N, N).
    """
    transform = jacrev if method == "jacrev" else jacfwd
    if method == "jacfwd":
        load_forward_ad()
    if block == "full" or cell.state_factor == 1:
        return vmap(transform(cell.step, argnums=2), in_dims=(None, 0, 0))(params, x, s)
    N = s.shape[-1] // cell.state_factor

    def h_to_h(h: torch.Tensor, x_: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        return cell.step(params, x_, torch.cat([h, rest]))[:N]

    return vmap(transform(h_to_h))(s[:, :N], x, s[:, N:])


def dense_jacobians(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, method: str,
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
    if method == "closed_form" and graph_free(params, x, s):  # NOTE [One pass over J]
        out, zeroed = take_output((c, B, size, size), x)     # NOTE [Reused outputs]
        return closed_form_into(cell, params, x, s, block, out, zeroed=zeroed)
    if method == "closed_form":
        J = closed_form(cell, params, x.reshape(c * B, -1), s.reshape(c * B, -1), block, parts=c)
        return J.view(c, B, size, size)
    out = x.new_empty(c, B, size, size)
    for i in range(c):
        out[i] = autodiff(cell, params, x[i], s[i], method, block)
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
class Plan:
    """Validated arguments shared by the streamed and the one-shot forms."""

    cell: Cell
    method: str
    block: str
    steps: list[int]
    chunk: int
    states: torch.Tensor
    size: int  # side of every returned matrix: S, or N for block "hh"


def make_plan(fn: str, cell: str | Cell, params: Params, xs: torch.Tensor,
          states: torch.Tensor | None, steps: int | Sequence[int] | None, method: str,
          chunk_size: int | None, block: str, default_chunk: str) -> Plan:
    """Validate at the door; resolve ``auto`` and the chunk; unroll when ``states`` is None."""
    cell = get(cell)
    _, N, s0 = check_sequence(fn, cell, params, xs)
    T, B = xs.shape[:2]
    S = cell.state_size(N)
    check_choice(fn, "method", method, JACOBIAN_METHODS)
    check_choice(fn, "block", block, JACOBIAN_BLOCKS)
    if chunk_size is not None:
        check_positive_int(fn, "chunk_size", chunk_size)
    if method == "closed_form" and cell.jacobian is None:
        raise fail(fn, "method 'jacrev' or 'jacfwd' for this cell: no closed form exists for "
                   f"the user-defined cell {cell.name!r}", "method='closed_form'")
    if method == "auto":
        method = "closed_form" if cell.jacobian is not None else "jacrev"
    check_states(fn, states, xs, S)
    idx = resolve_steps(fn, steps, T)
    if states is None:  # J_t needs s_{t-1}: the states up to the last step's, (idx[-1], B, S)
        with torch.no_grad():
            states = unroll_states(cell, params, xs[: idx[-1] - 1], s0)
    size = N if block == "hh" else S
    if chunk_size is None:
        per_step = B * size * size * xs.element_size()
        chunk_size = len(idx) if default_chunk == "all" else max(1, CHUNK_BYTES // per_step)
    return Plan(cell, method, block, idx, min(chunk_size, len(idx)), states, size)


def iter_chunks(plan: Plan, params: Params, xs: torch.Tensor) -> Iterator[JacobianChunk]:
    for start in range(0, len(plan.steps), plan.chunk):
        chunk = plan.steps[start: start + plan.chunk]
        t = torch.tensor(chunk, device=xs.device) - 1
        J = dense_jacobians(plan.cell, params, xs[t], plan.states[t], plan.method, plan.block,
                            plan.size)
        yield JacobianChunk(chunk, J)
        del J  # drop this frame's reference before the next chunk is computed

