"""Initialization statistics and determinism; torch.nn interop round trips and refusals."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from spectrumkit import SpectrumkitError, from_torch, init_params, to_torch
from spectrumkit.init import parse_scheme
from spectrumkit.cells import get

from .cases import USER_CELL


def test_normal_std_within_2_percent():
    p = init_params("gru", 28, 400, "normal:0.1", seed=0)
    w = torch.cat([p["weight_ih"].flatten(), p["weight_hh"].flatten()])
    assert abs(w.std().item() - 0.1) / 0.1 < 0.02


@pytest.mark.parametrize("name", ["rnn", "lstm", "peephole_lstm", "gru"])
def test_glorot_variance_per_block(name):
    D, N = 28, 400
    cell = get(name)
    p = init_params(name, D, N, "glorot", seed=1, dtype=torch.float64)
    for tname, lay in cell.layout.items():
        if lay.block == "bias":
            assert float(p[tname].abs().max()) == 0.0  # biases zero unless asked
            continue
        for k, _ in enumerate(lay.gates):
            blk = p[tname][k * N:(k + 1) * N]
            expected = 2.0 / (blk.shape[1] + blk.shape[0])
            assert abs(blk.var().item() - expected) / expected < 0.03, (tname, k)


def test_uniform_and_he_and_torch_ranges():
    p = init_params("gru", 10, 50, "uniform:0,0.1", seed=0, dtype=torch.float64)
    w = p["weight_hh"]
    assert 0 <= w.min() and w.max() <= 0.1 and abs(w.mean().item() - 0.05) < 0.003
    p = init_params("rnn", 400, 300, "he", seed=0, dtype=torch.float64)
    assert abs(p["weight_ih"].var().item() / (2 / 400) - 1) < 0.03
    p = init_params("lstm", 5, 100, "torch", seed=0, dtype=torch.float64)
    k = 1 / math.sqrt(100)
    assert p["bias_ih"].abs().max() <= k and p["bias_ih"].abs().max() > 0.9 * k  # torch biases


def test_orthogonal_per_gate_and_override():
    N = 6
    p = init_params("gru", 4, N, "glorot;recurrent=orthogonal", seed=0, dtype=torch.float64)
    for k in range(3):
        q = p["weight_hh"][k * N:(k + 1) * N]
        torch.testing.assert_close(q @ q.T, torch.eye(N, dtype=torch.float64), atol=1e-12, rtol=0)
    p2 = init_params("gru", 4, N, "orthogonal", seed=0, dtype=torch.float64)
    wi = p2["weight_ih"][:N]  # (N, D) with D < N: orthonormal columns
    torch.testing.assert_close(wi.T @ wi, torch.eye(4, dtype=torch.float64), atol=1e-12, rtol=0)
    d = init_params("gru", 4, N, {"default": "glorot", "recurrent": "orthogonal"}, seed=0,
                    dtype=torch.float64)
    assert all(torch.equal(p[k], d[k]) for k in p)


def test_seed_determinism_and_rng_untouched():
    state = torch.random.get_rng_state()
    a = init_params("lstm", 3, 5, "glorot", seed=7)
    b = init_params("lstm", 3, 5, "glorot", seed=7)
    c = init_params("lstm", 3, 5, "glorot", seed=8)
    g = torch.Generator().manual_seed(7)
    d = init_params("lstm", 3, 5, "glorot", generator=g)
    for k in a:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], d[k])
    assert not torch.equal(a["weight_hh"], c["weight_hh"])
    for scheme in ("glorot", "glorot_uniform", "he", "normal:0.1", "uniform:0,0.1", "orthogonal",
                   "torch", "constant:0.1", "normal:0.07;bias_ih=constant:0.1,-0.1,0.1"):
        init_params("gru", 3, 4, scheme, seed=0)
        init_params("gru_cho", 3, 4, scheme, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("bad", ["normal:abc", "uniform:1", "glorotx", "uniform:2,1", "normal:-1",
                                 "glorot;weights=he"])
def test_bad_scheme_shows_grammar(bad):
    with pytest.raises(SpectrumkitError, match="normal:STD|uniform:A,B"):
        init_params("gru", 3, 4, bad, seed=0)


def test_seed_or_generator_required():
    with pytest.raises(SpectrumkitError, match="generator= or seed="):
        init_params("gru", 3, 4)


def test_parse_scheme_values():
    assert parse_scheme("normal:0.1").args == (0.1,)
    assert parse_scheme("uniform:-1e-1,2").args == (-0.1, 2.0)


@pytest.mark.parametrize("module", [
    nn.RNN(3, 4), nn.RNN(3, 4, nonlinearity="relu", batch_first=True), nn.LSTM(3, 4),
    nn.GRU(3, 4, batch_first=True), nn.RNNCell(3, 4), nn.LSTMCell(3, 4), nn.GRUCell(3, 4),
], ids=lambda m: type(m).__name__)
def test_round_trip_exact(module):
    cell, params = from_torch(module)
    kind = "cell" if "Cell" in type(module).__name__ else "sequence"
    back = to_torch(cell, params, kind=kind, batch_first=getattr(module, "batch_first", False))
    assert type(back) is type(module)
    a, b = dict(module.named_parameters()), dict(back.named_parameters())
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    if isinstance(module, nn.RNNBase) or isinstance(module, nn.RNNCellBase):
        assert getattr(back, "nonlinearity", None) == getattr(module, "nonlinearity", None)


def test_bias_false_becomes_zero_biases():
    cell, params = from_torch(nn.GRU(3, 4, bias=False))
    assert float(params["bias_ih"].abs().sum()) == 0.0


@pytest.mark.parametrize("module,setting", [
    (nn.LSTM(3, 4, num_layers=2), "num_layers"), (nn.GRU(3, 4, bidirectional=True), "bidirectional"),
    (nn.LSTM(3, 4, proj_size=2), "proj_size"),
    (nn.GRU(3, 4, num_layers=1, dropout=0.0), None),
], ids=["layers", "bidir", "proj", "ok"])
def test_unsupported_settings_named(module, setting):
    if setting is None:
        from_torch(module)
        return
    with pytest.raises(SpectrumkitError, match=setting):
        from_torch(module)


def test_dropout_named():
    with pytest.warns(UserWarning, match="dropout"):
        module = nn.GRU(3, 4, num_layers=1, dropout=0.5)
    with pytest.raises(SpectrumkitError, match="dropout"):
        from_torch(module)


def test_to_torch_refuses_peephole_and_user_cells():
    with pytest.raises(SpectrumkitError, match="peephole_lstm"):
        to_torch("peephole_lstm", init_params("peephole_lstm", 2, 3, seed=0))
    with pytest.raises(SpectrumkitError, match="user_leaky"):
        to_torch(USER_CELL, init_params(USER_CELL, 2, 3, seed=0))


def test_models_leave_the_global_rng_alone():
    from spectrumkit.models import LanguageModel, SequenceClassifier, SequenceRegressor

    state = torch.random.get_rng_state()
    a = SequenceClassifier("gru", 3, 4, 5, seed=0)
    LanguageModel("lstm", 11, 3, 4, seed=0)
    SequenceRegressor("rnn", 2, 3, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = SequenceClassifier("gru", 3, 4, 5, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    # the head is Xavier-normal from the model's generator: variance 2 / (fan_in + fan_out)
    big = SequenceClassifier("rnn", 2, 400, 400, seed=1, dtype=torch.float64)
    assert abs(big.head.weight.var().item() / (2 / 800) - 1) < 0.03


def test_to_torch_refuses_gru_cho_naming_why():
    with pytest.raises(SpectrumkitError, match=r"^to_torch: expected .*reset before the product.*"
                                               r"got 'gru_cho'"):
        to_torch("gru_cho", init_params("gru_cho", 2, 3, seed=0))


@pytest.mark.parametrize("name", ["rnn", "lstm", "peephole_lstm", "gru", "gru_cho"])
def test_constant_gives_exactly_c(name):
    C = 0.1
    p = init_params(name, 3, 4, f"normal:0.5;bias=constant:{C}", seed=0, dtype=torch.float64)
    cell = get(name)
    for k, t in p.items():
        if cell.is_bias(k):
            assert torch.equal(t, torch.full_like(t, 0.1)), k
        else:
            assert float(t.abs().min()) > 0, k  # the weights were drawn, not filled
    w = init_params(name, 3, 4, "constant:-2.5e-1", seed=0, dtype=torch.float32)
    assert all(torch.equal(t, torch.full_like(t, -0.25)) for k, t in w.items()
               if not cell.is_bias(k))
    assert all(float(t.abs().max()) == 0.0 for k, t in w.items() if cell.is_bias(k))


def test_constant_per_gate_and_tensor_overrides():
    N = 4
    p = init_params("gru_cho", 3, N, "normal:0.07;bias_ih=constant:0.1,-0.1,0.1", seed=0,
                    dtype=torch.float64)
    want = torch.tensor([0.1] * N + [-0.1] * N + [0.1] * N, dtype=torch.float64)
    assert torch.equal(p["bias_ih"], want)
    assert float(p["bias_hh"].abs().max()) == 0.0
    # the tensor override wins over its block's scheme, and the dict form says the same
    q = init_params("lstm", 2, N, {"default": "normal:0.3", "bias": "constant:1",
                                   "bias_hh": "constant:0,2,0,0"}, seed=0, dtype=torch.float64)
    assert torch.equal(q["bias_ih"], torch.ones(4 * N, dtype=torch.float64))
    assert q["bias_hh"].tolist() == [0.0] * N + [2.0] * N + [0.0] * (2 * N)
    # weight_hh alone gets the constant; weight_ih keeps the default draw
    r = init_params("gru", 2, N, "normal:0.3;weight_hh=constant:0.5", seed=3, dtype=torch.float64)
    assert torch.equal(r["weight_hh"], torch.full((3 * N, N), 0.5, dtype=torch.float64))
    assert r["weight_ih"].std().item() > 0.05


def test_authors_init_constant_is_in_the_module_and_the_rng_is_untouched():
    from spectrumkit.init import AUTHORS_GRU_INIT

    state = torch.random.get_rng_state()
    a = init_params("gru_cho", 28, 400, AUTHORS_GRU_INIT, seed=5, dtype=torch.float64)
    b = init_params("gru_cho", 28, 400, AUTHORS_GRU_INIT, generator=torch.Generator().manual_seed(5),
                    dtype=torch.float64)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(torch.random.get_rng_state(), state)
    w = torch.cat([a["weight_ih"].flatten(), a["weight_hh"].flatten()])
    assert abs(w.std().item() - 0.07) / 0.07 < 0.01 and abs(w.mean().item()) < 1e-3
    assert a["bias_ih"].view(3, 400)[:, 0].tolist() == [0.1, -0.1, 0.1]


def test_constant_draws_nothing_from_the_generator():
    g = torch.Generator().manual_seed(11)
    init_params("gru", 3, 4, "constant:0.2;bias=constant:0.1,-0.1,0.1", generator=g)
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(11).get_state())


@pytest.mark.parametrize("bad,match", [
    ("constant:", "constant:C"), ("constant:a", "constant:C"), ("constant:0.1,", "constant:C"),
    ("normal:0.1;bias=constant:0.1,0.2", r"constant with 1 value or 3 \(one per gate: r, z, n\) "
                                         r"for bias_ih"),
    ("normal:0.1;bias_xx=zero", "tensors among"),
    ("normal:0.1;weight_ch=zero", "tensors among"),  # a peephole tensor, not a GRU's
])
def test_bad_constant_and_overrides_are_named(bad, match):
    with pytest.raises(SpectrumkitError, match=match):
        init_params("gru_cho", 3, 4, bad, seed=0)


# ----------------------------------------------------------------------------------------------
# The authors' GRU (NOTE [The authors' GRU] in interop.py), transcribed from docs/authors-code.md
# ----------------------------------------------------------------------------------------------


def _authors_scored_step(K, x, h, c=0.1):
    """§1, SparseDummyGRUCell: one kernel on [x; h]; blocks r, z, candidate; +c everywhere;
    reset before the product; z weights the NEW candidate."""
    N = h.shape[-1]
    xh = torch.cat([x, h], -1)
    r = torch.sigmoid(xh @ K[:, :N] + c)
    z = torch.sigmoid(xh @ K[:, N:2 * N] + c)
    o = torch.tanh(torch.cat([x, r * h], -1) @ K[:, 2 * N:] + c)
    return (1 - z) * h + z * o


def _authors_trained_step(K, b, x, h):
    """§6, SparseGRUCell: r from block 0 (+br), update gate from block 2 (+bo), candidate from
    block 1 (+bz) on [x; r ⊙ h]; no constant; h' = (1 - z) h + z o."""
    N = h.shape[-1]
    xh = torch.cat([x, h], -1)
    r = torch.sigmoid(xh @ K[:, :N] + b[:N])
    z = torch.sigmoid(xh @ K[:, 2 * N:] + b[2 * N:])
    o = torch.tanh(torch.cat([x, h * r], -1) @ K[:, N:2 * N] + b[N:2 * N])
    return (1 - z) * h + z * o


