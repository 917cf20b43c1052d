"""Per-step Jacobians: every engine against the row-by-row reference and finite differences.

Engines: closed form (built-ins), vmap(jacrev), vmap(jacfwd), ``auto``; both blocks; all built-in
cells and the user-defined ``USER_CELL`` (see tests/cases.py). Float64 throughout.
"""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from spectrumkit import SpectrumkitError, unroll
from spectrumkit.cells import get
from spectrumkit.init import init_params
from spectrumkit.jacobians import (
    has_closed_form,
    iter_step_jacobians,
    jvp_step,
    reference_jacobian,
    step_jacobians,
    vjp_step,
)

from .cases import BUILTIN, USER_CELL
from .conftest import assert_close

F64 = torch.float64
CELLS = [*BUILTIN, USER_CELL]
IDS = [*BUILTIN, "user"]


def make_case(cell, D, N, T, B, seed, scale=0.8):
    """Params with non-zero biases, inputs and a random initial state (c and h start non-zero)."""
    p = init_params(cell, D, N, f"normal:{scale}", seed=seed, dtype=F64, bias="normal:0.3")
    g = torch.Generator().manual_seed(seed + 1)
    xs = torch.randn(T, B, D, generator=g, dtype=F64)
    S = get(cell).state_size(N)
    states = unroll(cell, p, xs, s0=0.5 * torch.randn(B, S, generator=g, dtype=F64))
    return p, xs, states


def methods(cell):
    return (["closed_form"] if has_closed_form(cell) else []) + ["jacrev", "jacfwd", "auto"]


sizes = st.fixed_dictionaries({
    "D": st.integers(1, 6), "N": st.integers(1, 6), "T": st.integers(1, 5), "B": st.integers(1, 3),
    "seed": st.integers(0, 2**16), "scale": st.floats(0.1, 1.5),
})


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
@given(case=sizes, data=st.data())
def test_every_method_equals_reference(cell, case, data):
    p, xs, states = make_case(cell, case["D"], case["N"], case["T"], case["B"], case["seed"],
                              case["scale"])
    T, N = case["T"], case["N"]
    steps = data.draw(st.one_of(
        st.none(), st.integers(1, T),
        st.lists(st.integers(1, T), min_size=1, max_size=T, unique=True)), label="steps")
    chunk = data.draw(st.one_of(st.none(), st.integers(1, T)), label="chunk_size")
    ref = reference_jacobian(cell, p, xs, states=states, steps=steps)
    for method in methods(cell):
        for block in ("full", "hh"):
            J = step_jacobians(cell, p, xs, states=states, steps=steps, method=method,
                               chunk_size=chunk, block=block)
            want = ref if block == "full" else ref[..., :N, :N]
            assert_close(J, want, atol=1e-10, what=f"{method} {block}")


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
@settings(max_examples=12)
@given(case=sizes)
def test_central_finite_differences(cell, case):
    """J[:, :, j] ≈ (step(s + ε e_j) - step(s - ε e_j)) / 2ε, ε = 1e-6 (gradcheck tolerances)."""
    p, xs, states = make_case(cell, case["D"], case["N"], case["T"], case["B"], case["seed"],
                              case["scale"])
    c = get(cell)
    if c.name == "rnn_relu":  # stay away from the kink of relu
        pre = xs @ p["weight_ih"].T + states[:-1] @ p["weight_hh"].T + p["bias_ih"] + p["bias_hh"]
        assume(bool((pre.abs() > 1e-4).all()))
    eps = 1e-6
    S = states.shape[-1]
    fd = torch.empty(case["T"], case["B"], S, S, dtype=F64)
    for t in range(case["T"]):
        for b in range(case["B"]):
            for j in range(S):
                e = torch.zeros(S, dtype=F64)
                e[j] = eps
                x, s = xs[t, b], states[t, b]
                fd[t, b, :, j] = (c.step(p, x, s + e) - c.step(p, x, s - e)) / (2 * eps)
    for method in methods(cell):
        J = step_jacobians(cell, p, xs, states=states, method=method)
        torch.testing.assert_close(J, fd, atol=1e-5, rtol=1e-3, msg=lambda m: f"{method}\n{m}")


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_products_equal_matrix_products(cell):
    p, xs, states = make_case(cell, 3, 4, 3, 3, seed=7)
    J = reference_jacobian(cell, p, xs, states=states)
    g = torch.Generator().manual_seed(3)
    for t in range(3):
        v = torch.randn(states.shape[1:], generator=g, dtype=F64)
        assert_close(jvp_step(cell, p, xs[t], states[t], v), torch.einsum("bij,bj->bi", J[t], v),
                     atol=1e-12, what="J v")
        assert_close(vjp_step(cell, p, xs[t], states[t], v), torch.einsum("bij,bi->bj", J[t], v),
                     atol=1e-12, what="J^T v")


@pytest.mark.parametrize("cell", ["gru", "gru_cho", "lstm", USER_CELL],
                         ids=["gru", "gru_cho", "lstm", "user"])
