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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.func import jacfwd, jacrev, jvp, vjp, vmap

from . import cells as _cells
from .cells import Cell, Params, get
from .choices import JACOBIAN_BLOCKS, JACOBIAN_METHODS, JacobianBlock, JacobianMethod
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
# Closed forms for the built-in cells
# --------------------------------------------------------------------------------------------------
# NOTE [Closed-form engine]
# Every built-in cell's Jacobian is a sum of gate terms plus a diagonal part:
#
#     J[b, o, n, s] = Σ_g β[b, o, g, n] · M[g, n, s]          einsum "bogn,gns->bons"
#                   + Σ_p α[b, o, p, n] · [s == p·N + n]       (diagonal blocks, o/p in {h, c})
#
# where M[g] = ∂(preactivation of gate g)/∂s_{t-1} is a slice of the recurrent weights (N, C) that
# touches the first C state entries, and β[b, o, g, n] = ∂(state block o, unit n)/∂(preactivation
# of gate g, unit n) is elementwise. A cell therefore only defines β, α (its "terms") and M; the
# engine below is shared. Per cell, with a = preactivations, σ the logistic, ' derivatives:
#
#   rnn / rnn_relu  h' = φ(a):        β_h = φ'(a);  M_h = W_hh;  no α.  relu' = [a > 0] (torch's).
#   gru             h' = (1-z)n + zh, n = tanh(a_n + r·(W_hn h + b_hn)):
#                   β_r = (1-z)(1-n²)(W_hn h + b_hn) r(1-r), β_z = (h-n) z(1-z),
#                   β_n = (1-z)(1-n²) r;  M = W_hh split in (r, z, n);  α_hh = z.
#   lstm            c' = σ(f)c + σ(i)tanh(g), h' = σ(o)tanh(c'), with d = σ(o)(1 - tanh²c'):
#                   β_c = (tanh g·σ'(i), c·σ'(f), σ(i)(1 - tanh²g), 0),
#                   β_h = (d β_c,i, d β_c,f, d β_c,g, tanh c'·σ'(o));
#                   α_cc = σ(f), α_hc = d σ(f);  M = W_hh split in (i, f, g, o), C = N (h only).
#   peephole_lstm   as lstm, with M = [W_hh | W_ch] per gate, C = 2N (the gates see c too).
#   gru_cho         h' = (1-z)n + zh, n = tanh(a_n), a_n = W_in x + b_in + W_hn (r ⊙ h) + b_hn
#                   (NOTE [GRU with the reset before the product] in cells.py). See below.
#
# The reset before the product (gru_cho) is the one term that is not "elementwise × shared
# matrix". By the chain rule, with r = σ(a_r), z = σ(a_z), u = r ⊙ h:
#
#     ∂h'/∂h = diag(z)                                   (h' = ... + z h, h held)
#            + diag((h - n) z(1-z)) W_hz                 (through z: ∂h'/∂z = h - n)
#            + diag((1-z)(1-n²)) W_hn ∂u/∂h              (through n)
#     ∂u/∂h  = diag(r) + diag(h) ∂r/∂h = diag(r) + diag(h r(1-r)) W_hr.
#
# So α_hh = z, β_z = (h - n) z(1-z), β_n = (1-z)(1-n²), and gate n's matrix is the PER-EXAMPLE
# product M_n A_b with A_b = diag(ρ_1) + diag(ρ_2) M_r, ρ = (r, h r(1-r)) (both (B, N)); r has no
# term of its own (β_r = 0): it acts only through A_b. A cell declares this with
# ``reset=(n, r)`` (gate indices) and returns ρ as the third item of its terms. The engine forms
# M_n A_b = M_n diag(ρ_1) + (M_n diag(ρ_2)) M_r one slice of rows (one step) at a time: one GEMM
# of (B·N, N) × (N, N) per step, so the chunk invariance below holds, and the temporary is one
# step's (B, N, N), the size of that step's Jacobians. Cost: B·N³ per step, the price of the
# matrix product in the Jacobian itself (jacrev pays the same order). Requires S = C = N.
#
# The contraction is accumulated gate by gate in place (G ≤ 4 passes) rather than with
# torch.einsum: einsum returns an n-major layout, and making it (B, S, S)-contiguous would copy the
# whole chunk, doubling the peak memory that the streamed spectra bound. Everything is ordinary
# autograd-able torch code, so the closed form is differentiable with respect to params and s.


