"""The step Jacobian as a scipy LinearOperator: products, transposes and svds against the dense J."""

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import aslinearoperator, svds

from spectrumkit import SpectrumkitError, init_params, unroll
from spectrumkit.operators import step_operator

F64 = torch.float64

CASES = [
    {"id": "gru", "cell": "gru", "D": 3, "N": 12, "seed": 1},
    {"id": "lstm", "cell": "lstm", "D": 3, "N": 8, "seed": 2},  # S = 2N = 16
    {"id": "rnn", "cell": "rnn", "D": 2, "N": 10, "seed": 3},
]


def _point(case, dtype=F64):
    p = init_params(case["cell"], case["D"], case["N"], "normal:0.6", seed=case["seed"],
                    dtype=dtype)
    g = torch.Generator().manual_seed(case["seed"] + 100)
    xs = torch.randn(4, 1, case["D"], generator=g, dtype=F64).to(dtype)
    states = unroll(case["cell"], p, xs)
    x, s = xs[3, 0], states[3, 0]  # J_4 of example 0
    return p, x, s


def _dense(case, p, x, s):
    """The reference J (S, S) by torch.autograd.functional.jacobian of the single-example step."""
    from spectrumkit.cells import get

    step = get(case["cell"]).step
    return torch.autograd.functional.jacobian(
        lambda s_: step(p, x.unsqueeze(0), s_.unsqueeze(0))[0], s).numpy()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_svds_on_the_operator_equals_the_dense_top5_singular_values(case):
    p, x, s = _point(case)
    J = _dense(case, p, x, s)
    S = 2 * case["N"] if case["cell"] == "lstm" else case["N"]
    assert J.shape == (S, S)
    op = step_operator(case["cell"], p, x, s)
    assert op.shape == (S, S) and op.dtype == np.float64
    top = np.sort(svds(op, k=5, return_singular_vectors=False, random_state=0, tol=1e-14))[::-1]
    dense = np.linalg.svd(J, compute_uv=False)[:5]
    np.testing.assert_allclose(top, dense, rtol=1e-6, atol=0)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_operator_products_equal_the_dense_jacobian(case):
    p, x, s = _point(case)
    J = _dense(case, p, x, s)
    op = step_operator(case["cell"], p, x, s)
    rng = np.random.default_rng(case["seed"])
    S = J.shape[0]
    v, V = rng.standard_normal(S), rng.standard_normal((S, 3))
    np.testing.assert_allclose(op.matvec(v), J @ v, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(op.rmatvec(v), J.T @ v, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(op.matmat(V), J @ V, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(op.rmatmat(V), J.T @ V, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(op.T @ v, J.T @ v, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose((op.H @ aslinearoperator(np.eye(S))) @ v, J.T @ v,
                               rtol=1e-12, atol=1e-13)


def test_float32_params_give_float32_products_returned_as_float64():
    case = CASES[0]
    p64, x64, s64 = _point(case)
    p32 = {k: v.float() for k, v in p64.items()}
    op = step_operator("gru", p32, x64.float(), s64.float())
    v = np.random.default_rng(0).standard_normal(op.shape[0])
    out = op.matvec(v)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, _dense(case, p64, x64, s64) @ v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape,s_shape,needle", [
    ((1, 3), (12,), "x of shape (D,)"),
    ((3,), (1, 12), "s of shape (S,)"),
    ((3,), (7,), "s of shape (S=12,)"),
    ((4,), (12,), "D=3"),
])
def test_step_operator_refuses_bad_shapes_in_one_line(x_shape, s_shape, needle):
    p = init_params("gru", 3, 12, "normal:0.6", seed=0, dtype=F64)
    with pytest.raises(SpectrumkitError, match="^step_operator: expected") as e:
        step_operator("gru", p, torch.zeros(x_shape, dtype=F64), torch.zeros(s_shape, dtype=F64))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_step_operator_refuses_a_state_of_another_dtype():
    p = init_params("gru", 3, 12, "normal:0.6", seed=0, dtype=F64)
    with pytest.raises(SpectrumkitError, match="^step_operator: expected s of the params' dtype"):
        step_operator("gru", p, torch.zeros(3, dtype=F64), torch.zeros(12))
