"""The closed form written in one pass (NOTE [One pass over J]) against the gate-by-gate assembly
and the row-by-row reference; the streamed spectra one step at a time; the blocked effective rank.

Float64 throughout. The graph-free assembly is what ``step_jacobians`` runs when nothing requires
grad; the gate-by-gate one (``closed_form``) is the differentiable path.
"""

import numpy as np
import pytest
import torch
from torch.func import vmap

import spectrumkit.spectra._common as spectra
from spectrumkit.cells import get
from spectrumkit._closed_form import graph_free
from spectrumkit._output_cache import new_output
from spectrumkit._steps import closed_form, closed_form_into
from spectrumkit.jacobians import reference_jacobian, step_jacobians
from spectrumkit.spectra import effective_rank, spectrum

from .cases import BUILTIN
from .conftest import assert_close
from .test_jacobians import make_case

F64 = torch.float64


@pytest.mark.parametrize("block", ["full", "hh"])
@pytest.mark.parametrize("cell", BUILTIN)
def test_one_pass_equals_gate_by_gate_and_reference(cell, block):
    p, xs, states = make_case(cell, 3, 5, 4, 3, seed=21)
    T, B = xs.shape[:2]
    want = reference_jacobian(cell, p, xs, states=states)
    if block == "hh":
        N = 5
        want = want[..., :N, :N]
    gate_by_gate = torch.stack([closed_form(get(cell), p, xs[t], states[t], block)
                                for t in range(T)])
    size = want.shape[-1]
    out = torch.full((T, B, size, size), float("nan"), dtype=F64)    # every entry must be written
    got = closed_form_into(get(cell), p, xs, states[:T], block, out)
    assert got is out
    assert_close(got, want, atol=1e-10, what=f"one pass vs reference, {cell} {block}")
    assert_close(got, gate_by_gate, atol=1e-13, what=f"one pass vs gate by gate, {cell} {block}")
    assert_close(step_jacobians(cell, p, xs, states=states, block=block), got, atol=0,
                 what="step_jacobians runs the one-pass assembly")


@pytest.mark.parametrize("cell", ["gru", "peephole_lstm"])
def test_large_output_on_huge_pages_holds_the_same_values(cell):
    """An output of 4 MiB and more is allocated by NumPy (NOTE [Fresh pages]): same values."""
    N, B = 64, 128
    p, xs, states = make_case(cell, 3, N, 2, B, seed=5)
    S = get(cell).state_size(N)
    assert B * S * S * 8 >= 4 * 2**20
    J = step_jacobians(cell, p, xs, states=states, steps=1)
    assert J.shape == (1, B, S, S) and J.is_contiguous()
    want = closed_form(get(cell), p, xs[1], states[1], "full")
    assert_close(J[0], want, atol=1e-13, what="huge-page output")
    J2 = J * 2                                          # an ordinary tensor for every later use
    assert_close(J2[0], 2 * want, atol=1e-13, what="arithmetic on it")


def test_new_output_has_the_dtype_device_and_shape():
    like = torch.zeros(2, dtype=F64)
    big, small = new_output((8, 256, 256), like), new_output((2, 3), like)
    assert (big.shape, big.dtype, small.shape, small.dtype) == ((8, 256, 256), F64, (2, 3), F64)
    big.fill_(1.5)
    assert float(big.sum()) == 1.5 * 8 * 256 * 256


def test_graph_needed_when_params_require_grad_or_under_vmap():
    p, xs, states = make_case("gru", 2, 3, 2, 2, seed=3)
    assert graph_free(p, xs[0], states[0])
    q = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    assert not graph_free(q, xs[0], states[0])
    with torch.no_grad():
        assert graph_free(q, xs[0], states[0])
    seen = []
    vmap(lambda s: seen.append(graph_free(p, xs[0], s)) or s)(states[0])
    assert seen == [False]


def test_differentiable_path_matches_graph_free_values():
    p, xs, states = make_case("lstm", 2, 4, 3, 2, seed=9)
    q = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    fast = step_jacobians("lstm", p, xs, states=states)
    slow = step_jacobians("lstm", q, xs, states=states)
    assert slow.requires_grad and not fast.requires_grad
    assert_close(slow.detach(), fast, atol=1e-13, what="graph vs graph-free")


@pytest.mark.parametrize("cell", ["gru_cho", "lstm"])
def test_spectrum_one_step_at_a_time_equals_svd_of_each_step(cell):
    p, xs, states = make_case(cell, 3, 5, 6, 3, seed=13)
    steps = [2, 3, 6]
    J = step_jacobians(cell, p, xs, states=states, steps=steps)
    want = torch.stack([torch.linalg.svdvals(J[i]) for i in range(len(steps))])
    runs = [spectrum(cell, p, xs, states=states, steps=steps, chunk_size=c) for c in (None, 1, 2)]
    for sp in runs:
        assert_close(sp.singular_values, want, atol=1e-13, what="spectrum vs svdvals of each step")
        assert torch.equal(sp.singular_values, runs[0].singular_values)    # whatever the chunk
    ref = torch.from_numpy(np.linalg.svd(reference_jacobian(cell, p, xs, states=states,
                                                            steps=steps).numpy(),
                                         compute_uv=False).copy())
    assert_close(sp.singular_values, ref, atol=1e-10, what="against the reference")


def test_effective_rank_in_blocks_equals_the_formula(monkeypatch):
    g = torch.Generator().manual_seed(0)
    sv = torch.rand(3, 5, 7, generator=g, dtype=F64)
    sv[0, 0] = 0.0                                      # the zero matrix: rank 0
    sv[0, 1] = torch.tensor([2.0, 0, 0, 0, 0, 0, 0], dtype=F64)   # one non-zero σ: rank 1
    sv[0, 2] = 0.25                                     # equal σ: rank S
    p = sv / sv.sum(-1, keepdim=True)
    logs = torch.where(p > 0, p * torch.log(p), torch.zeros_like(p))
    want = torch.exp(-logs.sum(-1))
    want[0, 0] = 0.0
    monkeypatch.setattr(spectra, "_RANK_BLOCK", 10)     # one row (7 entries) per block
    got = effective_rank(sv)
    assert_close(got, want, atol=1e-13, what="blocked effective rank")
    assert got[0, 1].item() == pytest.approx(1.0) and got[0, 2].item() == pytest.approx(7.0)
