"""Cells against torch.nn, the peephole LSTM against a transcription, counts, and the layout."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from spectrumkit import SpectrumkitError, from_torch, unroll
from spectrumkit.cells import count_params, entry_labels, get
from spectrumkit.cells import available, check_params
from spectrumkit.init import init_params

from .cases import USER_CELL
from .conftest import assert_close

TORCH_MODULES = {
    "rnn": lambda D, N, **kw: nn.RNN(D, N, nonlinearity="tanh", **kw),
    "rnn_relu": lambda D, N, **kw: nn.RNN(D, N, nonlinearity="relu", **kw),
    "lstm": lambda D, N, **kw: nn.LSTM(D, N, **kw),
    "gru": lambda D, N, **kw: nn.GRU(D, N, **kw),
}


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("name", sorted(TORCH_MODULES))
@given(D=st.integers(1, 6), N=st.integers(1, 6), T=st.integers(1, 5), B=st.integers(1, 4),
       seed=st.integers(0, 2**16), batch_first=st.booleans())
def test_unroll_equals_torch_nn(name, dtype, tol, D, N, T, B, seed, batch_first):
    g = torch.Generator().manual_seed(seed)
    module = TORCH_MODULES[name](D, N, dtype=dtype, batch_first=batch_first)
    with torch.no_grad():  # torch's default init, drawn from our generator
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=dtype) * 2 - 1)
    cell, params = from_torch(module)
    assert cell.name == name
    xs = torch.randn(T, B, D, generator=g, dtype=dtype)
    h0 = torch.randn(B, N, generator=g, dtype=dtype) * 0.5
    c0 = torch.randn(B, N, generator=g, dtype=dtype) * 0.5
    x_in = xs.transpose(0, 1) if batch_first else xs
    with torch.no_grad():
        if name == "lstm":
            out, (hT, cT) = module(x_in, (h0[None], c0[None]))
            s0 = torch.cat([h0, c0], -1)
        else:
            out, hT = module(x_in, h0[None])
            s0 = h0
        states = unroll(cell, params, xs, s0)
    out = out.transpose(0, 1) if batch_first else out
    assert_close(cell.output(states[1:]), out, atol=tol, what="h_t for every step")
    assert_close(cell.output(states[-1]), hT[0], atol=tol, what="h_T")
    if name == "lstm":
        assert_close(states[-1][:, N:], cT[0], atol=tol, what="c_T")


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_cell_modules_match_step(name):
    torch_cell = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[name](
        3, 4, dtype=torch.float64)
    cell, params = from_torch(torch_cell)
    x = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = torch.randn(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        if name == "lstm":
            c = h.flip(0)
            h1, c1 = torch_cell(x, (h, c))
            s1 = cell.step(params, x, torch.cat([h, c], -1))
            assert_close(s1, torch.cat([h1, c1], -1), atol=1e-12)
        else:
            assert_close(cell.step(params, x, h), torch_cell(x, h), atol=1e-12)


def _peephole_transcription(p, xs, h0, c0):
    """Independent transcription of the full-matrix peephole LSTM, one example, loops over gates."""
    N = h0.shape[0]
    W = {g: p["weight_ih"][k * N:(k + 1) * N] for k, g in enumerate("ifgo")}
    U = {g: p["weight_hh"][k * N:(k + 1) * N] for k, g in enumerate("ifgo")}
    V = {g: p["weight_ch"][k * N:(k + 1) * N] for k, g in enumerate("ifgo")}
    b = {g: p["bias"][k * N:(k + 1) * N] for k, g in enumerate("ifgo")}
    h, c, hs = h0, c0, []
    for x in xs:
        a = {g: W[g] @ x + U[g] @ h + V[g] @ c + b[g] for g in "ifgo"}
        c = torch.sigmoid(a["f"]) * c + torch.sigmoid(a["i"]) * torch.tanh(a["g"])
        h = torch.sigmoid(a["o"]) * torch.tanh(c)
        hs.append(torch.cat([h, c]))
    return torch.stack(hs)


@given(D=st.integers(1, 6), N=st.integers(1, 6), T=st.integers(1, 5), seed=st.integers(0, 999))
def test_peephole_equals_transcription(D, N, T, seed):
    p = init_params("peephole_lstm", D, N, "normal:0.7", bias="normal:0.3", seed=seed,
                    dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    xs = torch.randn(T, 2, D, generator=g, dtype=torch.float64)
    s0 = torch.randn(2, 2 * N, generator=g, dtype=torch.float64)
    states = unroll("peephole_lstm", p, xs, s0)
    for b in range(2):
        ref = _peephole_transcription(p, xs[:, b], s0[b, :N], s0[b, N:])
        assert_close(states[1:, b], ref, atol=1e-12)


def _gru_cho_transcription(p, xs, h0):
    """Cho et al. (2014) GRU, reset before the product, one example: a loop per gate and unit."""
    N = h0.shape[0]
    W = {g: p["weight_ih"][k * N:(k + 1) * N] for k, g in enumerate("rzn")}
    U = {g: p["weight_hh"][k * N:(k + 1) * N] for k, g in enumerate("rzn")}
    bi = {g: p["bias_ih"][k * N:(k + 1) * N] for k, g in enumerate("rzn")}
    bh = {g: p["bias_hh"][k * N:(k + 1) * N] for k, g in enumerate("rzn")}
    h, hs = h0.clone(), []
    for x in xs:
        r = torch.stack([torch.sigmoid(W["r"][j] @ x + bi["r"][j] + U["r"][j] @ h + bh["r"][j])
                         for j in range(N)])
        z = torch.stack([torch.sigmoid(W["z"][j] @ x + bi["z"][j] + U["z"][j] @ h + bh["z"][j])
                         for j in range(N)])
        rh = r * h  # the reset multiplies h BEFORE the product with U_n
        n = torch.stack([torch.tanh(W["n"][j] @ x + bi["n"][j] + U["n"][j] @ rh + bh["n"][j])
                         for j in range(N)])
        h = torch.stack([(1 - z[j]) * n[j] + z[j] * h[j] for j in range(N)])
        hs.append(h)
    return torch.stack(hs)


@given(D=st.integers(1, 6), N=st.integers(1, 6), T=st.integers(1, 5), seed=st.integers(0, 999))
def test_gru_cho_equals_transcription(D, N, T, seed):
    p = init_params("gru_cho", D, N, "normal:0.7", bias="normal:0.3", seed=seed,
                    dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    xs = torch.randn(T, 2, D, generator=g, dtype=torch.float64)
    s0 = torch.randn(2, N, generator=g, dtype=torch.float64)
    states = unroll("gru_cho", p, xs, s0)
    for b in range(2):
        assert_close(states[1:, b], _gru_cho_transcription(p, xs[:, b], s0[b]), atol=1e-12)
    # and it is NOT torch's GRU: with the same params, r ⊙ (W_hn h + b_hn) gives other states
    assert not torch.equal(unroll("gru", p, xs, s0)[1:], states[1:])


@pytest.mark.parametrize("name,count", [("rnn", 171_200), ("lstm", 684_800),
                                        ("peephole_lstm", 1_324_800), ("gru", 513_600),
                                        ("gru_cho", 513_600)])
def test_paper_weight_counts(name, count):
    assert count_params(name, 28, 400) == count
    # and the counts are those of the tensors init_params actually makes
    p = init_params(name, 28, 400, "zero", seed=0)
    assert sum(v.numel() for k, v in p.items() if not k.startswith("bias")) == count


def test_count_with_bias_matches_torch():
    assert count_params("gru", 28, 400, include_bias=True) == sum(
        p.numel() for p in nn.GRU(28, 400).parameters())
    assert count_params("lstm", 5, 7, include_bias=True) == sum(
        p.numel() for p in nn.LSTM(5, 7).parameters())


def _affine_pieces(name, p, x, s):
    """Each gate's affine pre-activation pieces, transcribed from the equations (G, k, N)."""
    cell = get(name)
    N = p["weight_hh"].shape[1]
    h = s[:N]
    G = len(cell.gates)
    pieces = [p["weight_ih"] @ x, p["weight_hh"] @ h]
    if name == "peephole_lstm":
        pieces += [p["weight_ch"] @ s[N:], p["bias"]]
    else:
        pieces += [p["bias_ih"], p["bias_hh"]]
    return torch.stack([q.view(G, N) for q in pieces], 1)


