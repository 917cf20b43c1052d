r"""The per-step Jacobians as operators of the Golub–Kahan–Lanczos kernel, and the runs at a step.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, U = selected steps,
P = probes per example, m = Lanczos steps, k = extreme singular values, R = rows (B·P).

Everything here reaches :math:`J_t` only through the products :math:`J v` (one JVP,
:func:`~spectrumkit.jacobians.jvp_step`) and :math:`J^\top u` (one VJP), handed to
:func:`~spectrumkit.spectra.golub_kahan_lanczos` as its ``(matvec, rmatvec)`` pair, so it works for
any cell whose step supports forward- and reverse-mode AD, and it holds O(R·m·S) numbers, never
B·S². Shared by :mod:`~spectrumkit.spectra.extremes` and :mod:`~spectrumkit.spectra.slq`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.func import vjp

from .._steps import check_states, jvp_step_fn
from .._unroll import batched_step, check_sequence, unroll_states
from ..cells import Cell, get
from ..errors import check_choice, fail
from ..jacobians import BLOCKS, CHUNK_BYTES, resolve_steps
from .krylov import MatVec, RitzValues, Stop, golub_kahan_lanczos, ritz_values

Params = Mapping[str, torch.Tensor]


def check_tol(fn: str, tol: object) -> float:
    """A relative residual tolerance: a finite number > 0."""
    if (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol)
            or tol <= 0):
        raise fail(fn, "tol to be a finite number > 0", repr(tol))
    return float(tol)


def jacobian_operators(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, block: str
                       ) -> tuple[MatVec, MatVec, int]:
    """J v and Jᵀ u for the rows (x (R, D), s (R, S)); the pullback is built once and reused.

    The batched contract of :func:`~spectrumkit.spectra.golub_kahan_lanczos`: (R, S) -> (R, S),
    row r applying the Jacobian of example r. For ``block="hh"`` (N, N):
    J_hh v = (J [v; 0])[:N] and J_hhᵀ u = (Jᵀ [u; 0])[:N].
    """
    step = batched_step(cell)
    pullback = vjp(lambda s_: step(params, x, s_), s)[1]
    S = s.shape[-1]
    if block == "full" or cell.state_factor == 1:
        return (lambda v: jvp_step_fn(cell, params, x, s, v)), (lambda u: pullback(u)[0]), S
    N = S // cell.state_factor

    def pad(w: torch.Tensor) -> torch.Tensor:
        return torch.cat([w, w.new_zeros(w.shape[0], S - N)], dim=-1)

    return ((lambda v: jvp_step_fn(cell, params, x, s, pad(v))[:, :N]),
            (lambda u: pullback(pad(u))[0][:, :N]), N)


def check_jvp(fn: str, cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor) -> None:
    """The matrix-free path needs forward-mode AD through ``cell.step``: try one JVP and turn a
    failure into a one-line SpectrumkitError."""
    try:
        jvp_step_fn(cell, params, x[:1], s[:1], torch.ones_like(s[:1]))
    except (RuntimeError, NotImplementedError, AssertionError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise fail(fn, f"a cell whose step supports forward-mode AD (torch.func.jvp) for the "
                   f"matrix-free method; cell {cell.name!r} does not", f"{type(e).__name__}: "
                   f"{first}") from None


@dataclass(frozen=True)
class Setup:
    """The checked inputs of a matrix-free call: the cell, detached params, the selected steps
    (1-based), the states (T'+1, B, S) and the matrices' size (S, or N for ``block="hh"``)."""

    cell: Cell
    params: dict[str, torch.Tensor]
    steps: list[int]
    states: torch.Tensor
    size: int


def setup(fn: str, cell: str | Cell, params: Params, xs: torch.Tensor,
          states: torch.Tensor | None, steps: int | Sequence[int] | None, block: str, k: int
          ) -> Setup:
    """Validate the inputs of a matrix-free call, unroll the states if not given."""
    cell = get(cell)
    _, N, s0 = check_sequence(fn, cell, params, xs)
    T = xs.shape[0]
    S = cell.state_size(N)
    check_choice(fn, "block", block, BLOCKS)
    check_states(fn, states, xs, S)
    idx = resolve_steps(fn, steps, T)
    size = N if block == "hh" else S
    if k >= size:
        raise fail(fn, f"k < {'N' if block == 'hh' else 'S'}={size} (the matrices are "
                   f"{size}×{size}; use a dense method for all singular values)", f"k={k}")
    params = {name: t.detach() for name, t in params.items()}
    with torch.no_grad():
        if states is None:
            states = unroll_states(cell, params, xs[: idx[-1]], s0)
    states = states.detach()
    check_jvp(fn, cell, params, xs[idx[0] - 1], states[idx[0] - 1])
    return Setup(cell, params, idx, states, size)


def probes(B: int, P: int, S: int, generator: torch.Generator, like: torch.Tensor
           ) -> torch.Tensor:
    """(B·P, S) unit probes; row b·P + p is example b's probe p (NOTE [SLQ density]).

    The P probes of an example are orthonormal (Haar: the Q factor of a Gaussian (S, P) matrix,
    its columns fixed in sign; blocks of S when P > S). Each one is uniform on the sphere, so
    E[v vᵀ] = I/S and the estimates stay unbiased, while orthogonality lowers the variance of
    their average by about (S − P)/S: with P = S it is exact.
    """
    out = []
    for _ in range(B):
        cols, left = [], P
        while left > 0:
            c = min(left, S)
            q, r = torch.linalg.qr(torch.randn(S, c, generator=generator, dtype=torch.float64))
            cols.append(q * torch.where(torch.diagonal(r) < 0, -1.0, 1.0))
            left -= c
        out.append(torch.cat(cols, dim=1).T)
    return torch.cat(out).to(like)


def row_chunk(m: int, size: int, element_size: int) -> int:
    """Rows per chunk so that the two bases (2·rows·m·size numbers) fit in CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (2 * m * size * element_size))


