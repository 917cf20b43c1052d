r"""Finite-time Lyapunov exponents of a cell driven by a sequence (QR / Benettin method).

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, k = exponents.
"""

from __future__ import annotations

import torch
from torch.func import vmap

from .._steps import jvp_step_fn
from .._unroll import batched_step, check_sequence
from ..cells import Cell, Params, get
from ..errors import check_positive_int, fail
from ..init import make_generator

__all__ = ["lyapunov_exponents"]


def lyapunov_exponents(cell: str | Cell, params: Params, xs: torch.Tensor, *, k: int | None = None,
                       reorth_every: int = 1, warmup: int = 0, s0: torch.Tensor | None = None,
                       generator: torch.Generator | None = None, seed: int | None = None
                       ) -> torch.Tensor:
    r"""Finite-time Lyapunov exponents of the trajectories driven by ``xs`` (QR / Benettin method).

    With an orthonormal :math:`Q_0` (S, k), for t = 1..T: :math:`Q \leftarrow J_t Q` (k JVPs, so
    J is never formed and any cell works through autodiff); every ``reorth_every`` steps (and at
    step T) :math:`Q R = Q` by QR with the signs fixed so that :math:`\mathrm{diag}\,R \ge 0`. After
    ``warmup`` steps the exponents are

    .. math::  \lambda_i = \frac{1}{T - \mathrm{warmup}} \sum \log R_{ii}
               \quad\text{(natural log per step)},

    sorted largest first (Benettin et al. 1980, Meccanica 15; Eckmann & Ruelle 1985, Rev. Mod.
    Phys. 57). For a linear cell :math:`s' = A s` with A normal they are :math:`\log|\lambda_i(A)|`
    (exactly when A is diagonal or a multiple of an orthogonal matrix). A zero singular direction
    gives −inf. Not differentiable (computed under ``no_grad``).

    Args:
        xs: (T, B, D). s0: (S,) or (B, S) initial state, zero by default.
        k: number of exponents, 1..S (default S).
        reorth_every: steps between QR re-orthonormalizations (1 is the most stable).
        warmup: steps run (and re-orthonormalized at the end) before accumulating, 0..T-1.
        generator, seed: with ``k < S`` exactly one is required: the start :math:`Q_0` is then a
            random orthonormal (S, k) frame (an identity slice could miss the leading directions).
            With ``k = S`` and neither given, :math:`Q_0 = I`.

    Returns:
        (B, k) exponents per trajectory, largest first, in the params' dtype.

    >>> import torch
    >>> from spectrumkit.cells import make_cell
    >>> lin = make_cell("lin", lambda p, x, s: p["A"] @ s + p["B"] @ x,
    ...                 lambda D, N: {"A": (N, N), "B": (N, D)})
    >>> p = {"A": torch.diag(torch.tensor([0.5, 2.0], dtype=torch.float64)),
    ...      "B": torch.zeros(2, 1, dtype=torch.float64)}
    >>> lyapunov_exponents(lin, p, torch.zeros(10, 1, 1, dtype=torch.float64)).exp().tolist()
    [[2.0, 0.5]]
    """
    fn = "lyapunov_exponents"
    cell = get(cell)
    _, N, s = check_sequence(fn, cell, params, xs, s0)
    T, B = xs.shape[:2]
    S = cell.state_size(N)
    k = S if k is None else k
    check_positive_int(fn, "k", k)
    if k > S:
        raise fail(fn, f"k in 1..S={S}", k)
    check_positive_int(fn, "reorth_every", reorth_every)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < T:
        raise fail(fn, f"warmup an int in 0..T-1={T - 1}", repr(warmup))
    if k < S or generator is not None or seed is not None:
        if k < S and generator is None and seed is None:
            raise fail(fn, f"generator= or seed= for a random start frame when k={k} < S={S}",
                       "neither")
        g = make_generator(generator, seed, fn)
        q0 = torch.linalg.qr(torch.randn(S, k, generator=g, dtype=torch.float64))[0]
        Q = q0.to(xs).expand(B, S, k).clone()
    else:
        Q = torch.eye(S, dtype=xs.dtype, device=xs.device).expand(B, S, S).clone()
    step = batched_step(cell)
    total = torch.zeros(B, k, dtype=torch.float64, device=xs.device)
    with torch.no_grad():
        for t in range(1, T + 1):
            x = xs[t - 1]
            Q = vmap(lambda v: jvp_step_fn(cell, params, x, s, v), in_dims=2, out_dims=2)(Q)
            s = step(params, x, s)
            if t == T or (t - warmup) % reorth_every == 0:     # includes t == warmup
                Q, R = torch.linalg.qr(Q)
                d = torch.diagonal(R, dim1=-2, dim2=-1)
                sign = torch.where(d < 0, -1.0, 1.0).to(Q)
                Q = Q * sign[:, None, :]
                if t > warmup:
                    total += torch.log(d.abs().to(torch.float64))
    out = (total / (T - warmup)).to(xs.dtype)
    return out.sort(dim=-1, descending=True).values
