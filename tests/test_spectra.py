"""Spectra, summaries, histograms, χ estimators and Lyapunov exponents, against exact answers."""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spectrumkit import SpectrumkitError
from spectrumkit.cells import make_cell
from spectrumkit.init import init_params
from spectrumkit.jacobians import reference_jacobian, step_jacobians
from spectrumkit.spectra import (
    SUMMARY_COLUMNS,
    chi,
    chi_step,
    effective_rank,
    histogram,
    lyapunov_exponents,
    reference_singular_values,
    singular_values,
    spectrum,
    spectrum_summary,
)

from .cases import USER_CELL
from .conftest import assert_close
from .test_jacobians import make_case

F64 = torch.float64

LINEAR = make_cell("linear", lambda p, x, s: p["A"] @ s + p["B"] @ x,
                   lambda D, N: {"A": (N, N), "B": (N, D)})
# An elementwise cell: its Jacobian is diagonal, diag(w · tanh'(w s + U x)).
ELEMENTWISE = make_cell("elementwise", lambda p, x, s: torch.tanh(p["w"] * s + p["U"] @ x),
                        lambda D, N: {"w": (N,), "U": (N, D)})


# ----------------------------------------------------------------------------------------------
# Singular values and summaries
# ----------------------------------------------------------------------------------------------


@given(a=arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 6),
                                      st.integers(1, 6)),
                elements=st.floats(-10, 10, allow_nan=False)))
def test_singular_values_equal_numpy_and_frobenius(a):
    J = torch.from_numpy(a)
    sv = singular_values(J)
    assert_close(sv, torch.from_numpy(np.linalg.svd(a, compute_uv=False)), atol=1e-10, rtol=1e-12,
                 what="svdvals vs numpy")
    assert_close(sv.pow(2).sum(-1), J.pow(2).sum((-1, -2)), atol=1e-9, rtol=1e-12, what="Σσ²")
    assert_close(reference_singular_values(J), sv, atol=1e-10, rtol=1e-12, what="reference")


def test_summary_of_a_hand_example():
    # Two matrices with singular values (3, 1) and (2, 2); near_zero = 1.5.
    sv = torch.tensor([[3.0, 1.0], [2.0, 2.0]], dtype=F64)
    s = spectrum_summary(sv, near_zero=1.5)
    erank_31 = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    want = {"mean": 2.0, "median": 2.0, "min": 1.0, "max": 3.0, "frac_near_zero": 0.25,
            "chi_F": (9 + 1 + 4 + 4) / 4, "condition": (3.0 + 1.0) / 2,
            "effective_rank": (erank_31 + 2.0) / 2}
    assert list(s) == list(SUMMARY_COLUMNS)
    for k, v in want.items():
        assert s[k] == pytest.approx(v, abs=1e-14), k


def test_effective_rank_extremes():
    assert effective_rank(torch.tensor([[1.0, 1.0, 1.0, 1.0]])).item() == pytest.approx(4.0)
    assert effective_rank(torch.tensor([[5.0, 0.0, 0.0]])).item() == 1.0
    assert effective_rank(torch.zeros(1, 3)).item() == 0.0
    assert spectrum_summary(torch.tensor([[1.0, 0.0]]))["condition"] == math.inf


def test_histogram_equals_numpy():
    sv = torch.rand(4, 5, 6, generator=torch.Generator().manual_seed(0), dtype=F64) * 3
    h = histogram(sv, bins=7)
    counts, edges = np.histogram(sv.numpy(), bins=7, range=(0, sv.max().item()))
    assert np.array_equal(h.counts, counts) and np.allclose(h.edges, edges) and h.outside == 0
    h = histogram(sv, bins=4, value_range=(1.0, 2.0))
    counts, _ = np.histogram(sv.numpy(), bins=4, range=(1.0, 2.0))
    assert np.array_equal(h.counts, counts)
    assert h.outside == int(((sv < 1) | (sv > 2)).sum())
    h = histogram(sv, bins=[0.0, 0.5, 3.0])
    assert h.counts.tolist() == np.histogram(sv.numpy(), bins=[0.0, 0.5, 3.0])[0].tolist()


# ----------------------------------------------------------------------------------------------
# spectrum(): streamed, chunk-independent, equal to the reference
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell, method", [("gru", "auto"), ("lstm", "auto"), ("lstm", "jacfwd"),
                                          (USER_CELL, "jacrev")], ids=["gru", "lstm", "lstm-fwd",
                                                                       "user"])