def test_streamed_chunks_concatenate_to_the_whole(cell):
    p, xs, states = make_case(cell, 2, 3, 7, 2, seed=11)
    whole = step_jacobians(cell, p, xs, states=states, steps=[1, 2, 4, 5, 7])
    chunks = list(iter_step_jacobians(cell, p, xs, states=states, steps=[1, 2, 4, 5, 7],
                                      chunk_size=2))
    assert [c.steps for c in chunks] == [[1, 2], [4, 5], [7]]
    assert torch.equal(torch.cat([c.jacobians for c in chunks]), whole)


def test_default_states_start_from_zero():
    p, xs, _ = make_case("lstm", 2, 3, 4, 2, seed=5)
    states = unroll("lstm", p, xs)
    assert torch.equal(step_jacobians("lstm", p, xs), step_jacobians("lstm", p, xs, states=states))


@pytest.mark.parametrize("cell", ["gru", "gru_cho"])
def test_closed_form_is_differentiable_in_params(cell):
    """d/dθ Σ J² through the closed form equals the same derivative through vmap(jacrev)."""
    p, xs, states = make_case(cell, 2, 3, 2, 2, seed=2)
    p = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    grads = []
    for method in ("closed_form", "jacrev"):
        J = step_jacobians(cell, p, xs, states=states, method=method)
        grads.append(torch.autograd.grad(J.pow(2).sum(), list(p.values())))
    for a, b in zip(*grads):
        assert_close(a, b, atol=1e-12, what="grad")


# ----------------------------------------------------------------------------------------------
# Bad input: each malformed argument gets its one-line error
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def gru_case():
    return make_case("gru", 2, 3, 4, 2, seed=1)


@pytest.mark.parametrize("steps", [[0], [5], [1, 1], 0, 5, []])
def test_steps_out_of_range_names_the_valid_range(gru_case, steps):
    p, xs, _ = gru_case
    with pytest.raises(SpectrumkitError, match=r"^step_jacobians: expected .*1\.\.4"):
        step_jacobians("gru", p, xs, steps=steps)


@pytest.mark.parametrize("kw, listed", [
    ({"chunk_size": 0}, "positive integer"), ({"chunk_size": -2}, "positive integer"),
    ({"method": "jacobian"}, "'auto', 'closed_form', 'jacrev', 'jacfwd'"),
    ({"block": "ch"}, "'full', 'hh'"),
])
def test_bad_options_list_the_accepted_values(gru_case, kw, listed):
    p, xs, _ = gru_case
    with pytest.raises(SpectrumkitError, match=r"^step_jacobians: expected") as e:
        step_jacobians("gru", p, xs, **kw)
    assert listed in str(e.value)
    with pytest.raises(SpectrumkitError, match=r"^iter_step_jacobians: expected"):
        iter_step_jacobians("gru", p, xs, **kw)  # refused at the call, not at the first next()


def test_closed_form_for_a_user_cell_points_to_autodiff():
    p, xs, _ = make_case(USER_CELL, 2, 3, 2, 1, seed=0)
    with pytest.raises(SpectrumkitError, match="no closed form exists") as e:
        step_jacobians(USER_CELL, p, xs, method="closed_form")
    assert "jacrev" in str(e.value) and "jacfwd" in str(e.value)


@pytest.mark.parametrize("what", ["int xs", "complex xs", "nan xs", "inf param", "nan param",
                                  "states shape"])
def test_bad_tensors_are_named(gru_case, what):
    p, xs, states = gru_case
    name = "xs"
    if what == "int xs":
        xs = xs.long()
    elif what == "complex xs":
        xs = xs.to(torch.complex128)
    elif what == "nan xs":
        xs = xs.clone()
        xs[1, 0, 0] = float("nan")
    elif what == "states shape":
        states, name = states[:-1], "states"
    else:
        p = dict(p)
        p["weight_hh"] = p["weight_hh"].clone()
        p["weight_hh"][0, 0] = float("inf") if what == "inf param" else float("nan")
        name = "params['weight_hh']"
    for fn in (step_jacobians, reference_jacobian):
        with pytest.raises(SpectrumkitError, match=rf"^{fn.__name__}: expected") as e:
            fn("gru", p, xs, states=states)
        assert name in str(e.value)


def test_gru_cho_chi_and_its_gradient_through_the_closed_form():
    """χ_F of gru_cho (closed form inside chi_step) and ∂χ_F/∂θ against the reference J and
    vmap(jacrev): the paths spectra and the jacobian score take for this cell."""
    from torch.func import jacrev, vmap

    from spectrumkit.spectra import chi

    p, xs, states = make_case("gru_cho", 3, 4, 3, 2, seed=4)
    ref = reference_jacobian("gru_cho", p, xs, states=states)
    assert_close(chi("gru_cho", p, xs, states=states, estimator="frobenius"),
                 ref.pow(2).sum((-1, -2)) / 4, atol=1e-12, what="chi frobenius")
    q = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    g_closed = torch.autograd.grad(chi("gru_cho", q, xs, states=states, estimator="frobenius")
                                   .sum(), list(q.values()))
    step = get("gru_cho").step
    J = torch.stack([vmap(jacrev(step, argnums=2), in_dims=(None, 0, 0))(q, xs[t], states[t])
                     for t in range(3)])
    g_auto = torch.autograd.grad(J.pow(2).sum() / 4, list(q.values()))
    for a, b in zip(g_closed, g_auto):
        assert_close(a, b, atol=1e-12, what="grad")
