"""Exact-K masks (hypothesis, many ties), apply/export, mask files, anatomy, the prune command."""

import os

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from spectrumkit import SpectrumkitError, to_torch, unroll
from spectrumkit.anatomy import anatomy_summary, connection_map, mask_anatomy
from spectrumkit.cells import get
from spectrumkit.init import init_params
from spectrumkit.masks import (apply_mask, density_from_sparsity, load_masks, save_masks,
                               to_torch_prune, topk_mask)

from .cases import USER_CELL
from .conftest import assert_close

F64 = torch.float64

# torch.func.jvp (the jacobian score) warns once per process about torch.jit.script in torch 2.13.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning")


# --------------------------------------------------------------------------------------------------
# topk_mask
# --------------------------------------------------------------------------------------------------

shapes = st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=3)


@st.composite
def score_dicts(draw):
    """1-3 tensors of up to 6×6 entries, values from a tiny set (many ties), ±0.0 included."""
    out = {}
    for i, shape in enumerate(draw(shapes)):
        n = shape[0] * shape[1]
        vals = draw(st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.0, -1.5, 0.25]), min_size=n,
                             max_size=n))
        out[f"t{i}"] = torch.tensor(vals, dtype=F64).view(shape)
    return out


def _reference(scores, k, names):
    """Top k by (score desc, position asc) over the concatenation in ``names`` order."""
    flat = [v for n in names for v in scores[n].reshape(-1).tolist()]
    order = sorted(range(len(flat)), key=lambda i: (-flat[i], i))[:k]
    keep = [False] * len(flat)
    for i in order:
        keep[i] = True
    return keep


def _flat(mask, names):
    return [bool(v) for n in names for v in mask[n].reshape(-1).tolist()]


@given(scores=score_dicts(), d1=st.floats(0.01, 1.0), d2=st.floats(0.01, 1.0))
def test_topk_global_exact_deterministic_nested(scores, d1, d2):
    P = sum(s.numel() for s in scores.values())
    lo, hi = sorted((d1, d2))
    k_lo, k_hi = int(lo * P + 0.5), int(hi * P + 0.5)
    assume(k_lo >= 1)
    names = sorted(scores)
    m_lo, m_hi = topk_mask(scores, lo), topk_mask(scores, hi)
    assert sum(int(m.sum()) for m in m_lo.values()) == k_lo
    assert sum(int(m.sum()) for m in m_hi.values()) == k_hi
    assert _flat(m_lo, names) == _reference(scores, k_lo, names)
    assert all(torch.equal(m_lo[n] & m_hi[n], m_lo[n]) for n in names)  # nested
    reordered = dict(reversed(list(scores.items())))
    again = topk_mask(reordered, lo)
    assert all(torch.equal(again[n], m_lo[n]) for n in names)  # independent of dict order
    kept = torch.cat([scores[n][m_lo[n]] for n in names])
    dropped = torch.cat([scores[n][~m_lo[n]] for n in names])
    assert dropped.numel() == 0 or kept.min() >= dropped.max()


@given(scores=score_dicts(), d=st.floats(0.01, 1.0))
def test_topk_per_tensor_exact(scores, d):
    ks = {n: int(d * s.numel() + 0.5) for n, s in scores.items()}
    assume(min(ks.values()) >= 1)
    m = topk_mask(scores, d, scope="per_tensor")
    for n, s in scores.items():
        assert int(m[n].sum()) == ks[n]
        assert _flat(m, [n]) == _reference(scores, ks[n], [n])