def test_spectrum_matches_reference_and_ignores_chunking(cell, method):
    p, xs, states = make_case(cell, 3, 4, 6, 3, seed=4)
    steps = [2, 3, 5, 6]
    ref_sv = reference_singular_values(reference_jacobian(cell, p, xs, states=states, steps=steps))
    runs = [spectrum(cell, p, xs, states=states, steps=steps, method=method, chunk_size=c, bins=9)
            for c in (None, 1, 3)]
    for sp in runs:
        assert list(sp.table.index) == steps
        assert_close(sp.singular_values, ref_sv, atol=1e-10, what="singular values")
        for i, t in enumerate(steps):
            want = spectrum_summary(ref_sv[i])
            got = sp.table.loc[t]
            for k in SUMMARY_COLUMNS:
                assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-10), (t, k)
        counts, _ = np.histogram(sp.singular_values.numpy(), bins=9,
                                 range=(0, sp.singular_values.max().item()))
        assert np.array_equal(sp.histogram.counts, counts)
    for sp in runs[1:]:  # chunked == unchunked, bit for bit
        assert torch.equal(sp.singular_values, runs[0].singular_values)
        assert sp.table.equals(runs[0].table)
        assert np.array_equal(sp.histogram.counts, runs[0].histogram.counts)
        assert sp.pooled == runs[0].pooled


def test_spectrum_hh_block():
    p, xs, states = make_case("lstm", 2, 3, 3, 2, seed=9)
    ref = reference_jacobian("lstm", p, xs, states=states)[..., :3, :3]
    sp = spectrum("lstm", p, xs, states=states, block="hh")
    assert_close(sp.singular_values, reference_singular_values(ref), atol=1e-10, what="hh")


# ----------------------------------------------------------------------------------------------
# χ estimators
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", USER_CELL], ids=["rnn", "lstm", "gru",
                                                                          "user"])
def test_chi_estimators_equal_their_definitions(cell):
    p, xs, states = make_case(cell, 3, 4, 4, 3, seed=6)
    J = reference_jacobian(cell, p, xs, states=states, steps=3)
    S = J.shape[-1]
    one = torch.ones(S, dtype=F64)
    want = {"ones": (J @ one).pow(2).sum(-1) / S,
            "transpose": (J.transpose(-1, -2) @ one).pow(2).sum(-1) / S,
            "frobenius": J.pow(2).sum((-1, -2)) / S}
    for est, w in want.items():
        assert_close(chi(cell, p, xs, states=states, steps=3, estimator=est), w, atol=1e-12,
                     what=est)


def test_hutchinson_within_three_standard_errors_of_frobenius():
    p, xs, states = make_case("gru", 3, 5, 3, 3, seed=8)
    J = reference_jacobian("gru", p, xs, states=states, steps=[1])[0]     # (B, S, S)
    S, k = J.shape[-1], 2000
    frob = J.pow(2).sum((-1, -2)) / S
    A = J.transpose(-1, -2) @ J
    # Var(vᵀAv) for Rademacher v = 2 (‖A‖_F² − Σ A_ii²) (Hutchinson 1990).
    var = 2 * (A.pow(2).sum((-1, -2)) - torch.diagonal(A, dim1=-2, dim2=-1).pow(2).sum(-1))
    se = var.sqrt() / math.sqrt(k) / S
    h = chi("gru", p, xs, states=states, steps=[1], estimator="hutchinson", probes=k, seed=0)[0]
    assert ((h - frob).abs() <= 3 * se).all(), (h, frob, se)
    assert not torch.equal(h, frob)


def test_ones_differs_from_frobenius_on_a_random_gru_and_agrees_for_diagonal_j():
    p, xs, states = make_case("gru", 3, 6, 3, 3, seed=12, scale=1.0)
    ones = chi("gru", p, xs, states=states, estimator="ones")
    frob = chi("gru", p, xs, states=states, estimator="frobenius")
    rel = (ones - frob).abs() / frob
    assert (rel > 1e-2).all() and rel.mean() > 0.1, (ones, frob)
    # Diagonal J: ‖J 1‖² = Σ_i J_ii² = ‖J‖_F² exactly.
    g = torch.Generator().manual_seed(1)
    q = {"w": torch.randn(5, generator=g, dtype=F64), "U": torch.randn(5, 2, generator=g,
                                                                      dtype=F64)}
    xe = torch.randn(4, 3, 2, generator=g, dtype=F64)
    J = step_jacobians(ELEMENTWISE, q, xe)
    assert torch.equal(J, torch.diag_embed(torch.diagonal(J, dim1=-2, dim2=-1)))
    for est in ("ones", "transpose"):
        assert_close(chi(ELEMENTWISE, q, xe, estimator=est),
                     chi(ELEMENTWISE, q, xe, estimator="frobenius"), atol=1e-13, what=est)


