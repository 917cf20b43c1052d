r"""Per-step Jacobian spectra without forming them: Lanczos and stochastic Lanczos quadrature.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, U = selected steps,
P = probes per example, m = Lanczos steps, k = extreme singular values, R = rows (B·P).

Everything here reaches :math:`J_t` only through the products :math:`J v` (one JVP,
:func:`~spectrumkit.jacobians.jvp_step`) and :math:`J^\top u` (one VJP), so it works for any cell
whose step supports forward- and reverse-mode AD, and it holds O(R·m·S) numbers, never B·S².

NOTE [Golub–Kahan–Lanczos]
For one matrix J (S, S) and a unit start vector v_1, Golub–Kahan bidiagonalization (Golub & Kahan
1965, SIAM J. Numer. Anal. 2(2); Golub & Van Loan, *Matrix Computations*, §10.4) builds orthonormal
V_m = [v_1..v_m], U_m = [u_1..u_m] and the upper bidiagonal B_m (diagonal α_1..α_m, superdiagonal
β_1..β_{m-1}) with

    α_j u_j = J v_j − β_{j-1} u_{j-1},        β_j v_{j+1} = Jᵀ u_j − α_j v_j,

so that J V_m = U_m B_m and Jᵀ U_m = V_m B_mᵀ + β_m v_{m+1} e_mᵀ. Hence V_mᵀ JᵀJ V_m = B_mᵀ B_m is
the Lanczos tridiagonal matrix of JᵀJ started at v_1, built without ever applying JᵀJ as one
operator (only the small m×m problem is squared, in float64). Each step costs one JVP and one VJP;
both bases are fully re-orthogonalized (classical Gram–Schmidt, twice), so no ghost copies appear.
If α_j or β_j falls below √ε·‖B‖ the Krylov space is invariant: the coefficient is set to 0 and
the next basis vector is a fresh random vector orthogonal to the basis (the standard restart), so
B_m splits into decoupled blocks and every result below stays exact. m ≤ S always.

Ritz values and convergence. With B_m = X Σ Yᵀ, the Ritz triplets (σ_i, U_m x_i, V_m y_i) satisfy
J V_m y_i = σ_i U_m x_i exactly and ‖Jᵀ U_m x_i − σ_i V_m y_i‖ = β_m |x_i[m]|: this *residual* is
computed, never assumed small, and some singular value of J lies within it of σ_i (the augmented
matrix [[0, J], [Jᵀ, 0]] is symmetric). A Ritz value is reported *converged* when its residual is
at most ``tol`` · σ_1(B_m) (relative to the ‖J‖ estimate). The top Ritz values are lower bounds of
the top singular values (Cauchy interlacing) and converge first; the bottom ones are upper bounds
of the smallest singular values and converge slowly when the small σ cluster (typical here), so
their flags are usually False: that is reported as it is.

NOTE [SLQ density]
The singular-value density of one J is μ = (1/S) Σ_i δ(σ_i). For a probe v with E[v vᵀ] = I/S
(uniform on the unit sphere; the P probes of one example are drawn orthonormal, see ``_probes``),
E[vᵀ f(JᵀJ) v] = (1/S) tr f(JᵀJ) = ∫ f(σ²) dμ(σ) (Hutchinson 1990), and m Lanczos steps from v
give the Gauss quadrature
vᵀ f(JᵀJ) v ≈ Σ_j w_j f(θ_j²) with nodes θ_j = σ_j(B_m) and weights w_j = y_j[1]², Σ_j w_j = 1,
exact for polynomials of degree < 2m in σ² (Golub & Meurant 2010, *Matrices, Moments and
Quadrature*; Ubaru, Chen & Saad 2017, SIAM J. Matrix Anal. Appl. 38(4)). Stochastic Lanczos
quadrature (SLQ) averages this over P probes per example and over the B examples of a step.

The density returned is the *binned Ritz weights*: a histogram's bin gets the average weight of the
nodes that fall in it, times the number of singular values it stands for (U·B·S), so the counts are
expected counts on exactly the dense histogram's bins, with no smoothing kernel (a Gaussian kernel
would add a bias of its own width). The same nodes and weights give σ̄ = ∫σ dμ, χ_F = ∫σ² dμ (for
each probe this equals vᵀJᵀJv exactly: the Hutchinson estimate of ‖J‖_F²/S), the median and the
fraction below ``near_zero`` from the weighted CDF, and the Roy–Vetterli effective rank
exp(log(S σ̄) − ∫σ log σ dμ / σ̄) (NOTE [Spectrum summary] in :mod:`spectrumkit.spectra`).
Two errors remain and both shrink as measured in ``tests/test_matfree.py``: the probe noise
(a bin holding n of the S values has a relative standard deviation of about
√(2(S − P)/(S·n·B·P))) and the
quadrature's resolution (m nodes per probe; averaged over probes the nodes spread over the bins).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.func import vjp

from ._unroll import batched_step, check_sequence, unroll_states
from .cells import Cell, get
from .errors import SpectrumkitError, check_choice, check_positive_int, fail
from .init import make_generator
from .jacobians import BLOCKS, CHUNK_BYTES, _check_states, _jvp_step, resolve_steps
from .spectra import (
    SUMMARY_COLUMNS,
    Histogram,
    Spectrum,
    _check_bins,
    _check_near_zero,
)

__all__ = [
    "ExtremeSingularValues",
    "LanczosOptions",
    "MatrixFree",
    "SpectralDensity",
    "extreme_singular_values",
    "lanczos_spectrum",
]

Params = Mapping[str, torch.Tensor]
MatVec = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------


def _check_tol(fn: str, tol: object) -> float:
    if (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol)
            or tol <= 0):
        raise fail(fn, "tol to be a finite number > 0", repr(tol))
    return float(tol)


@dataclass(frozen=True)
class LanczosOptions:
    """The options of the matrix-free spectrum (``spectrum(..., method="lanczos")``).

    Attributes:
        k: how many extreme singular values (top and bottom) to report per matrix; 1 ≤ k < S.
        iterations: Lanczos steps per probe (m); capped at S, where the Krylov space is complete.
            Must be ≥ k.
        probes: start vectors per example (P); the density averages over B·P runs per step.
        tol: a Ritz value is converged when its residual ≤ tol·σ_1 (NOTE [Golub–Kahan–Lanczos]).
    """

    k: int = 5
    iterations: int = 64
    probes: int = 4
    tol: float = 1e-5

    def __post_init__(self) -> None:
        fn = "LanczosOptions"
        for name in ("k", "iterations", "probes"):
            check_positive_int(fn, name, getattr(self, name))
        _check_tol(fn, self.tol)
        if self.iterations < self.k:
            raise fail(fn, f"iterations >= k={self.k}", self.iterations)

    @classmethod
    def coerce(cls, fn: str, value: LanczosOptions | Mapping[str, object] | None
               ) -> LanczosOptions:
        """Accept None (defaults), an instance, or a dict of known keys (others are refused)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"k", "iterations", "probes", "tol"})
            if unknown:
                raise fail(fn, "lanczos options among k, iterations, probes, tol",
                           ", ".join(map(str, unknown)))
            try:
                return cls(**value)  # type: ignore[arg-type]
            except SpectrumkitError as e:
                raise SpectrumkitError(str(e).replace("LanczosOptions", fn, 1)) from None
        raise fail(fn, "lanczos a LanczosOptions, a dict or None", type(value).__name__)