@dataclass(frozen=True)
class _ClosedForm:
    """A built-in cell's derivative definition (NOTE [Closed-form engine]).

    terms(params, x (B, D), s (B, S)) -> (β (B, O, G, N), α (B, O, O, N) or None,
    ρ (B, 2, N) or None); mats(params, N) -> M (G, N, C), acting on the first C entries of s.
    reset: (gate n, gate r) when gate n's matrix acts on r ⊙ h (then ρ = (r, h r(1-r))), else None.
    """

    terms: Callable[[Params, torch.Tensor, torch.Tensor],
                    tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]
    mats: Callable[[Params, int], torch.Tensor]
    reset: tuple[int, int] | None = None


def _rnn_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    h = torch.tanh(_cells._rnn_preact(p, x, s))
    return (1 - h * h)[:, None, None, :], None, None


def _rnn_relu_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    a = _cells._rnn_preact(p, x, s)
    return (a > 0).to(a.dtype)[:, None, None, :], None, None


def _gru_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    i_r, i_z, i_n = F.linear(x, p["weight_ih"], p["bias_ih"]).chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(s, p["weight_hh"], p["bias_hh"]).chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    dn = (1 - z) * (1 - n * n)                                  # ∂h'/∂(preactivation of n)
    beta = torch.stack([dn * h_n * r * (1 - r), (s - n) * z * (1 - z), dn * r], dim=-2)
    return beta[:, None], z[:, None, None, :], None


def _gru_cho_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    r, z, a_n, _ = _cells._gru_cho_preacts(p, x, s)
    n = torch.tanh(a_n)
    dn = (1 - z) * (1 - n * n)                                  # ∂h'/∂(preactivation of n)
    beta = torch.stack([torch.zeros_like(z), (s - n) * z * (1 - z), dn], dim=-2)
    # ∂(r ⊙ h)/∂h = diag ρ₁ + diag ρ₂ W_hr
    rho = torch.stack([r, s * r * (1 - r)], dim=-2)
    return beta[:, None], z[:, None, None, :], rho


def _lstm_terms_from_gates(gates: torch.Tensor, c: torch.Tensor):
    i, f, g, o = gates.chunk(4, dim=-1)
    si, sf, tg, so = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    tc = torch.tanh(sf * c + si * tg)
    d = so * (1 - tc * tc)                                      # ∂h'/∂c'
    bc = [tg * si * (1 - si), c * sf * (1 - sf), si * (1 - tg * tg), torch.zeros_like(c)]
    bh = [d * bc[0], d * bc[1], d * bc[2], tc * so * (1 - so)]
    beta = torch.stack([torch.stack(bh, dim=-2), torch.stack(bc, dim=-2)], dim=1)  # (B, 2, 4, N)
    zero = torch.zeros_like(sf)
    alpha = torch.stack([torch.stack([zero, d * sf], dim=1), torch.stack([zero, sf], dim=1)], dim=1)
    return beta, alpha, None                                    # α (B, o=2, p=2, N)


def _lstm_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    return _lstm_terms_from_gates(_cells._lstm_gates(p, x, s), _cells._split_state(s)[1])


def _peephole_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    return _lstm_terms_from_gates(_cells._peephole_gates(p, x, s), _cells._split_state(s)[1])


def _gate_blocks(name: str, G: int) -> Callable[[Params, int], torch.Tensor]:
    return lambda p, N: p[name].reshape(G, N, N)


