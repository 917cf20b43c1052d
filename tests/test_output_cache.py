"""Reused outputs of the Jacobian engines (NOTE [Reused outputs]) and the LSTM's chained rows
(NOTE [Chained rows]): an output that reuses freed memory holds the same values as a fresh one,
memory still in use is never reused, the cache keeps to its limit, and the chained terms obey
the relations the engine relies on.

Float64 throughout; every large output here is at least 4 MiB, the size from which outputs are
cached.
"""

import gc

import pytest
import torch

import spectrumkit._output_cache as cache
from spectrumkit._steps import closed_form
from spectrumkit.cells import get
from spectrumkit.jacobians import empty_cache, reference_jacobian, step_jacobians
from spectrumkit.spectra import spectrum

from .conftest import assert_close
from .test_jacobians import make_case

F64 = torch.float64
BIG = (8, 256, 256)                     # 4 MiB in float64


@pytest.fixture(autouse=True)
def _empty_cache():
    empty_cache()
    yield
    empty_cache()


def test_a_freed_output_is_reused_and_a_fresh_one_is_zero():
    like = torch.zeros(1, dtype=F64)
    a, zeroed = cache.take_output(BIG, like)
    assert zeroed and float(a.abs().sum()) == 0.0
    ptr = a.data_ptr()
    a.fill_(7.0)
    del a
    assert cache.cached_bytes() == 8 * 256 * 256 * 8
    b, zeroed = cache.take_output(BIG, like)
    assert (b.data_ptr(), zeroed) == (ptr, False)
    assert float(b[0, 0, 0]) == 7.0                     # old values: the caller writes every entry
    assert cache.cached_bytes() == 0


def test_memory_still_viewed_is_not_reused():
    like = torch.zeros(1, dtype=F64)
    a, _ = cache.take_output(BIG, like)
    row, array = a[3], a.numpy()
    del a
    gc.collect()
    assert cache.cached_bytes() == 0                    # a view and a NumPy array still hold it
    del row
    gc.collect()
    assert cache.cached_bytes() == 0
    array[0, 0, 0] = 1.0
    del array
    gc.collect()
    assert cache.cached_bytes() == 8 * 256 * 256 * 8


def test_small_requests_and_other_devices_are_not_cached():
    like = torch.zeros(1, dtype=F64)
    small, zeroed = cache.take_output((2, 3), like)
    assert zeroed and small.shape == (2, 3)
    del small
    assert cache.cached_bytes() == 0


def test_a_buffer_more_than_twice_the_request_is_left_alone():
    like = torch.zeros(1, dtype=F64)
    a, _ = cache.take_output((24, 256, 256), like)      # 12 MiB
    del a
    b, zeroed = cache.take_output(BIG, like)            # 4 MiB: the 12 MiB buffer does not fit
    assert zeroed and cache.cached_bytes() == 24 * 256 * 256 * 8
    del b


def test_the_cache_keeps_to_its_limit_most_recent_first(monkeypatch):
    monkeypatch.setattr(cache, "CACHE_BYTES", 2 * 8 * 256 * 256 * 8)     # two 4 MiB buffers
    like = torch.zeros(1, dtype=F64)
    a, b, c = (cache.take_output(BIG, like)[0] for _ in range(3))
    ptrs = [a.data_ptr(), b.data_ptr(), c.data_ptr()]
    del a, b, c                                         # freed in this order
    assert cache.cached_bytes() == 2 * 8 * 256 * 256 * 8
    got = cache.take_output(BIG, like)[0]
    assert got.data_ptr() == ptrs[2]                    # the most recently freed
    empty_cache()
    assert cache.cached_bytes() == 0


@pytest.mark.parametrize("cell", ["lstm", "peephole_lstm", "gru"])
def test_a_reused_output_full_of_nan_gives_the_same_jacobians(cell):
    """The second call takes the first call's memory, poisoned, and must write every entry (an
    LSTM's columns from c, which only diagonals reach, included)."""
    N, B = 64, 128
    p, xs, states = make_case(cell, 3, N, 3, B, seed=17)
    first = step_jacobians(cell, p, xs, states=states, steps=[2])
    want = first.clone()
    first.fill_(float("nan"))
    ptr = first.data_ptr()
    del first
    again = step_jacobians(cell, p, xs, states=states, steps=[2])
    assert again.data_ptr() == ptr
    assert torch.equal(again, want)
    assert_close(again[0], closed_form(get(cell), p, xs[1], states[1], "full"), atol=1e-13,
                 what="reused output vs gate by gate")


def test_spectrum_in_a_reused_buffer_equals_the_singular_values():
    N, B = 64, 128
    p, xs, states = make_case("lstm", 3, N, 4, B, seed=19)
    J = step_jacobians("lstm", p, xs, states=states, steps=[1])
    J.fill_(float("nan"))
    del J                                               # its memory is the next step buffer
    sp = spectrum("lstm", p, xs, states=states, steps=[3, 4])
    want = torch.linalg.svdvals(step_jacobians("lstm", p, xs, states=states, steps=[3, 4]))
    assert_close(sp.singular_values, want, atol=1e-12, what="spectrum in a reused buffer")


@pytest.mark.parametrize("cell", ["lstm", "peephole_lstm"])
def test_chained_terms_obey_the_relations_of_the_chain(cell):
    """β_h,g = d β_c,g for the gates i, f, g; β_c,o = 0; α_h = d α_c (NOTE [Chained rows])."""
    p, xs, states = make_case(cell, 3, 5, 2, 4, seed=23)
    form = get(cell).jacobian
    assert form.chain == (3,)
    t = form.terms(p, xs[1], states[1])
    d = t.scale[:, None, :]
    assert torch.equal(t.beta[:, 0, :3], d * t.beta[:, 1, :3])
    assert torch.equal(t.beta[:, 1, 3], torch.zeros_like(t.beta[:, 1, 3]))
    assert torch.equal(t.alpha[:, 0], d * t.alpha[:, 1])


def test_lstm_h_rows_from_c_are_the_chain_factor_times_the_forget_gate():
    """∂h'/∂c = diag(d σ(f)), from the row-by-row reference: the chain's α_h = d α_c."""
    N = 5
    p, xs, states = make_case("lstm", 3, N, 2, 4, seed=29)
    t = get("lstm").jacobian.terms(p, xs[1], states[1])
    ref = reference_jacobian("lstm", p, xs, states=states, steps=[2])[0]
    assert_close(ref[:, :N, N:], torch.diag_embed(t.scale * t.alpha[:, 1, 1]), atol=1e-12,
                 what="dh'/dc against the reference")