# --------------------------------------------------------------------------------------------------
# Golub–Kahan–Lanczos on a batch of operators
# --------------------------------------------------------------------------------------------------


def _orthogonalize(w: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """w (R, S) minus its projection on the orthonormal rows of Q (R, j, S): classical
    Gram–Schmidt, repeated once when a row lost more than 30 % of its norm ("twice is enough",
    Parlett, *The Symmetric Eigenvalue Problem*, §6.9)."""
    if Q.shape[1] == 0:
        return w
    before = w.norm(dim=-1)
    w = w - torch.bmm(torch.bmm(Q, w.unsqueeze(-1)).transpose(1, 2), Q).squeeze(1)
    if bool((w.norm(dim=-1) < 0.7 * before).any()):
        w = w - torch.bmm(torch.bmm(Q, w.unsqueeze(-1)).transpose(1, 2), Q).squeeze(1)
    return w


def _normalize(w: torch.Tensor, Q: torch.Tensor, scale: torch.Tensor, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit rows of w and their norms; a norm ≤ √ε·scale is a breakdown: coefficient 0 and a random
    unit vector orthogonal to Q instead (NOTE [Golub–Kahan–Lanczos])."""
    norm = w.norm(dim=-1)
    small = norm <= math.sqrt(torch.finfo(w.dtype).eps) * scale
    if bool(small.any()):
        z = torch.randn(w.shape, generator=generator, dtype=torch.float64).to(w)
        z = _orthogonalize(z, Q)
        z = _orthogonalize(z, Q)
        z = z / z.norm(dim=-1, keepdim=True)
        w = torch.where(small[:, None], z, w / torch.where(small, 1.0, norm)[:, None])
        return w, torch.where(small, 0.0, norm)
    return w / norm[:, None], norm


def _bidiagonalize(matvec: MatVec, rmatvec: MatVec, v1: torch.Tensor, m: int,
                   generator: torch.Generator,
                   stop: Callable[[torch.Tensor, torch.Tensor], bool] | None = None,
                   check_every: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """m steps of Golub–Kahan–Lanczos on R operators at once (trusted; m ≤ S).

    Args:
        matvec, rmatvec: (R, S) -> (R, S), row r applying J_r and J_rᵀ.
        v1: (R, S) unit start vectors.
        stop: called every ``check_every`` steps with (α, β) so far; True ends the run early.

    Returns:
        α (R, m') and β (R, m') in float64, m' ≤ m the steps taken; β[:, -1] is the residual
        coefficient β_m' (NOTE [Golub–Kahan–Lanczos]).
    """
    R, S = v1.shape
    V = v1.new_zeros(R, m, S)
    U = v1.new_zeros(R, m, S)
    alpha = torch.zeros(R, m, dtype=torch.float64)
    beta = torch.zeros(R, m, dtype=torch.float64)
    V[:, 0] = v1
    scale = v1.new_zeros(R)
    for j in range(m):
        p = matvec(V[:, j])
        if j > 0:
            p = p - beta[:, j - 1, None].to(p) * U[:, j - 1]
        p = _orthogonalize(p, U[:, :j])
        scale = torch.maximum(scale, p.norm(dim=-1))
        U[:, j], a = _normalize(p, U[:, :j], scale, generator)
        alpha[:, j] = a.double().cpu()
        r = rmatvec(U[:, j]) - a[:, None] * V[:, j]
        r = _orthogonalize(r, V[:, : j + 1])
        scale = torch.maximum(scale, r.norm(dim=-1))
        if j + 1 < m:
            V[:, j + 1], b = _normalize(r, V[:, : j + 1], scale, generator)
        else:
            b = r.norm(dim=-1)
        beta[:, j] = b.double().cpu()
        if stop is not None and j + 1 < m and (j + 1) % check_every == 0 \
                and stop(alpha[:, : j + 1], beta[:, : j + 1]):
            return alpha[:, : j + 1], beta[:, : j + 1]
    return alpha, beta


class _Ritz(NamedTuple):
    sigma: torch.Tensor     # (R, m) Ritz singular values, descending, float64
    weight: torch.Tensor    # (R, m) Gauss weights y_i[1]², each row sums to 1
    residual: torch.Tensor  # (R, m) relative residual β_m |x_i[m]| / σ_1


def _ritz(alpha: torch.Tensor, beta: torch.Tensor) -> _Ritz:
    """Ritz triplets of B_m (NOTE [Golub–Kahan–Lanczos]); α, β (R, m) float64.

    From the eigendecomposition of the tridiagonal B_mᵀB_m = Y diag(θ) Yᵀ in float64 (three times
    faster than an SVD of B_m on small batches): σ_i = √θ_i, weights y_i[1]², and the residual
    β_m |x_i[m]| with x_i = B_m y_i / σ_i, i.e. β_m α_m |y_i[m]| / σ_i (∞ for σ_i = 0 unless the
    numerator is 0). Squaring costs absolute accuracy √ε₆₄·σ_1 ≈ 1e-8·σ_1 in the σ_i only.
    """
    Bm = torch.diag_embed(alpha) + torch.diag_embed(beta[:, :-1], offset=1)
    theta, Y = torch.linalg.eigh(Bm.transpose(1, 2) @ Bm)
    theta, Y = theta.flip(-1), Y.flip(-1)                        # descending
    sigma = theta.clamp(min=0).sqrt()
    num = beta[:, -1:].abs() * alpha[:, -1:].abs() * Y[:, -1, :].abs()
    residual = torch.where(sigma > 0, num / torch.where(sigma > 0, sigma, 1.0),
                           torch.where(num > 0, math.inf, 0.0))
    top = sigma[:, :1]
    rel = torch.where(top > 0, residual / torch.where(top > 0, top, 1.0), residual)
    return _Ritz(sigma, Y[:, 0, :].pow(2), rel)


# --------------------------------------------------------------------------------------------------
# Products with the per-step Jacobians
# --------------------------------------------------------------------------------------------------


def _operators(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, block: str
               ) -> tuple[MatVec, MatVec, int]:
    """J v and Jᵀ u for the rows (x (R, D), s (R, S)); the pullback is built once and reused.

    For ``block="hh"`` (N, N): J_hh v = (J [v; 0])[:N] and J_hhᵀ u = (Jᵀ [u; 0])[:N].
    """
    step = batched_step(cell)
    pullback = vjp(lambda s_: step(params, x, s_), s)[1]
    S = s.shape[-1]
    if block == "full" or cell.state_factor == 1:
        return (lambda v: _jvp_step(cell, params, x, s, v)), (lambda u: pullback(u)[0]), S
    N = S // cell.state_factor

    def pad(w: torch.Tensor) -> torch.Tensor:
        return torch.cat([w, w.new_zeros(w.shape[0], S - N)], dim=-1)

    return ((lambda v: _jvp_step(cell, params, x, s, pad(v))[:, :N]),
            (lambda u: pullback(pad(u))[0][:, :N]), N)


def _check_jvp(fn: str, cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor) -> None:
    """The matrix-free path needs forward-mode AD through ``cell.step``: try one JVP and turn a
    failure into a one-line SpectrumkitError."""
    try:
        _jvp_step(cell, params, x[:1], s[:1], torch.ones_like(s[:1]))
    except (RuntimeError, NotImplementedError, AssertionError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise fail(fn, f"a cell whose step supports forward-mode AD (torch.func.jvp) for the "
                   f"matrix-free method; cell {cell.name!r} does not", f"{type(e).__name__}: "
                   f"{first}") from None


@dataclass(frozen=True)
class _Setup:
    cell: Cell
    params: dict[str, torch.Tensor]
    steps: list[int]
    states: torch.Tensor
    size: int


def _setup(fn: str, cell: str | Cell, params: Params, xs: torch.Tensor,
           states: torch.Tensor | None, steps: int | Sequence[int] | None, block: str, k: int
           ) -> _Setup:
    cell = get(cell)
    _, N, s0 = check_sequence(fn, cell, params, xs)
    T = xs.shape[0]
    S = cell.state_size(N)
    check_choice(fn, "block", block, BLOCKS)
    _check_states(fn, states, xs, S)
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
    _check_jvp(fn, cell, params, xs[idx[0] - 1], states[idx[0] - 1])
    return _Setup(cell, params, idx, states, size)


def _probes(B: int, P: int, S: int, generator: torch.Generator, like: torch.Tensor
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


def _row_chunk(m: int, size: int, element_size: int) -> int:
    """Rows per chunk so that the two bases (2·rows·m·size numbers) fit in CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (2 * m * size * element_size))


def _runs(st: _Setup, xs: torch.Tensor, t: int, probes: int, m: int, block: str,
          generator: torch.Generator,
          stop: Callable[[torch.Tensor, torch.Tensor], bool] | None = None) -> list[_Ritz]:
    """The Ritz triplets of B·P runs at step t (row b·P + p = example b, probe p), in row chunks."""
    B = xs.shape[1]
    x = xs[t - 1].repeat_interleave(probes, 0)
    s = st.states[t - 1].repeat_interleave(probes, 0)
    v1 = _probes(B, probes, st.size, generator, x)
    chunk = _row_chunk(m, st.size, x.element_size())
    out = []
    for a in range(0, B * probes, chunk):
        rows = slice(a, a + chunk)
        mv, rmv, _ = _operators(st.cell, st.params, x[rows], s[rows], block)
        alpha, beta = _bidiagonalize(mv, rmv, v1[rows], m, generator, stop)
        out.append(_ritz(alpha, beta))
    return out


# --------------------------------------------------------------------------------------------------
# Extreme singular values
# --------------------------------------------------------------------------------------------------


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


def _extremes(ritz: _Ritz, k: int, tol: float) -> tuple[torch.Tensor, ...]:
    top, top_r = ritz.sigma[:, :k], ritz.residual[:, :k]
    bot, bot_r = ritz.sigma[:, -k:].flip(-1), ritz.residual[:, -k:].flip(-1)
    return top, top_r, top_r <= tol, bot, bot_r, bot_r <= tol


def _stack_extremes(parts: list[tuple[torch.Tensor, ...]], iterations: list[int], tol: float
                    ) -> ExtremeSingularValues:
    top, top_r, top_c, bot, bot_r, bot_c = (torch.stack([p[i] for p in parts]) for i in range(6))
    return ExtremeSingularValues(top, top_r, top_c, bot, bot_r, bot_c, torch.tensor(iterations),
                                 tol)


def extreme_singular_values(cell: str | Cell, params: Params, xs: torch.Tensor, *,
                            states: torch.Tensor | None = None,
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
    tol = _check_tol(fn, tol)
    if iterations < k:
        raise fail(fn, f"iterations >= k={k}", iterations)
    g = make_generator(generator, seed, fn)
    st = _setup(fn, cell, params, xs, states, steps, block, k)
    m = min(iterations, st.size)
    parts, used = [], []

    def stop(alpha: torch.Tensor, beta: torch.Tensor) -> bool:
        return bool((_ritz(alpha, beta).residual[:, :k] <= tol).all())

    with torch.no_grad():
        for t in st.steps:
            runs = _runs(st, xs, t, 1, m, block, g, stop)
            parts.append(tuple(torch.cat(f) for f in zip(*(_extremes(r, k, tol) for r in runs))))
            used.append(max(r.sigma.shape[1] for r in runs))
    return _stack_extremes(parts, used, tol)


# --------------------------------------------------------------------------------------------------
# The density: stochastic Lanczos quadrature
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpectralDensity:
    """SLQ nodes and weights of the singular-value density (NOTE [SLQ density]).

    Attributes:
        nodes: (U, B, P, m) Ritz singular values, float64.
        weights: (U, B, P, m) Gauss weights; each (u, b, p) run sums to 1.
        size: S (or N for ``block="hh"``): how many singular values each matrix has.
    """

    nodes: np.ndarray
    weights: np.ndarray
    size: int

    def histogram(self, bins: int | Sequence[float] = 50,
                  value_range: tuple[float, float] | None = None) -> Histogram:
        """Expected counts of the U·B·S singular values on the bins of
        :func:`~spectrumkit.spectra.histogram` (same arguments, same edges; the default range is
        (0, largest node)). ``counts`` are float64; ``outside`` is the expected count outside an
        explicit range (nodes within 1e-6 of the range's span from its ends count as inside)."""
        _check_bins("SpectralDensity.histogram", bins, value_range)
        return _density_histogram(self, bins, value_range)

    def summary(self, near_zero: float = 1e-2) -> dict[str, float]:
        """mean, median, frac_near_zero, chi_F and effective_rank of the pooled density; min,
        max and condition need the extremes (see :func:`lanczos_spectrum`)."""
        near_zero = _check_near_zero("SpectralDensity.summary", near_zero)
        return _density_summary(self.nodes, self.weights, self.size, near_zero)


def _density_histogram(d: SpectralDensity, bins: int | Sequence[float],
                       value_range: tuple[float, float] | None) -> Histogram:
    if isinstance(bins, int):
        top = float(d.nodes.max())
        lo, hi = value_range if value_range is not None else (0.0, top or 1.0)
        edges = np.linspace(float(lo), float(hi), bins + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    nodes, w = d.nodes.ravel(), d.weights.ravel()
    # A converged top Ritz value equals σ_max up to rounding; when the edges end at a dense
    # σ_max it must not fall out by an ulp: nodes within 1e-6 of the span snap onto the ends.
    tiny = 1e-6 * (edges[-1] - edges[0])
    nodes = np.where(np.abs(nodes - edges[-1]) <= tiny, edges[-1],
                     np.where(np.abs(nodes - edges[0]) <= tiny, edges[0], nodes))
    runs = d.nodes[..., 0].size                 # U·B·P runs, each of total weight 1
    total = runs / d.nodes.shape[-2] * d.size    # U·B·S singular values
    counts, _ = np.histogram(nodes, bins=edges, weights=w)
    outside = float(w[(nodes < edges[0]) | (nodes > edges[-1])].sum())
    return Histogram(counts * (total / runs), edges, outside * (total / runs))


def _weighted_median(nodes: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(nodes, kind="stable")
    cdf = np.cumsum(w[order])
    return float(nodes[order][np.searchsorted(cdf, 0.5 * cdf[-1])])


def _density_summary(nodes: np.ndarray, w: np.ndarray, size: int, near_zero: float
                     ) -> dict[str, float]:
    """Density statistics over every run in (..., B, P, m) arrays (NOTE [SLQ density])."""
    runs = nodes[..., 0].size
    mean_b = (nodes * w).sum((-1, -2)) / nodes.shape[-2]                # σ̄ per example
    slogs = np.where(nodes > 0, nodes * np.log(np.where(nodes > 0, nodes, 1.0)), 0.0)
    ent_b = (slogs * w).sum((-1, -2)) / nodes.shape[-2]                 # ∫σ log σ per example
    safe = np.where(mean_b > 0, mean_b, 1.0)
    erank = np.where(mean_b > 0, np.exp(np.log(size * safe) - ent_b / safe), 0.0)
    return {
        "mean": float((nodes * w).sum() / runs),
        "median": _weighted_median(nodes.ravel(), w.ravel()),
        "frac_near_zero": float((w * (nodes < near_zero)).sum() / runs),
        "chi_F": float((nodes * nodes * w).sum() / runs),
        "effective_rank": float(erank.mean()),
    }


def _summary_row(nodes: np.ndarray, w: np.ndarray, size: int, top: torch.Tensor,
                 bottom: torch.Tensor, near_zero: float) -> dict[str, float]:
    """One row of SUMMARY_COLUMNS: the density statistics plus min/max/condition from the
    extremes (max = largest top Ritz value, a lower bound of σ_max; min = smallest bottom Ritz
    value, an upper bound of σ_min; condition = median over matrices of their ratio)."""
    row = _density_summary(nodes, w, size, near_zero)
    hi = top[..., 0].reshape(-1).numpy()
    lo = bottom[..., 0].reshape(-1).numpy()
    kappa = np.divide(hi, lo, out=np.full_like(hi, np.inf), where=lo > 0)
    row.update(min=float(lo.min()), max=float(hi.max()), condition=float(np.median(kappa)))
    return {c: row[c] for c in SUMMARY_COLUMNS}


@dataclass(frozen=True)
class MatrixFree:
    """What the matrix-free spectrum adds to :class:`~spectrumkit.spectra.Spectrum`.

    Attributes:
        density: the SLQ :class:`SpectralDensity` (re-bin it with ``density.histogram``).
        extremes: :class:`ExtremeSingularValues` from each example's first probe.
        options: the :class:`LanczosOptions` used (``iterations`` as capped at S).
    """

    density: SpectralDensity
    extremes: ExtremeSingularValues
    options: LanczosOptions


def lanczos_spectrum(cell: str | Cell, params: Params, xs: torch.Tensor, *,
                     states: torch.Tensor | None = None,
                     steps: int | Sequence[int] | None = None, block: str = "full",
                     lanczos: LanczosOptions | Mapping[str, object] | None = None,
                     generator: torch.Generator | None = None, seed: int | None = None,
                     bins: int | Sequence[float] = 50,
                     value_range: tuple[float, float] | None = None,
                     near_zero: float = 1e-2) -> Spectrum:
    r"""The spectrum of :func:`~spectrumkit.spectra.spectrum` without forming any Jacobian.

    For every selected step, P = ``lanczos.probes`` orthonormal random probes per example each run
    m = ``lanczos.iterations`` Golub–Kahan–Lanczos steps (NOTE [Golub–Kahan–Lanczos]); the Ritz
    nodes and weights give the SLQ density and its statistics (NOTE [SLQ density]), and the first
    probe of each example gives its k extreme singular values with residuals. Memory: the two
    Lanczos bases of at most a chunk of rows, 2·rows·m·S numbers with rows ≤ B·P chosen to fit
    256 MiB (at least one row), plus the states: O(B·S·(m + T)), never B·S².

    Args:
        cell, params, xs (T, B, D), states (T+1, B, S), steps, block: as in
            :func:`~spectrumkit.jacobians.step_jacobians`.
        lanczos: :class:`LanczosOptions` (or a dict of its fields); defaults when None.
        generator, seed: exactly one (the probes).
        bins, value_range, near_zero: as in :func:`~spectrumkit.spectra.spectrum`.

    Returns:
        :class:`~spectrumkit.spectra.Spectrum` with the same table columns, pooled summary and
        histogram as the dense path (the histogram's counts are float64 expected counts;
        NOTE [SLQ density]); ``singular_values`` holds the top-k Ritz values (U, B, k) only, and
        ``matrix_free`` the density, the extremes with their convergence flags, and the options.

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("gru", 3, 16, "glorot", seed=0, dtype=torch.float64)
    >>> xs = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> sp = lanczos_spectrum("gru", p, xs, steps=2, seed=0, bins=10)
    >>> round(float(sp.histogram.counts.sum()), 9), list(sp.table.index)   # U·B·S = 2·2·16
    (64.0, [4, 5])
    """
    fn = "spectrum"
    opts = LanczosOptions.coerce(fn, lanczos)
    near_zero = _check_near_zero(fn, near_zero)
    _check_bins(fn, bins, value_range)
    g = make_generator(generator, seed, fn)
    st = _setup(fn, cell, params, xs, states, steps, block, opts.k)
    m = min(opts.iterations, st.size)
    B, P = xs.shape[1], opts.probes
    nodes = np.empty((len(st.steps), B, P, m))
    weights = np.empty_like(nodes)
    parts = []
    with torch.no_grad():
        for i, t in enumerate(st.steps):
            runs = _runs(st, xs, t, P, m, block, g)
            sigma = torch.cat([r.sigma for r in runs])
            nodes[i] = sigma.view(B, P, m).numpy()
            weights[i] = torch.cat([r.weight for r in runs]).view(B, P, m).numpy()
            first = _Ritz(*(torch.cat(f).view(B, P, m)[:, 0] for f in zip(*runs)))
            parts.append(_extremes(first, opts.k, opts.tol))
    extremes = _stack_extremes(parts, [m] * len(st.steps), opts.tol)
    density = SpectralDensity(nodes, weights, st.size)
    rows = [_summary_row(nodes[i], weights[i], st.size, extremes.top[i], extremes.bottom[i],
                         near_zero) for i in range(len(st.steps))]
    table = pd.DataFrame(rows, index=pd.Index(st.steps, name="step"),
                         columns=list(SUMMARY_COLUMNS))
    pooled = _summary_row(nodes, weights, st.size, extremes.top, extremes.bottom, near_zero)
    hist = _density_histogram(density, bins, value_range)
    return Spectrum(table, pooled, hist, extremes.top.clone(),
                    matrix_free=MatrixFree(density, extremes,
                                           LanczosOptions(opts.k, m, P, opts.tol)))
