r"""Golub–Kahan–Lanczos bidiagonalization of any linear operator given as ``(matvec, rmatvec)``.

Legend: R = rows (independent operators run side by side), M × K = the shape of each operator
J_r, m = Lanczos steps. The kernel knows nothing of recurrent networks: the per-step Jacobians
(:func:`~spectrumkit.spectra.extreme_singular_values`,
:func:`~spectrumkit.spectra.lanczos_spectrum`) are one operator among others, and a plain matrix
is another (``lambda v: v @ A.T``).

NOTE [Golub–Kahan–Lanczos]
For one matrix J (M, K) and a unit start vector v_1 (K,), Golub–Kahan bidiagonalization (Golub &
Kahan 1965, SIAM J. Numer. Anal. 2(2); Golub & Van Loan, *Matrix Computations*, §10.4) builds
orthonormal V_m = [v_1..v_m] (K, m), U_m = [u_1..u_m] (M, m) and the upper bidiagonal B_m
(diagonal α_1..α_m, superdiagonal β_1..β_{m-1}) with

    α_j u_j = J v_j − β_{j-1} u_{j-1},        β_j v_{j+1} = Jᵀ u_j − α_j v_j,

so that J V_m = U_m B_m and Jᵀ U_m = V_m B_mᵀ + β_m v_{m+1} e_mᵀ. Hence V_mᵀ JᵀJ V_m = B_mᵀ B_m is
the Lanczos tridiagonal matrix of JᵀJ started at v_1, built without ever applying JᵀJ as one
operator (only the small m×m problem is squared, in float64). Each step costs one J v and one
Jᵀ u; both bases are fully re-orthogonalized (classical Gram–Schmidt, twice), so no ghost copies
appear. If α_j or β_j falls below √ε·‖B‖ the Krylov space is invariant: the coefficient is set to 0
and the next basis vector is a fresh random vector orthogonal to the basis (the standard restart),
so B_m splits into decoupled blocks and every result below stays exact. m ≤ min(M, K) always (for
the square per-step Jacobians, m ≤ S).

Ritz values and convergence. With B_m = X Σ Yᵀ, the Ritz triplets (σ_i, U_m x_i, V_m y_i) satisfy
J V_m y_i = σ_i U_m x_i exactly and ‖Jᵀ U_m x_i − σ_i V_m y_i‖ = β_m |x_i[m]|: this *residual* is
computed, never assumed small, and some singular value of J lies within it of σ_i (the augmented
matrix [[0, J], [Jᵀ, 0]] is symmetric). A Ritz value is reported *converged* when its residual is
at most ``tol`` · σ_1(B_m) (relative to the ‖J‖ estimate). The top Ritz values are lower bounds of
the top singular values (Cauchy interlacing) and converge first; the bottom ones are upper bounds
of the smallest singular values and converge slowly when the small σ cluster (typical here), so
their flags are usually False: that is reported as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from ..errors import check_float_tensor, check_positive_int, fail
from ..init import make_generator

__all__ = ["Bidiagonal", "MatVec", "RitzValues", "golub_kahan_lanczos", "ritz_values"]

#: A linear operator's product: batched (R, K) -> (R, M), row r applying J_r; or unbatched
#: (K,) -> (M,). The transpose product ``rmatvec`` maps (R, M) -> (R, K) (or (M,) -> (K,)).
MatVec = Callable[[torch.Tensor], torch.Tensor]

#: Stopping rule: called with (α, β) of the steps so far, each (R, j) float64 ((j,) unbatched).
Stop = Callable[[torch.Tensor, torch.Tensor], bool]


class Bidiagonal(NamedTuple):
    """The bidiagonal B_m of NOTE [Golub–Kahan–Lanczos], float64 on the CPU.

    Attributes:
        alpha: (R, m') diagonal α_1..α_m' ((m',) for an unbatched start vector).
        beta: (R, m') β_1..β_m': the first m'−1 are the superdiagonal, ``beta[..., -1]`` is the
            residual coefficient β_m'. m' ≤ m is the number of steps taken (fewer when ``stop``
            ended the run).
    """

    alpha: torch.Tensor
    beta: torch.Tensor


class RitzValues(NamedTuple):
    """Ritz singular values of B_m with their Gauss weights and residuals, float64.

    Attributes:
        sigma: (..., m) Ritz singular values σ_i(B_m), descending.
        weight: (..., m) Gauss quadrature weights y_i[1]² (NOTE [SLQ density]); each row sums to 1.
        residual: (..., m) relative residuals β_m |x_i[m]| / σ_1 (NOTE [Golub–Kahan–Lanczos]).
    """

    sigma: torch.Tensor
    weight: torch.Tensor
    residual: torch.Tensor


def _orthogonalize(w: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """w (R, n) minus its projection on the orthonormal rows of Q (R, j, n): classical
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
    """Unit rows of w (R, n) and their norms; a norm ≤ √ε·scale is a breakdown: coefficient 0 and
    a random unit vector orthogonal to Q instead (NOTE [Golub–Kahan–Lanczos])."""
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


def _check_product(fn: str, name: str, out: object, like: torch.Tensor, n: int | None) -> int:
    """The first product of ``matvec`` / ``rmatvec``: an (R, n) tensor in v1's dtype and on its
    device (any n >= 1 when ``n`` is None); returns its length."""
    R = like.shape[0]
    if not isinstance(out, torch.Tensor):
        got = type(out).__name__
    elif (out.dim() == 2 and out.shape[0] == R and out.shape[1] >= 1
          and (n is None or out.shape[1] == n)
          and out.dtype == like.dtype and out.device == like.device):
        return out.shape[1]
    else:
        got = f"shape {tuple(out.shape)}, {out.dtype} on {out.device}"
    raise fail(fn, f"{name} to return {like.dtype} of shape ({R}, {'M' if n is None else n}) on "
               f"{like.device}", got)


def _bidiagonalize(fn: str, matvec: MatVec, rmatvec: MatVec, v1: torch.Tensor, m: int,
                   generator: torch.Generator, stop: Stop | None, check_every: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Trusted core of :func:`golub_kahan_lanczos` on R rows: v1 (R, K) unit rows, m ≤ K.

    Only the shapes of the first products are checked (m ≤ M among them).
    """
    R, K = v1.shape
    V = v1.new_zeros(R, m, K)
    alpha = torch.zeros(R, m, dtype=torch.float64)
    beta = torch.zeros(R, m, dtype=torch.float64)
    V[:, 0] = v1
    scale = v1.new_zeros(R)
    U = v1.new_zeros(R, 0, 0)
    for j in range(m):
        p = matvec(V[:, j])
        if j == 0:
            M = _check_product(fn, "matvec", p, v1, None)
            if m > M:
                raise fail(fn, f"iterations <= M={M} (the length of matvec's output)", m)
            U = v1.new_zeros(R, m, M)
        else:
            p = p - beta[:, j - 1, None].to(p) * U[:, j - 1]
        p = _orthogonalize(p, U[:, :j])
        scale = torch.maximum(scale, p.norm(dim=-1))
        U[:, j], a = _normalize(p, U[:, :j], scale, generator)
        alpha[:, j] = a.double().cpu()
        r = rmatvec(U[:, j])
        if j == 0:
            _check_product(fn, "rmatvec", r, v1, K)
        r = r - a[:, None] * V[:, j]
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


def golub_kahan_lanczos(matvec: MatVec, rmatvec: MatVec, v1: torch.Tensor, iterations: int, *,
                        generator: torch.Generator | None = None, seed: int | None = None,
                        stop: Stop | None = None, check_every: int = 10) -> Bidiagonal:
    r"""``iterations`` steps of Golub–Kahan–Lanczos on any operator (NOTE [Golub–Kahan–Lanczos]).

    .. math::  J V_m = U_m B_m, \qquad J^\top U_m = V_m B_m^\top + \beta_m v_{m+1} e_m^\top

    The operator is reached only through its two products, so it can be a plain matrix, a
    ``scipy`` operator wrapped in torch, or a per-step Jacobian (one JVP and one VJP).

    Contract (batched): ``v1`` (R, K); ``matvec`` maps (R, K) -> (R, M) and ``rmatvec`` maps
    (R, M) -> (R, K), in v1's dtype and on its device, row r of each output depending on row r of
    its input only (R independent operators J_r (M, K) run side by side, e.g. the B examples of a
    step). Unbatched: ``v1`` (K,), ``matvec`` (K,) -> (M,), ``rmatvec`` (M,) -> (K,), and the
    results lose their leading R axis. Products are linear in their input: the kernel never
    checks this.

    Args:
        matvec, rmatvec: the products with J_r and J_rᵀ.
        v1: start vectors (R, K) or (K,), any non-zero norm (each row is normalized).
        iterations: m, 1 ≤ m ≤ min(M, K). With M ≥ K the Krylov space is complete at m = K and
            every singular value is found; a wide operator (M < K) has K − M more zero
            eigenvalues of JᵀJ, and the start vector's part in J's null space holds one Ritz
            value near 0: swap ``matvec`` and ``rmatvec`` (run on Jᵀ) to find all of them.
        generator, seed: exactly one: the random restarts after a breakdown.
        stop: called every ``check_every`` steps with (α, β) so far, float64 (R, j) ((j,)
            unbatched); True ends the run early.

    Returns:
        :class:`Bidiagonal` (α, β), float64 on the CPU, (R, m') or (m',) with m' ≤ m the steps
        taken. Pass it to :func:`ritz_values`.

    >>> import torch
    >>> A = torch.diag(torch.tensor([5.0, 3.0, 1.0], dtype=torch.float64))
    >>> v1 = torch.ones(3, dtype=torch.float64)
    >>> bd = golub_kahan_lanczos(lambda v: A @ v, lambda u: A.T @ u, v1, 3, seed=0)
    >>> [round(s, 10) for s in ritz_values(*bd).sigma.tolist()]
    [5.0, 3.0, 1.0]
    """
    fn = "golub_kahan_lanczos"
    if not callable(matvec) or not callable(rmatvec):
        raise fail(fn, "matvec and rmatvec to be callables", f"{type(matvec).__name__}, "
                   f"{type(rmatvec).__name__}")
    check_float_tensor(fn, "v1", v1)
    if v1.dim() not in (1, 2) or v1.shape[-1] == 0 or v1.numel() == 0:
        raise fail(fn, "v1 of shape (R, K) or (K,) with R, K >= 1", f"shape {tuple(v1.shape)}")
    check_positive_int(fn, "iterations", iterations)
    check_positive_int(fn, "check_every", check_every)
    if iterations > v1.shape[-1]:
        raise fail(fn, f"iterations <= K={v1.shape[-1]} (the start vectors' length)", iterations)
    norm = v1.norm(dim=-1, keepdim=True)
    if not bool((norm > 0).all()):
        raise fail(fn, "v1 with non-zero rows", f"{int((norm == 0).sum())} zero rows")
    g = make_generator(generator, seed, fn)
    if v1.dim() == 2:
        alpha, beta = _bidiagonalize(fn, matvec, rmatvec, v1 / norm, iterations, g, stop,
                                     check_every)
        return Bidiagonal(alpha, beta)

    def one(f: MatVec) -> MatVec:
        def row(w: torch.Tensor) -> torch.Tensor:
            out = f(w[0])
            return out.unsqueeze(0) if isinstance(out, torch.Tensor) else out
        return row

    stop1 = None if stop is None else (lambda a, b: stop(a[0], b[0]))
    alpha, beta = _bidiagonalize(fn, one(matvec), one(rmatvec), (v1 / norm)[None], iterations, g,
                                 stop1, check_every)
    return Bidiagonal(alpha[0], beta[0])


def ritz_values(alpha: torch.Tensor, beta: torch.Tensor) -> RitzValues:
    r"""Ritz singular values, Gauss weights and relative residuals of B_m
    (NOTE [Golub–Kahan–Lanczos]).

    From the eigendecomposition of the tridiagonal :math:`B_m^\top B_m = Y\,\mathrm{diag}(\theta)
    \,Y^\top` in float64 (three times faster than an SVD of B_m on small batches):
    :math:`\sigma_i = \sqrt{\theta_i}`, weights :math:`y_i[1]^2`, and the residual
    :math:`\beta_m |x_i[m]|` with :math:`x_i = B_m y_i / \sigma_i`, i.e.
    :math:`\beta_m \alpha_m |y_i[m]| / \sigma_i` (∞ for σ_i = 0 unless the numerator is 0),
    divided by σ_1. Squaring costs absolute accuracy √ε₆₄·σ_1 ≈ 1e-8·σ_1 in the σ_i only.

    Args:
        alpha, beta: (..., m) float64, as returned by :func:`golub_kahan_lanczos`.

    Returns:
        :class:`RitzValues`, each (..., m), σ descending.
    """
    fn = "ritz_values"
    for name, t in (("alpha", alpha), ("beta", beta)):
        check_float_tensor(fn, name, t)
        if t.dtype != torch.float64 or t.dim() < 1 or t.shape[-1] == 0:
            raise fail(fn, f"{name} float64 of shape (..., m) with m >= 1",
                       f"{t.dtype}, shape {tuple(t.shape)}")
    if alpha.shape != beta.shape:
        raise fail(fn, "alpha and beta of one shape", f"{tuple(alpha.shape)}, {tuple(beta.shape)}")
    Bm = torch.diag_embed(alpha) + torch.diag_embed(beta[..., :-1], offset=1)
    theta, Y = torch.linalg.eigh(Bm.transpose(-1, -2) @ Bm)
    theta, Y = theta.flip(-1), Y.flip(-1)                        # descending
    sigma = theta.clamp(min=0).sqrt()
    num = beta[..., -1:].abs() * alpha[..., -1:].abs() * Y[..., -1, :].abs()
    residual = torch.where(sigma > 0, num / torch.where(sigma > 0, sigma, 1.0),
                           torch.where(num > 0, math.inf, 0.0))
    top = sigma[..., :1]
    rel = torch.where(top > 0, residual / torch.where(top > 0, top, 1.0), residual)
    return RitzValues(sigma, Y[..., 0, :].pow(2), rel)
