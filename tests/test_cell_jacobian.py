"""A cell brings its own closed-form step Jacobian (``make_cell(..., jacobian=...)``): the engines
use it for ``method="closed_form"`` and ``"auto"``, and it agrees with vmap(jacrev) and the
row-by-row reference in float64. Without one, ``closed_form`` is refused and ``auto`` is jacrev."""

import pytest
import torch

from spectrumkit import SpectrumkitError
from spectrumkit.cells import get, make_cell
from spectrumkit.init import init_params
from spectrumkit.jacobians import has_closed_form, reference_jacobian, step_jacobians
from spectrumkit.spectra import spectrum
from spectrumkit import unroll

from .conftest import assert_close

F64 = torch.float64


def _step(p, x, s):
    return torch.tanh(p["W"] @ s + p["U"] @ x)


def _shapes(D, N):
    return {"W": (N, N), "U": (N, D)}


def _make(calls):
    def jacobian(p, x, s):                          # x (B, D), s (B, N) -> (B, N, N)
        calls.append(x.shape[0])
        h = torch.tanh(s @ p["W"].T + x @ p["U"].T)
        return (1 - h * h)[:, :, None] * p["W"]     # diag(1 - h²) W
    return make_cell("tiny_tanh", _step, _shapes, jacobian=jacobian), make_cell(
        "tiny_tanh_plain", _step, _shapes)


def _case(cell, N=4, D=3, T=5, B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = {"W": 0.7 * torch.randn(N, N, generator=g, dtype=F64),
         "U": torch.randn(N, D, generator=g, dtype=F64)}
    xs = torch.randn(T, B, D, generator=g, dtype=F64)
    states = unroll(cell, p, xs, s0=0.5 * torch.randn(B, N, generator=g, dtype=F64))
    return p, xs, states


@pytest.mark.parametrize("method", ["closed_form", "auto"])
@pytest.mark.parametrize("chunk_size", [None, 2])
def test_a_cell_jacobian_is_used_and_agrees_with_jacrev(method, chunk_size):
    calls = []
    cell, _ = _make(calls)
    p, xs, states = _case(cell)
    got = step_jacobians(cell, p, xs, states=states, method=method, chunk_size=chunk_size)
    assert calls and all(b == xs.shape[1] for b in calls)       # one step's rows per call
    want = step_jacobians(cell, p, xs, states=states, method="jacrev")
    assert_close(got, want, atol=1e-12, what="cell's closed form vs jacrev")
    assert_close(got, reference_jacobian(cell, p, xs, states=states), atol=1e-10,
                 what="cell's closed form vs reference")


def test_a_cell_jacobian_is_differentiable_and_serves_the_hh_block_and_spectra():
    cell, _ = _make([])
    p, xs, states = _case(cell)
    q = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    J = step_jacobians(cell, q, xs, states=states, method="closed_form", steps=[2, 4])
    Jr = step_jacobians(cell, q, xs, states=states, method="jacrev", steps=[2, 4])
    g = torch.autograd.grad(J.pow(2).sum(), list(q.values()))
    gr = torch.autograd.grad(Jr.pow(2).sum(), list(q.values()))
    for a, b in zip(g, gr):
        assert_close(a, b, atol=1e-12, what="gradient through the cell's closed form")
    hh = step_jacobians(cell, p, xs, states=states, block="hh", method="closed_form")
    assert_close(hh, step_jacobians(cell, p, xs, states=states, method="jacrev"), atol=1e-12,
                 what="block hh (S = N)")
    sv = spectrum(cell, p, xs, states=states, steps=[2, 4], method="closed_form").singular_values
    assert_close(sv, torch.linalg.svdvals(Jr.detach()), atol=1e-12, what="spectrum")


def test_a_cell_without_a_jacobian_is_refused_and_auto_is_jacrev():
    _, plain = _make([])
    p, xs, states = _case(plain)
    assert not has_closed_form(plain)
    with pytest.raises(SpectrumkitError, match="no closed form exists"):
        step_jacobians(plain, p, xs, states=states, method="closed_form")
    assert_close(step_jacobians(plain, p, xs, states=states),
                 reference_jacobian(plain, p, xs, states=states), atol=1e-10, what="auto")


def test_make_cell_refuses_a_jacobian_that_is_not_callable():
    with pytest.raises(SpectrumkitError, match="^make_cell: expected jacobian to be callable"):
        make_cell("bad", _step, _shapes, jacobian="closed")


@pytest.mark.parametrize("name", ["gru", "lstm", "gru_cho"])
def test_builtin_cells_carry_a_jacobian_that_matches_the_reference(name):
    cell = get(name)
    assert has_closed_form(cell)
    p = init_params(cell, 3, 4, "normal:0.8", seed=2, dtype=F64, bias="normal:0.3")
    xs = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    states = unroll(cell, p, xs)
    J = cell.jacobian(p, xs[1], states[1])                      # the documented contract
    assert_close(J, reference_jacobian(cell, p, xs, states=states, steps=[2])[0], atol=1e-10,
                 what=f"{name}.jacobian(params, x, s)")