def _peephole_mats(p: Params, N: int) -> torch.Tensor:
    return torch.cat([p["weight_hh"].reshape(4, N, N), p["weight_ch"].reshape(4, N, N)], dim=-1)


# Keyed by the built-in Cell objects themselves (Cell compares by identity), so a user cell that
# happens to be called "gru" never picks up the GRU's closed form.
_CLOSED_FORMS: dict[Cell, _ClosedForm] = {
    _cells.RNN: _ClosedForm(_rnn_terms, _gate_blocks("weight_hh", 1)),
    _cells.RNN_RELU: _ClosedForm(_rnn_relu_terms, _gate_blocks("weight_hh", 1)),
    _cells.LSTM: _ClosedForm(_lstm_terms, _gate_blocks("weight_hh", 4)),
    _cells.PEEPHOLE_LSTM: _ClosedForm(_peephole_terms, _peephole_mats),
    _cells.GRU: _ClosedForm(_gru_terms, _gate_blocks("weight_hh", 3)),
    _cells.GRU_CHO: _ClosedForm(_gru_cho_terms, _gate_blocks("weight_hh", 3), reset=(2, 0)),
}


def has_closed_form(cell: str | Cell) -> bool:
    """Whether ``method="closed_form"`` exists for ``cell`` (the built-ins only).

    >>> has_closed_form("gru"), has_closed_form("lstm")
    (True, True)
    """
    return get(cell) in _CLOSED_FORMS


def _closed_form(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, block: str,
                 parts: int = 1) -> torch.Tensor:
    """Trusted: x (K, D), s (K, S) -> J (K, S, S), or (K, N, N) for block "hh".

    The terms (which contain the matmuls of the gate preactivations) are computed on ``parts``
    equal slices of the rows, the assembly on all rows at once: with one slice per step the result
    is bit-identical for every chunking (NOTE [Chunk invariance]).
    """
    form = _CLOSED_FORMS[cell]
    pieces = [form.terms(params, xi, si) for xi, si in zip(x.chunk(parts), s.chunk(parts))]
    beta = torch.cat([b for b, _, _ in pieces])
    alphas = [a for _, a, _ in pieces if a is not None]  # a form has α on every slice or none
    alpha = torch.cat(alphas) if alphas else None
    K, Bo, G, N = beta.shape  # Bo: output state blocks (h, or h and c)
    M = form.mats(params, N)
    if block == "hh":
        beta, M, Bo = beta[:, :1], M[..., :N], 1
        alpha = None if alpha is None else alpha[:, :1, :1]
    S, C = Bo * N, M.shape[-1]
    J = beta.new_zeros(K, Bo, N, S)
    Jc = J[..., :C]
    skip = () if form.reset is None else form.reset
    for g in range(G):                                          # "bogn,gns->bons", in place
        if g not in skip:
            Jc.addcmul_(beta[:, :, g, :, None], M[g])
    if form.reset is not None:                  # gate n acts on r ⊙ h: its matrix is M_n A_b
        gn, gr = form.reset
        start = 0
        rhos = [rho for _, _, rho in pieces if rho is not None]
        for rho in rhos:                        # one slice of rows (one step) at a time
            k = rho.shape[0]
            MA = M[gn] * rho[:, 0, None, :]                     # M_n diag(ρ₁)       (k, N, C)
            MA += (M[gn] * rho[:, 1, None, :]) @ M[gr]          # (M_n diag(ρ₂)) M_r
            Jc[start: start + k].addcmul_(beta[start: start + k, :, gn, :, None], MA[:, None])
            start += k
    if alpha is not None:                                   # J[b, o, n, p·N + n] += α[b, o, p, n]
        J.view(K, Bo, N, Bo, N).diagonal(dim1=2, dim2=4).add_(alpha)
    return J.view(K, S, S)


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