def _authors_case(D, N, T, seed):
    g = torch.Generator().manual_seed(seed)
    K = torch.randn(D + N, 3 * N, generator=g, dtype=torch.float64) * 0.7
    xs = torch.randn(T, 3, D, generator=g, dtype=torch.float64)
    h0 = torch.rand(3, N, generator=g, dtype=torch.float64) + 0.5   # a state near 1, as in γ
    Mk = torch.rand(D + N, 3 * N, generator=g) < 0.5
    return K, xs, h0, Mk


@given(D=st.integers(1, 6), N=st.integers(1, 6), T=st.integers(1, 5), seed=st.integers(0, 999),
       c=st.sampled_from([0.1, 0.0, -0.3]))
def test_gru_cho_unroll_equals_the_authors_scored_cell(D, N, T, seed, c):
    from spectrumkit import unroll
    from spectrumkit.interop import authors_gru_params

    K, xs, h0, _ = _authors_case(D, N, T, seed)
    states = unroll("gru_cho", authors_gru_params(K, constant=c), xs, h0)
    h = h0
    for t in range(T):
        h = _authors_scored_step(K, xs[t], h, c)
        torch.testing.assert_close(states[t + 1], h, atol=1e-12, rtol=0)


@given(D=st.integers(1, 6), N=st.integers(1, 6), T=st.integers(1, 5), seed=st.integers(0, 999))
def test_authors_trained_gru_equals_their_trained_cell(D, N, T, seed):
    from spectrumkit import unroll
    from spectrumkit.interop import authors_gru_params, authors_trained_gru

    K, xs, h0, Mk = _authors_case(D, N, T, seed)
    scored = authors_gru_params(K)
    masks = {"weight_ih": Mk[:D].T.contiguous(), "weight_hh": Mk[D:].T.contiguous()}
    p, m = authors_trained_gru(scored, masks)
    # the swapped masks: r's rows stay, z gets the scored candidate's, n the scored z's
    for k, rows in (("weight_ih", slice(0, D)), ("weight_hh", slice(D, D + N))):
        blocks = Mk[rows].T.reshape(3, N, -1)
        assert torch.equal(m[k], torch.cat([blocks[0], blocks[2], blocks[1]]))
    assert m["bias_hh"].dtype == torch.bool and not m["bias_hh"].any() and "bias_ih" not in m
    assert float(p["bias_ih"].abs().max()) == 0.0 and float(p["bias_hh"].abs().max()) == 0.0
    held = {k: torch.where(m[k], v, 0.0) if k in m else v for k, v in p.items()}
    states = unroll("gru_cho", held, xs, h0)
    Kt, b, h = K * Mk, torch.zeros(3 * N, dtype=torch.float64), h0
    for t in range(T):
        h = _authors_trained_step(Kt, b, xs[t], h)
        torch.testing.assert_close(states[t + 1], h, atol=1e-12, rtol=0)