def test_chi_step_frobenius_gradient_closed_form_equals_autodiff():
    """chi_step's frobenius uses the closed form; its gradient must equal the jacrev path's."""
    from torch.func import jacrev, vmap

    from spectrumkit.cells import get

    p, xs, states = make_case("lstm", 2, 3, 2, 2, seed=3)
    p = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    cell = get("lstm")
    x, s = xs[1], states[1]
    fast = chi_step(cell, p, x, s, "frobenius")
    J = vmap(jacrev(cell.step, argnums=2), in_dims=(None, 0, 0))(p, x, s)
    slow = J.pow(2).sum((-1, -2)) / 6
    assert_close(fast, slow, atol=1e-12, what="value")
    for a, b in zip(torch.autograd.grad(fast.sum(), list(p.values())),
                    torch.autograd.grad(slow.sum(), list(p.values()))):
        assert_close(a, b, atol=1e-12, what="grad")


# ----------------------------------------------------------------------------------------------
# Lyapunov exponents
# ----------------------------------------------------------------------------------------------


def _linear(A, T=30, B=2):
    N = A.shape[0]
    p = {"A": A, "B": torch.ones(N, 1, dtype=F64)}
    xs = torch.randn(T, B, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    return p, xs


def test_lyapunov_linear_diagonal():
    d = torch.tensor([1.5, -0.9, 0.3, -0.05, 1.1], dtype=F64)
    p, xs = _linear(torch.diag(d))
    want = d.abs().log().sort(descending=True).values
    assert_close(lyapunov_exponents(LINEAR, p, xs), want.expand(2, 5), atol=1e-6, what="k=S")
    assert_close(lyapunov_exponents(LINEAR, p, xs, reorth_every=3), want.expand(2, 5), atol=1e-6,
                 what="reorth_every=3")
    # k < S from a random frame: the leading directions emerge during the warmup.
    got = lyapunov_exponents(LINEAR, p, xs, k=2, warmup=25, seed=0)
    assert_close(got, want[:2].expand(2, 2), atol=1e-6, what="k=2")


def test_lyapunov_scaled_orthogonal():
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1),
                                       dtype=F64))
    p, xs = _linear(0.7 * q)
    want = torch.full((2, 6), math.log(0.7), dtype=F64)
    assert_close(lyapunov_exponents(LINEAR, p, xs), want, atol=1e-6, what="k=S")
    assert_close(lyapunov_exponents(LINEAR, p, xs, k=3, seed=2), want[:, :3], atol=1e-6,
                 what="k=3")


def test_lyapunov_sum_is_mean_log_det_for_nonlinear_cells():
    """Σ_i λ_i = (1/T) Σ_t log|det J_t| exactly (|det Q| = 1), for built-in and user cells."""
    for cell in ("gru", "lstm", USER_CELL):
        p, xs, _ = make_case(cell, 2, 3, 6, 2, seed=10)
        J = reference_jacobian(cell, p, xs)
        want = torch.linalg.slogdet(J)[1].mean(0)
        assert_close(lyapunov_exponents(cell, p, xs).sum(-1), want, atol=1e-10, what=str(cell))