@pytest.mark.parametrize("name", ["rnn", "lstm", "peephole_lstm", "gru", "gru_cho"])
@given(D=st.integers(1, 5), N=st.integers(1, 5), seed=st.integers(0, 999), data=st.data())
def test_layout_is_true(name, D, N, seed, data):
    """Perturbing one entry labelled gate g changes only gate g's pre-activation pieces, and the
    step output changes only through that gate (checked by replacing the other gates' rows)."""
    cell = get(name)
    p = init_params(name, D, N, "normal:0.5", bias="normal:0.5", seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(D, generator=g, dtype=torch.float64)
    s = torch.randn(cell.state_size(N), generator=g, dtype=torch.float64)
    labels = entry_labels(cell, D, N)
    tname = data.draw(st.sampled_from(sorted(p)))
    idx = tuple(data.draw(st.integers(0, d - 1)) for d in p[tname].shape)
    gate = int(labels[tname][0][idx])
    q = {k: v.clone() for k, v in p.items()}
    q[tname][idx] += 0.37
    before, after = _affine_pieces(name, p, x, s), _affine_pieces(name, q, x, s)
    changed = (before != after).any(dim=(1, 2))
    assert changed[gate] or bool((before == after).all())  # may be 0 * x when x entry is 0
    assert not changed[[k for k in range(len(cell.gates)) if k != gate]].any()
    # The step itself: rows of other gates are untouched by the perturbation's tensor label.
    assert labels[tname][1] == cell.layout[tname].block


def test_layout_blocks_and_dense_ir_ratio():
    lab = entry_labels("gru", 28, 400)
    n_in = sum(t.numel() for t, b in lab.values() if b == "input")
    n_rec = sum(t.numel() for t, b in lab.values() if b == "recurrent")
    assert (n_in, n_rec) == (33_600, 480_000)
    assert abs(n_in / n_rec - 0.07) < 1e-12


def test_cli_cells_lists_gru_cho_with_gru_counts(cli):
    r = cli("cells", "--input-size", "28", "--hidden-size", "400")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[1:]}
    # 3N(D + N) = 513,600 weights; + 2·3N = 2,400 biases
    assert rows["gru_cho"] == ["r,z,n", "513,600", "516,000"] and rows["gru"] == rows["gru_cho"]