def test_authors_trained_gru_trains_like_theirs_under_adam():
    """Five Adam steps on both parametrizations, masks held, one bias each: the same function.

    Theirs: the kept kernel entries and one bias (3N,). Ours: gru_cho with z/n rows negated, two
    bias tensors of which bias_hh is held at 0 by the returned mask."""
    from spectrumkit import unroll
    from spectrumkit.interop import authors_gru_params, authors_trained_gru

    D, N, T = 3, 4, 5
    K, xs, h0, Mk = _authors_case(D, N, T, seed=3)
    target = torch.randn(3, N, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    p, m = authors_trained_gru(authors_gru_params(K),
                               {"weight_ih": Mk[:D].T.contiguous(),
                                "weight_hh": Mk[D:].T.contiguous()})
    ours = {k: (torch.where(m[k], v, 0.0) if k in m else v).requires_grad_(True)
            for k, v in p.items()}
    theirs_K = (K * Mk).requires_grad_(True)
    theirs_b = torch.zeros(3 * N, dtype=torch.float64, requires_grad=True)
    opt_ours = torch.optim.Adam(list(ours.values()), lr=0.05)
    opt_theirs = torch.optim.Adam([theirs_K, theirs_b], lr=0.05)

    def theirs_final():
        h = h0
        for t in range(T):
            h = _authors_trained_step(theirs_K, theirs_b, xs[t], h)
        return h

    for _ in range(5):
        for opt, final, held in (
                (opt_ours, lambda: unroll("gru_cho", ours, xs, h0)[-1],
                 [(ours[k], m[k]) for k in m]),
                (opt_theirs, theirs_final, [(theirs_K, Mk)])):
            opt.zero_grad()
            ((final() - target) ** 2).sum().backward()
            with torch.no_grad():
                for q, keep in held:
                    q.grad.masked_fill_(~keep, 0.0)
            opt.step()
            with torch.no_grad():
                for q, keep in held:
                    q.masked_fill_(~keep, 0.0)
    with torch.no_grad():
        torch.testing.assert_close(unroll("gru_cho", ours, xs, h0)[-1], theirs_final(),
                                   atol=1e-12, rtol=0)
        # the single trained bias is theirs, block-permuted and z/n-signed
        b = theirs_b.view(3, N)
        torch.testing.assert_close(ours["bias_ih"].view(3, N), torch.stack([b[0], -b[2], b[1]]),
                                   atol=1e-12, rtol=0)
        assert float(ours["bias_hh"].abs().max()) == 0.0 and float(b.abs().max()) > 1e-3


def test_authors_init_matches_the_converter_in_form():
    """AUTHORS_GRU_INIT gives the converter's constants exactly and N(0, 0.07²) weights."""
    from spectrumkit.interop import authors_gru_params
    from spectrumkit.init import AUTHORS_GRU_INIT

    a = init_params("gru_cho", 5, 6, AUTHORS_GRU_INIT, seed=0, dtype=torch.float64)
    conv = authors_gru_params(torch.zeros(11, 18, dtype=torch.float64))
    assert torch.equal(a["bias_ih"], conv["bias_ih"]) and torch.equal(a["bias_hh"], conv["bias_hh"])


@pytest.mark.parametrize("kernel,match", [
    (torch.zeros(4, 4), r"kernel of shape \(D\+N, 3N\).*got shape \(4, 4\)"),
    (torch.zeros(3, 9), r"kernel of shape \(D\+N, 3N\).*got shape \(3, 9\)"),
    (torch.zeros(3, 3, dtype=torch.long), "kernel.*floating"),
    (torch.full((4, 3), float("nan")), "kernel"),
])
def test_authors_gru_params_bad_kernel(kernel, match):
    from spectrumkit.interop import authors_gru_params

    with pytest.raises(SpectrumkitError, match=rf"^authors_gru_params: expected {match}"):
        authors_gru_params(kernel)
    with pytest.raises(SpectrumkitError, match="constant to be a finite number"):
        authors_gru_params(torch.zeros(4, 3), constant=float("inf"))


def test_authors_trained_gru_bad_input():
    from spectrumkit.interop import authors_trained_gru

    p = init_params("gru_cho", 2, 3, seed=0)
    ok = {"weight_ih": torch.ones(9, 2, dtype=torch.bool),
          "weight_hh": torch.ones(9, 3, dtype=torch.bool)}
    with pytest.raises(SpectrumkitError, match="masks for weight_ih and weight_hh"):
        authors_trained_gru(p, {"weight_ih": ok["weight_ih"]})
    with pytest.raises(SpectrumkitError, match=r"masks\['weight_hh'\] of shape \(9, 3\)"):
        authors_trained_gru(p, dict(ok, weight_hh=torch.ones(9, 2, dtype=torch.bool)))
    with pytest.raises(SpectrumkitError, match=r"masks\['weight_ih'\] to be a bool tensor"):
        authors_trained_gru(p, dict(ok, weight_ih=torch.ones(9, 2)))
    with pytest.raises(SpectrumkitError, match="mask names among"):
        authors_trained_gru(p, dict(ok, weight_ch=ok["weight_hh"]))
    with pytest.raises(SpectrumkitError, match="bias_hh"):
        authors_trained_gru({k: v for k, v in p.items() if k != "bias_hh"}, ok)