def test_lyapunov_contracting_tanh_rnn_is_negative():
    p = init_params("rnn", 3, 8, "normal:0.1", seed=0, dtype=F64)   # ‖W_hh‖ < 1: contracting
    xs = torch.randn(40, 3, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    lam = lyapunov_exponents("rnn", p, xs, warmup=5)
    assert (lam < 0).all() and torch.all(lam[:, :-1] >= lam[:, 1:])


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------


def test_bad_inputs_of_the_spectra_functions():
    p, xs, _ = make_case("gru", 2, 3, 4, 2, seed=1)
    cases = [
        (lambda: lyapunov_exponents("gru", p, xs, k=4), r"expected k in 1\.\.S=3"),
        (lambda: lyapunov_exponents("gru", p, xs, k=0), "positive integer"),
        (lambda: lyapunov_exponents("gru", p, xs, k=2), "seed= for a random start"),
        (lambda: lyapunov_exponents("gru", p, xs, warmup=4), r"warmup an int in 0\.\.T-1=3"),
        (lambda: lyapunov_exponents("gru", p, xs, reorth_every=0), "reorth_every"),
        (lambda: lyapunov_exponents("gru", p, xs.long()), "xs"),
        (lambda: chi("gru", p, xs, estimator="trace"),
         "'ones', 'transpose', 'frobenius', 'hutchinson'"),
        (lambda: chi("gru", p, xs, estimator="hutchinson"), "exactly one of generator= or seed="),
        (lambda: chi("gru", p, xs, steps=[5]), r"1\.\.4"),
        (lambda: chi("gru", p, xs, estimator="hutchinson", probes=0, seed=0), "probes"),
        (lambda: spectrum("gru", p, xs, chunk_size=0), "chunk_size"),
        (lambda: spectrum("gru", p, xs, method="svd"), "'auto', 'closed_form'"),
        (lambda: spectrum("gru", p, xs, bins=0), "bins"),
        (lambda: spectrum("gru", p, xs, bins=[1.0, 0.5]), "increasing edges"),
        (lambda: spectrum("gru", p, xs, near_zero=-1.0), "near_zero"),
        (lambda: spectrum(USER_CELL, *make_case(USER_CELL, 2, 3, 2, 1, 0)[:2],
                          method="closed_form"), "no closed form exists"),
        (lambda: spectrum_summary(torch.tensor([1.0, -1.0])), "sv >= 0"),
        (lambda: spectrum_summary(torch.tensor([1.0, float("nan")])), "sv to be finite"),
        (lambda: singular_values(torch.ones(3)), r"J of shape \(\.\.\., M, K\)"),
        (lambda: singular_values(torch.ones(2, 2, dtype=torch.complex64)), "J to be a real"),
        (lambda: histogram(torch.ones(3), bins=3, value_range=(1.0, 1.0)), "lo < hi"),
    ]
    for call, pattern in cases:
        with pytest.raises(SpectrumkitError, match=r"^\w+: expected") as e:
            call()
        assert e.match(pattern), (pattern, str(e.value))


# ----------------------------------------------------------------------------------------------
# The `spectrumkit spectrum` command
# ----------------------------------------------------------------------------------------------


def test_cli_spectrum_writes_what_the_library_computes(tmp_path, cli):
    import pandas as pd

    args = ["spectrum", "--cell", "lstm", "--input-size", "3", "--hidden-size", "4", "--init",
            "normal:0.5", "--spectrum-batch", "5", "--seq-len", "6", "--jacobian-steps", "last:3",
            "--data",
            "gaussian", "--seed", "7", "--dtype", "float64", "--bins", "6", "--chunk-size", "2",
            "--device", "cpu", "--out", str(tmp_path / "out")]
    r = cli(*args)
    assert r.exit_code == 0, r.output
    # The same draws: params from seed 7, x ~ N(0, 1) of shape (B, T, D) from seed 8 (NOTE [CLI
    # data]) drawn in float32 and cast (NOTE [One draw]), then time-major.
    p = init_params("lstm", 3, 4, "normal:0.5", seed=7, dtype=F64)
    xs = torch.randn(5, 6, 3, generator=torch.Generator().manual_seed(8)).to(F64).transpose(0, 1)
    want = spectrum("lstm", p, xs, steps=3, bins=6)
    got = pd.read_csv(tmp_path / "out" / "spectrum.csv", index_col="step")
    assert list(got.index) == [4, 5, 6]
    assert np.allclose(got.to_numpy(), want.table.to_numpy(), rtol=1e-15, atol=0)
    hist = pd.read_csv(tmp_path / "out" / "histogram.csv")
    assert hist["count"].tolist() == want.histogram.counts.tolist()
    assert np.allclose(hist["right"], want.histogram.edges[1:], rtol=1e-15)
    for suffix in ("pdf", "png"):
        assert (tmp_path / "out" / f"histogram.{suffix}").stat().st_size > 0
    assert f"{want.table.loc[6, 'mean']:.4g}" in r.output
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temp files left behind


@pytest.mark.parametrize("steps, message", [
    ("last:9", r"error: spectrum: expected --jacobian-steps \(last U\) in 1\.\.6"),
    ("0,2", r"error: spectrum: expected --jacobian-steps in the valid range 1\.\.6"),
    ("first:2", "error: spectrum: expected --jacobian-steps as last:U, all, or a comma list"),
])
def test_cli_spectrum_bad_steps_is_one_line_exit_2(tmp_path, steps, message, cli):
    r = cli("spectrum", "--cell", "gru", "--input-size", "2", "--hidden-size", "3", "--spectrum-batch",
            "2", "--seq-len", "6", "--jacobian-steps", steps, "--out", str(tmp_path))
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert re.match(message, err), err
