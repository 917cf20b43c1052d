"""The Golub–Kahan–Lanczos kernel on plain matrices, against numpy.linalg.svd in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrumkit import SpectrumkitError
from spectrumkit.spectra import golub_kahan_lanczos, ritz_values

F64 = torch.float64


def _planted(M: int, K: int, top: list[float], seed: int) -> torch.Tensor:
    """A dense random (M, K) matrix: Haar singular vectors, singular values ``top`` followed by
    uniform values in [0, 1) (so the top is well separated from the rest)."""
    g = torch.Generator().manual_seed(seed)
    n = min(M, K)
    U = torch.linalg.qr(torch.randn(M, n, generator=g, dtype=F64))[0]
    V = torch.linalg.qr(torch.randn(K, n, generator=g, dtype=F64))[0]
    s = torch.cat([torch.tensor(top, dtype=F64), torch.rand(n - len(top), generator=g, dtype=F64)])
    return U @ torch.diag(s) @ V.T


def _svd(A: torch.Tensor) -> np.ndarray:
    return np.linalg.svd(A.numpy(), compute_uv=False)


def _unit(n: int, seed: int, rows: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if rows is None else (rows, n)
    return torch.randn(shape, generator=g, dtype=F64)


def test_top_singular_values_of_a_dense_matrix_match_numpy():
    A = _planted(80, 60, [9.0, 6.0, 4.0], seed=0)
    want = _svd(A)
    bd = golub_kahan_lanczos(lambda v: A @ v, lambda u: A.T @ u, _unit(60, 1), 25, seed=0)
    r = ritz_values(bd.alpha, bd.beta)
    np.testing.assert_allclose(r.sigma[:3].numpy(), want[:3], rtol=1e-6, atol=0)
    assert (r.residual[:3] <= 1e-6).all(), r.residual[:3]


def test_top_singular_values_of_a_diagonal_matrix_are_its_largest_entries():
    d = torch.cat([torch.tensor([10.0, 7.0, 5.0], dtype=F64),
                   torch.linspace(0.1, 1.0, 97, dtype=F64)])
    d = d[torch.randperm(100, generator=torch.Generator().manual_seed(2))]
    bd = golub_kahan_lanczos(lambda v: d * v, lambda u: d * u, torch.ones(100, dtype=F64), 20,
                             seed=0)
    top = ritz_values(*bd).sigma[:3]
    np.testing.assert_allclose(top.numpy(), [10.0, 7.0, 5.0], rtol=1e-6, atol=0)


@pytest.mark.parametrize("M,K", [(30, 20), (20, 30), (25, 25)])
def test_batched_rectangular_operators_give_each_matrix_its_own_spectrum(M, K):
    # R = 3 independent operators, row r applying A_r (M, K); the top converges either way.
    A = torch.stack([_planted(M, K, [5.0 + r, 3.0], seed=10 + r) for r in range(3)])
    m = min(M, K)

    def matvec(v):
        return torch.einsum("rmk,rk->rm", A, v)

    def rmatvec(u):
        return torch.einsum("rmk,rm->rk", A, u)

    r = ritz_values(*golub_kahan_lanczos(matvec, rmatvec, _unit(K, 3, rows=3), m, seed=0))
    assert r.sigma.shape == (3, m)
    # On the operator with M >= K (Aᵀ when A is wide) the Krylov space is complete at m, so every
    # singular value is found, to the √ε·σ_1 of squaring the small problem.
    if M >= K:
        full = r
    else:
        full = ritz_values(*golub_kahan_lanczos(rmatvec, matvec, _unit(M, 4, rows=3), m, seed=0))
    for i in range(3):
        want = _svd(A[i])
        np.testing.assert_allclose(r.sigma[i, :2].numpy(), want[:2], rtol=1e-6, atol=0)
        np.testing.assert_allclose(full.sigma[i].numpy(), want, rtol=0, atol=1e-7 * want[0])
    np.testing.assert_allclose(r.weight.sum(-1).numpy(), 1.0, atol=1e-12)


def test_every_ritz_value_lies_within_its_residual_of_a_singular_value():
    A = _planted(50, 50, [4.0, 3.5], seed=4)
    want = _svd(A)
    bd = golub_kahan_lanczos(lambda v: A @ v, lambda u: A.T @ u, _unit(50, 5), 12, seed=0)
    r = ritz_values(*bd)
    dist = np.abs(r.sigma.numpy()[:, None] - want[None, :]).min(-1)
    bound = r.residual.numpy() * r.sigma[0].item()
    assert (dist <= bound + 1e-10 * want[0]).all(), (dist, bound)
    assert (r.residual[-3:] > 1e-6).all()           # the unconverged bottom is reported as such


def test_an_invariant_start_space_restarts_and_stays_exact():
    # v1 in span(e_1, e_2) of a diagonal matrix: after two steps the Krylov space is invariant,
    # β_2 is set to 0 and the run restarts orthogonally; with m = n every value is still exact.
    d = torch.tensor([3.0, 2.0, 1.5, 1.0, 0.5, 0.25], dtype=F64)
    v1 = torch.tensor([1.0, 1.0, 0, 0, 0, 0], dtype=F64)
    bd = golub_kahan_lanczos(lambda v: d * v, lambda u: d * u, v1, 6, seed=0)
    assert bd.beta[1].item() == 0.0
    np.testing.assert_allclose(ritz_values(*bd).sigma.numpy(), d.numpy(), rtol=0, atol=1e-7)


def test_stop_ends_the_run_at_a_check_and_keeps_the_values_reached():
    A = _planted(60, 60, [8.0, 5.0], seed=6)
    seen = []

    def stop(alpha, beta):
        seen.append(alpha.shape)
        return bool((ritz_values(alpha, beta).residual[:, :2] <= 1e-8).all())

    v = _unit(60, 7, rows=1)
    bd = golub_kahan_lanczos(lambda x: x @ A.T, lambda y: y @ A, v, 60, seed=0, stop=stop,
                             check_every=5)
    steps = bd.alpha.shape[-1]
    assert steps < 60 and steps % 5 == 0 and seen[-1] == (1, steps)
    np.testing.assert_allclose(ritz_values(*bd).sigma[0, :2].numpy(), _svd(A)[:2], rtol=1e-6)


def test_the_start_vectors_are_normalized():
    A = _planted(20, 20, [3.0], seed=8)
    v = _unit(20, 9)
    a = golub_kahan_lanczos(lambda x: A @ x, lambda y: A.T @ y, v, 8, seed=0)
    b = golub_kahan_lanczos(lambda x: A @ x, lambda y: A.T @ y, 7.5 * v, 8, seed=0)
    torch.testing.assert_close(a.alpha, b.alpha, rtol=1e-12, atol=0)
    torch.testing.assert_close(a.beta, b.beta, rtol=1e-12, atol=0)


def test_bad_operators_and_sizes_are_refused():
    A = torch.ones(5, 8, dtype=F64)
    v = torch.ones(8, dtype=F64)

    def mv(x):
        return A @ x

    def rmv(y):
        return A.T @ y

    with pytest.raises(SpectrumkitError, match=r"golub_kahan_lanczos: expected iterations <= K=8"):
        golub_kahan_lanczos(mv, rmv, v, 9, seed=0)
    with pytest.raises(SpectrumkitError, match=r"expected iterations <= M=5"):
        golub_kahan_lanczos(mv, rmv, v, 6, seed=0)
    with pytest.raises(SpectrumkitError, match=r"expected matvec to return torch.float64 of shape"):
        golub_kahan_lanczos(lambda x: (A @ x)[:, None], rmv, v, 3, seed=0)
    with pytest.raises(SpectrumkitError, match=r"expected rmatvec to return .* \(1, 8\)"):
        golub_kahan_lanczos(mv, lambda y: y, v, 3, seed=0)
    with pytest.raises(SpectrumkitError, match=r"exactly one of generator= or seed="):
        golub_kahan_lanczos(mv, rmv, v, 3)
    with pytest.raises(SpectrumkitError, match=r"expected v1 with non-zero rows"):
        golub_kahan_lanczos(mv, rmv, torch.zeros(8, dtype=F64), 3, seed=0)
    with pytest.raises(SpectrumkitError, match=r"ritz_values: expected alpha float64"):
        ritz_values(torch.ones(3), torch.ones(3))