def ritz_runs(st: Setup, xs: torch.Tensor, t: int, P: int, m: int, block: str,
              generator: torch.Generator, stop: Stop | None = None) -> list[RitzValues]:
    """The Ritz values of B·P Golub–Kahan–Lanczos runs at step t (row b·P + p = example b,
    probe p), in row chunks: one :class:`~spectrumkit.spectra.RitzValues` (rows, m') per chunk."""
    B = xs.shape[1]
    x = xs[t - 1].repeat_interleave(P, 0)
    s = st.states[t - 1].repeat_interleave(P, 0)
    v1 = probes(B, P, st.size, generator, x)
    chunk = row_chunk(m, st.size, x.element_size())
    out = []
    for a in range(0, B * P, chunk):
        rows = slice(a, a + chunk)
        mv, rmv, _ = jacobian_operators(st.cell, st.params, x[rows], s[rows], block)
        bd = golub_kahan_lanczos(mv, rmv, v1[rows], m, generator=generator, stop=stop)
        out.append(ritz_values(bd.alpha, bd.beta))
    return out


#: (top, its residual, converged, bottom, its residual, converged): (rows, k) or (U, B, k) each.
Extremes = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                 torch.Tensor]


def extremes(ritz: RitzValues, k: int, tol: float) -> Extremes:
    """The k top (descending) and k bottom (ascending) Ritz values of each row, (rows, k) each."""
    top, top_r = ritz.sigma[:, :k], ritz.residual[:, :k]
    bot, bot_r = ritz.sigma[:, -k:].flip(-1), ritz.residual[:, -k:].flip(-1)
    return top, top_r, top_r <= tol, bot, bot_r, bot_r <= tol


def concat_extremes(parts: Sequence[Extremes]) -> Extremes:
    """:func:`extremes` of row chunks joined along the rows."""
    top, top_r, top_c, bot, bot_r, bot_c = (torch.cat([p[i] for p in parts]) for i in range(6))
    return top, top_r, top_c, bot, bot_r, bot_c


def stack_extremes(parts: Sequence[Extremes]) -> Extremes:
    """:func:`extremes` of every selected step, stacked to (U, B, k)."""
    top, top_r, top_c, bot, bot_r, bot_c = (torch.stack([p[i] for p in parts]) for i in range(6))
    return top, top_r, top_c, bot, bot_r, bot_c