def test_topk_bad_input():
    s = {"w": torch.rand(4, 5, generator=torch.Generator().manual_seed(0))}
    for bad in (0.0, -0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(SpectrumkitError, match=r"topk_mask: expected density in \(0, 1\]"):
            topk_mask(s, bad)
    with pytest.raises(SpectrumkitError, match=r"n=20, density=0\.01 \(K = 0\)"):
        topk_mask(s, 0.01)
    with pytest.raises(SpectrumkitError, match=r"in 'w', got n=20, density=0\.01"):
        topk_mask(s, 0.01, scope="per_tensor")
    bad = {"a": torch.ones(3), "w": s["w"].clone()}
    bad["w"][0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    with pytest.raises(SpectrumkitError, match="finite scores in 'w', got 3 NaN/Inf entries of 20"):
        topk_mask(bad, 0.5)
    with pytest.raises(SpectrumkitError, match="scope to be one of 'global', 'per_tensor'"):
        topk_mask(s, 0.5, scope="layer")
    with pytest.raises(SpectrumkitError, match="floating-point tensor"):
        topk_mask({"w": torch.ones(3, dtype=torch.long)}, 0.5)
    for bad in (1.0, -0.1, 2):
        with pytest.raises(SpectrumkitError, match=r"sparsity in \[0, 1\)"):
            density_from_sparsity(bad)
    assert topk_mask(s, density_from_sparsity(0.0))["w"].all()


def test_topk_k_rounds_half_up_and_paper_count():
    s = {"weight_ih": torch.zeros(1200, 28), "weight_hh": torch.zeros(1200, 400)}
    m = topk_mask(s, density_from_sparsity(0.95))
    assert int(m["weight_ih"].sum() + m["weight_hh"].sum()) == 25_680  # 5% of 513,600
    assert int(topk_mask({"w": torch.zeros(2)}, 0.25)["w"].sum()) == 1  # 0.5 rounds up


# --------------------------------------------------------------------------------------------------
# apply_mask, to_torch_prune, files
# --------------------------------------------------------------------------------------------------


def _random_mask(params, density, seed):
    g = torch.Generator().manual_seed(seed)
    return topk_mask({n: torch.rand(p.shape, generator=g, dtype=F64) for n, p in params.items()
                      if not n.startswith("bias")}, density)


def test_apply_mask_new_dict_and_inplace():
    p = init_params("gru", 3, 4, seed=0, dtype=F64)
    m = _random_mask(p, 0.3, 1)
    out = apply_mask(p, m)
    for n in p:
        expect = p[n] * m[n] if n in m else p[n]
        assert torch.equal(out[n], expect)
        assert (out[n] is p[n]) == (n not in m)
    assert int((p["weight_hh"] != 0).sum()) == p["weight_hh"].numel()  # untouched
    q = {n: t.clone() for n, t in p.items()}
    same = apply_mask(q, m, inplace=True)
    assert all(same[n] is q[n] and torch.equal(q[n], out[n]) for n in q)
    with pytest.raises(SpectrumkitError, match=r"mask\['weight_hh'\] of shape \(12, 4\)"):
        apply_mask(p, {"weight_hh": torch.ones(4, 4, dtype=torch.bool)})
    with pytest.raises(SpectrumkitError, match="mask names among the params"):
        apply_mask(p, {"W": torch.ones(4, dtype=torch.bool)})
    with pytest.raises(SpectrumkitError, match="bool tensor"):
        apply_mask(p, {"weight_hh": torch.ones(12, 4)})


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("kind", ["sequence", "cell"])
def test_to_torch_prune_forward_equals_masked_cell(name, kind):
    D, N, T, B = 3, 5, 4, 2
    p = init_params(name, D, N, "glorot", bias="normal:0.1", seed=3, dtype=F64)
    m = _random_mask(p, 0.4, 4)
    m["bias_hh"] = torch.arange(p["bias_hh"].numel()) % 2 == 0
    module = to_torch_prune(to_torch(name, p, kind=kind), m)
    xs = torch.randn(T, B, D, generator=torch.Generator().manual_seed(5), dtype=F64)
    expect = unroll(name, apply_mask(p, m), xs)
    cell = get(name)
    with torch.no_grad():
        if kind == "sequence":
            out = module(xs)[0]
            assert_close(out, cell.output(expect[1:]), atol=1e-12, what="sequence output")
        else:
            s = torch.zeros(B, cell.state_size(N), dtype=F64)
            for t in range(T):
                if name == "lstm":
                    h, c = module(xs[t], (s[:, :N], s[:, N:]))
                    s = torch.cat([h, c], -1)
                else:
                    s = module(xs[t], s)
            assert_close(s, expect[-1], atol=1e-12, what="cell output")
    suffix = "_l0" if kind == "sequence" else ""
    assert torch.equal(getattr(module, "weight_hh" + suffix + "_mask"), m["weight_hh"].to(F64))


def test_to_torch_prune_refusals():
    with pytest.raises(SpectrumkitError, match="nn.RNN/LSTM/GRU"):
        to_torch_prune(torch.nn.Linear(2, 2), {})
    module = to_torch("gru", init_params("gru", 2, 3, seed=0))
    with pytest.raises(SpectrumkitError, match=r"mask\['weight_ih'\] of shape \(9, 2\)"):
        to_torch_prune(module, {"weight_ih": torch.ones(9, 3, dtype=torch.bool)})


def test_save_load_round_trip_atomic(tmp_path):
    p = init_params("lstm", 3, 4, seed=0)
    masks = {"jacobian": _random_mask(p, 0.2, 0), "random": _random_mask(p, 0.2, 1)}
    path = save_masks(tmp_path / "m.pt", masks, {"cell": "lstm", "density": 0.2})
    assert os.listdir(tmp_path) == ["m.pt"]  # no temporary file left behind
    got, config = load_masks(path)
    assert config == {"cell": "lstm", "density": 0.2}
    assert all(torch.equal(got[k][n], masks[k][n]) for k in masks for n in masks[k])
    with pytest.raises(SpectrumkitError, match="existing folder"):
        save_masks(tmp_path / "no" / "m.pt", masks)
    (tmp_path / "x.pt").write_bytes(b"")
    torch.save({"a": 1}, tmp_path / "x.pt")
    with pytest.raises(SpectrumkitError, match="spectrumkit.masks file"):
        load_masks(tmp_path / "x.pt")


# --------------------------------------------------------------------------------------------------
# anatomy
# --------------------------------------------------------------------------------------------------


def _count_by_hand(cell, mask, D, N):
    """Independent count: gate of row r of a tensor with G row blocks is gates[r // (rows / G)]."""
    counts = {}
    for n, m in mask.items():
        lay = cell.layout[n]
        per = m.shape[0] // len(lay.gates)
        for r in range(m.shape[0]):
            key = (lay.gates[r // per], lay.block)
            k, t = counts.get(key, (0, 0))
            counts[key] = (k + int(m[r].sum()), t + m[r].numel())
    return counts


@pytest.mark.parametrize("cell", ["rnn", "lstm", "peephole_lstm", "gru", USER_CELL],
                         ids=lambda c: getattr(c, "name", c))
@pytest.mark.parametrize("include_bias", [False, True])
def test_anatomy_counts_sum_to_k_and_match_hand_count(cell, include_bias):
    cell = get(cell)
    D, N = 3, 4
    p = init_params(cell, D, N, seed=0)
    g = torch.Generator().manual_seed(1)
    scores = {n: torch.rand(t.shape, generator=g) for n, t in p.items()
              if include_bias or not cell.is_bias(n)}
    m = topk_mask(scores, 0.37)
    K = sum(int(v.sum()) for v in m.values())
    table = mask_anatomy(cell, m, D, N)
    assert list(table.columns) == ["gate", "block", "kept", "total", "fraction"]
    assert int(table["kept"].sum()) == K == int(0.37 * sum(s.numel() for s in scores.values())
                                                + 0.5)
    hand = _count_by_hand(cell, m, D, N)
    assert {(r.gate, r.block): (r.kept, r.total) for r in table.itertuples()} == hand
    assert (table["total"] > 0).all()
    assert_close(torch.tensor(table["fraction"].to_numpy()),
                 torch.tensor((table["kept"] / table["total"]).to_numpy()), atol=0)


def test_dense_gru_paper_reference():
    D, N = 28, 400
    dense = {"weight_ih": torch.ones(3 * N, D, dtype=torch.bool),
             "weight_hh": torch.ones(3 * N, N, dtype=torch.bool)}
    table = mask_anatomy("gru", dense, D, N)
    assert int(table[table.block == "input"]["kept"].sum()) == 33_600
    assert int(table[table.block == "recurrent"]["kept"].sum()) == 480_000
    s = anatomy_summary("gru", dense, D, N)
    assert s["ir_ratio"] == 33_600 / 480_000 == s["dense_ir_ratio"]
    assert round(s["ir_ratio"], 12) == 0.07
    assert s["gate_imbalance"] == 1.0 and s["dead_units"] == 0
    assert s["in_degree_min"] == s["in_degree_max"] == 3 * (D + N) == s["in_degree_mean"]


def test_summary_in_degree_dead_units_and_imbalance():
    D, N = 2, 3
    m = {"weight_ih": torch.zeros(3 * N, D, dtype=torch.bool),
         "weight_hh": torch.zeros(3 * N, N, dtype=torch.bool)}
    m["weight_ih"][0, :] = True  # gate r, unit 0: 2 input weights
    m["weight_hh"][3 + 0, 1] = True  # gate z, unit 0: 1 recurrent weight
    m["weight_hh"][6 + 2, :] = True  # gate n, unit 2: 3 recurrent weights
    s = anatomy_summary("gru", m, D, N)
    assert (s["in_degree_min"], s["in_degree_max"], s["dead_units"]) == (0, 3, 1)  # unit 1 dead
    assert s["in_degree_mean"] == 2.0
    assert s["ir_ratio"] == 2 / 4
    # kept fraction per gate: r 2/15, z 1/15, n 3/15 -> imbalance 3
    assert s["gate_imbalance"] == pytest.approx(3.0, rel=1e-12)
    m["weight_ih"][:] = True
    m["weight_hh"][:] = False
    assert anatomy_summary("gru", m, D, N)["ir_ratio"] == float("inf")


@pytest.mark.parametrize("cell", ["gru", "peephole_lstm", USER_CELL],
                         ids=lambda c: getattr(c, "name", c))
def test_connection_map_entries(cell):
    cell = get(cell)
    D, N = 3, 4
    p = init_params(cell, D, N, seed=0)
    m = _random_mask({n: t for n, t in p.items() if not cell.is_bias(n)}, 0.5, 2)
    cmap, meta = connection_map(cell, m)
    G = len(cell.gates)
    blocks = {"input": D, "hidden": N, "cell": N}
    assert meta["gates"] == list(cell.gates) and meta["hidden_size"] == N
    assert cmap.shape == (sum(b for _, b in meta["row_blocks"]), G * N) and cmap.dtype == bool
    assert all(blocks[name] == size for name, size in meta["row_blocks"])
    offsets = {"input": 0, "recurrent": D, "cell": D + N}
    for n, mk in m.items():
        lay = cell.layout[n]
        for r in range(mk.shape[0]):
            gi = cell.gates.index(lay.gates[r // N])
            for c in range(mk.shape[1]):
                assert cmap[offsets[lay.block] + c, gi * N + r % N] == bool(mk[r, c])
    assert int(cmap.sum()) == sum(int(v.sum()) for v in m.values())
    with pytest.raises(SpectrumkitError, match="every weight tensor"):
        connection_map(cell, {k: v for k, v in list(m.items())[:1]})


def test_anatomy_bad_input():
    m = {"weight_hh": torch.ones(12, 4, dtype=torch.bool)}
    with pytest.raises(SpectrumkitError, match=r"mask\['weight_hh'\] of shape \(9, 3\)"):
        mask_anatomy("gru", m, 2, 3)
    with pytest.raises(SpectrumkitError, match="mask names among the tensors of gru"):
        mask_anatomy("gru", {"W": torch.ones(1, dtype=torch.bool)}, 2, 3)
    with pytest.raises(SpectrumkitError, match="input_size to be a positive integer"):
        mask_anatomy("gru", m, 0, 4)


# --------------------------------------------------------------------------------------------------
# The prune command
# --------------------------------------------------------------------------------------------------


def test_prune_cli_compare_and_file(tmp_path, cli):
    out = tmp_path / "masks.pt"
    args = ["--cell", "gru", "--input-size", "3", "--hidden-size", "6", "--seq-len", "5", "--score-batch",
            "8", "--sparsity", "0.8", "--seed", "0"]
    r = cli("prune", *args, "--compare", "jacobian,snip,foresight,random", "--out", str(out))
    assert r.exit_code == 0, r.output
    masks, config = load_masks(out)
    assert list(masks) == ["jacobian", "snip", "foresight", "random"]
    assert config["density"] == density_from_sparsity(0.8) and config["seed"] == 0
    P = 3 * 6 * (3 + 6)
    for k, m in masks.items():
        assert sum(int(v.sum()) for v in m.values()) == int(0.2 * P + 0.5), k
    lines = r.stdout.splitlines()
    header = next(line for line in lines if line.startswith("gate"))
    assert all(f"{k} kept" in header for k in masks)
    ir_row = next(line for line in lines if line.startswith("I/R ratio"))
    expect = [anatomy_summary("gru", masks[k], 3, 6)["ir_ratio"] for k in masks]
    assert [float(v) for v in ir_row.split()[2:]] == pytest.approx(expect, rel=1e-3)
    # NOTE [prune command]: model from --seed, data from --seed + 1, scores from --seed + 2; the
    # same seed gives bit-identical masks, whatever the method is compared with.
    from spectrumkit.models import SequenceClassifier
    from spectrumkit.scores import compute_scores

    model = SequenceClassifier("gru", 3, 6, 10, init="glorot", seed=0)
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(8, 5, 3, generator=g), torch.randint(0, 10, (8,), generator=g))
    for k in masks:
        sc = compute_scores(k, model, batch, generator=torch.Generator().manual_seed(2))
        again = topk_mask(sc, density_from_sparsity(0.8))
        assert all(torch.equal(again[n], masks[k][n]) for n in again), k
    r2 = cli("prune", *args, "--method", "jacobian", "--out", str(tmp_path / "j.pt"))
    assert r2.exit_code == 0, r2.output
    alone, _ = load_masks(tmp_path / "j.pt")
    assert all(torch.equal(alone["jacobian"][n], masks["jacobian"][n]) for n in alone["jacobian"])


def test_prune_cli_on_seq_mnist_equals_library(tmp_path, cli):
    """--data seq-mnist scores B examples of the train split drawn by --seed + 1 (NOTE [CLI data])."""
    from spectrumkit.data import seq_mnist
    from spectrumkit.models import SequenceClassifier
    from spectrumkit.scores import compute_scores

    out = tmp_path / "m.pt"
    r = cli("prune", "--cell", "gru", "--input-size", "28", "--hidden-size", "5", "--seq-len", "28",
            "--score-batch", "6", "--sparsity", "0.9", "--seed", "3", "--method", "snip",
            "--data", "seq-mnist", "--out", str(out))
    assert r.exit_code == 0, r.output
    masks, _ = load_masks(out)
    split = seq_mnist(split="train")
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(4))[:6]
    model = SequenceClassifier("gru", 28, 5, 10, init="glorot", seed=3)
    sc = compute_scores("snip", model, (split.xs[idx], split.ys[idx]),
                        generator=torch.Generator().manual_seed(5))
    expect = topk_mask(sc, density_from_sparsity(0.9))
    assert all(torch.equal(expect[n], masks["snip"][n]) for n in expect)


@pytest.mark.parametrize("args,message", [
    (["--data", "mnist"], "expected --data one of gaussian, seq-mnist"),
    (["--data", "seq-mnist"], "expected --seq-len 28 and --input-size 28"),
    (["--method", "grasp"], "'--method': 'grasp' is not one of 'jacobian', 'snip'"),
    (["--method", "random", "--horizon", "3"], "expected score options that apply to random"),
    (["--sparsity", "1.0"], r"expected --sparsity in \[0, 1\)"),
    (["--estimator", "frob"], "estimator to be one of 'ones'"),
    (["--horizon", "9"], r"horizon U in 1..T=5"),
    (["--compare", "snip,random", "--gamma-inputs", "data"], "options that apply to snip, random"),
    (["--device", "tpu"], "'--device': expected auto, cpu, cuda or cuda:K, got 'tpu'"),
])
def test_prune_cli_errors_one_line(args, message, cli):
    import re

    r = cli("prune", "--hidden-size", "4", "--input-size", "2", "--seq-len", "5", "--score-batch", "4",
            *args)
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0 and re.search(message, r.stderr), r.stderr
    assert r.stderr.startswith("error: ")


# ----------------------------------------------------------------- mask files are validated


def test_save_masks_refuses_what_load_masks_could_not_read(tmp_path):
    """A config value that torch.load(weights_only=True) would refuse (a numpy scalar, a
    Path, any object) is refused at save time, naming the key; nothing is written."""
    import numpy as np

    p = init_params("gru", 2, 3, seed=0)
    masks = {"random": _random_mask(p, 0.5, 0)}
    for config, key in (({"density": np.float64(0.5)}, "density"),
                        ({"root": tmp_path}, "root"),
                        ({"options": {"deep": [1, np.int64(2)]}}, r"options.*deep.*1"),
                        ({3: "int key"}, "3")):
        with pytest.raises(SpectrumkitError, match=rf"save_masks: expected .*JSON.*{key}"):
            save_masks(tmp_path / "m.pt", masks, config)
    for bad, what in (({"random": {"weight_ih": torch.ones(9, 2)}}, "bool"),
                      ({"random": {}}, "non-empty"), ({5: masks["random"]}, "method names")):
        with pytest.raises(SpectrumkitError, match=rf"save_masks: expected .*{what}"):
            save_masks(tmp_path / "m.pt", bad)
    assert list(tmp_path.iterdir()) == []
    ok = {"cell": "gru", "density": 0.5, "steps": [1, 2], "none": None, "flag": True,
          "options": {"horizon": 4}}
    got, config = load_masks(save_masks(tmp_path / "m.pt", masks, ok))
    assert config == ok and torch.equal(got["random"]["weight_hh"], masks["random"]["weight_hh"])


def _bad_mask_file(path, kind, good):
    import fractions

    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "blocked-pickle":
        torch.save({"kind": "spectrumkit.masks", "x": fractions.Fraction(1, 2)}, path)
    else:
        payload = {"kind": "spectrumkit.masks", "version": 1, "config": {},
                   "masks": {"random": {"weight_ih": torch.ones(9, 2, dtype=torch.bool)}}}
        payload.update({"no-masks": {"masks": None}, "no-config": {"config": None},
                        "list": {}, "other-version": {"version": 7},
                        "float-mask": {"masks": {"random": {"weight_ih": torch.ones(9, 2)}}},
                        "empty-masks": {"masks": {}}}[kind])
        if kind == "no-masks":
            del payload["masks"]
        torch.save([1, 2] if kind == "list" else payload, path)


@pytest.mark.parametrize("kind", ["empty", "truncated", "blocked-pickle", "list", "no-masks",
                                  "no-config", "other-version", "float-mask", "empty-masks"])
def test_load_masks_refuses_a_bad_file_in_one_line(tmp_path, kind):
    """A bad mask file is a one-line error naming it, never a bare KeyError or EOFError, and
    never unchecked junk returned."""
    good = tmp_path / "good.pt"
    save_masks(good, {"random": _random_mask(init_params("gru", 2, 3, seed=0), 0.5, 0)})
    path = tmp_path / "bad.pt"
    _bad_mask_file(path, kind, good.read_bytes())
    with pytest.raises(SpectrumkitError) as e:
        load_masks(path)
    msg = str(e.value)
    assert msg.startswith("load_masks: expected ") and str(path) in msg and "\n" not in msg, msg
