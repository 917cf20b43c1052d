"""Initialization statistics and determinism; torch.nn interop round trips and refusals."""

import math

import pytest
import torch
from torch import nn

from spectrumkit import SpectrumkitError, from_torch, init_params, parse_scheme, to_torch
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