def test_user_cell_runs_everywhere():
    p = init_params(USER_CELL, 2, 3, "normal:0.5", seed=0, dtype=torch.float64)
    xs = torch.randn(4, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    states = unroll(USER_CELL, p, xs)
    s = torch.zeros(3, dtype=torch.float64)
    for t in range(4):
        s = 0.5 * s + torch.tanh(p["A"] @ s + p["B"] @ xs[t, 1] + p["bias"])
    assert_close(states[-1, 1], s, atol=1e-14)
    assert check_params("t", USER_CELL, p) == (2, 3)


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------


def test_unknown_cell_lists_available():
    with pytest.raises(SpectrumkitError, match="gru") as e:
        get("grus")
    assert all(n in str(e.value) for n in available())


@pytest.mark.parametrize("arg", [0, -3, 2.5, "4", True])
def test_bad_sizes_name_the_argument(arg):
    with pytest.raises(SpectrumkitError, match="hidden_size"):
        count_params("gru", 3, arg)
    with pytest.raises(SpectrumkitError, match="input_size"):
        init_params("gru", arg, 3, seed=0)


def test_params_missing_or_misshapen():
    p = init_params("gru", 3, 4, seed=0)
    xs = torch.zeros(2, 1, 3)
    missing = {k: v for k, v in p.items() if k != "bias_hh"}
    with pytest.raises(SpectrumkitError, match="bias_hh"):
        unroll("gru", missing, xs)
    wrong = dict(p, weight_hh=torch.zeros(12, 5))
    with pytest.raises(SpectrumkitError, match=r"weight_hh.*\(12, 4\).*\(12, 5\)"):
        unroll("gru", wrong, xs)


@pytest.mark.parametrize("shape", [(2, 1, 5), (2, 3), (1, 2, 1, 3)])
def test_xs_wrong_shape(shape):
    p = init_params("gru", 3, 4, seed=0)
    with pytest.raises(SpectrumkitError, match=r"\(T, B, D"):
        unroll("gru", p, torch.zeros(shape))


def test_xs_integer_or_nan():
    p = init_params("gru", 3, 4, seed=0)
    with pytest.raises(SpectrumkitError, match="xs.*floating"):
        unroll("gru", p, torch.zeros(2, 1, 3, dtype=torch.long))
    bad = torch.zeros(2, 1, 3)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(SpectrumkitError, match="xs.*1 NaN"):
        unroll("gru", p, bad)
