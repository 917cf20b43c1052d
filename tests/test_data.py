"""Data loaders: IDX files, sequential MNIST (bundled and user layouts), WikiText, synthetic tasks.

Expected values come from the data's own README (/work/shared/data/README.md: first labels, class
counts, mean pixel, word counts), from files written by the test itself, or from closed forms.
"""

import gzip
import math
import struct
from importlib.resources import files

import numpy as np
import pytest
import torch

from spectrumkit import SpectrumkitError
from spectrumkit.data import (MNIST_MEAN, MNIST_STD, TokenStream, adding_problem, batchify,
                              bptt_batches, bptt_window, bptt_window_count, copy_task, load_task,
                              read_idx, seq_mnist, wikitext)

# From the shared data README: the official MNIST test set.
FIRST_TEN = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(path, arr, *, gz=False, magic=None):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = magic if magic is not None else bytes([0, 0, 0x08, arr.ndim])
    raw = head + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def fake_mnist(folder, n_train, n_test, seed=0, gz=False, dotted=False):
    """A small MNIST in the standard layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        lab = rng.integers(0, 10, size=n, dtype=np.uint8)
        sep = "." if dotted else "-"
        ext = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images{sep}idx3-ubyte{ext}", img, gz=gz)
        write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{ext}", lab, gz=gz)
        out[prefix] = (img, lab)
    return out


# ------------------------------------------------------------------------------------------ IDX


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", arr, gz=gz)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)


def test_read_idx_bad_magic_names_file(tmp_path):
    write_idx(tmp_path / "bad", np.zeros((2, 2), np.uint8), magic=b"\x01\x02\x08\x02")
    with pytest.raises(SpectrumkitError, match=r"read_idx: expected an IDX file .*bad"):
        read_idx(tmp_path / "bad")


def test_read_idx_truncated_names_file(tmp_path):
    write_idx(tmp_path / "short", np.zeros((3, 4), np.uint8))
    data = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(data[:-1])
    with pytest.raises(SpectrumkitError, match=r"expected 12 data bytes .* 11 in .*short"):
        read_idx(tmp_path / "short")


def test_corrupt_gzip_names_file(tmp_path):
    good = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 100) + bytes(100))
    (tmp_path / "x.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(SpectrumkitError, match=r"read_idx: .*x\.gz"):
        read_idx(tmp_path / "x.gz")


# --------------------------------------------------------------------------------- bundled MNIST


def test_bundled_mnist_split_matches_the_official_test_set():
    tr = seq_mnist(split="train")
    va = seq_mnist(split="val")
    assert (len(tr), len(va)) == (8000, 2000)
    assert tuple(tr.xs.shape) == (8000, 28, 28) and tr.xs.dtype == torch.float32
    assert tr.ys.dtype == torch.long
    # index i -> val when i % 5 == 4: train holds indices 0,1,2,3,5,6,7,8; val 4, 9
    assert tr.ys[:8].tolist() == [FIRST_TEN[i] for i in (0, 1, 2, 3, 5, 6, 7, 8)]
    assert va.ys[:2].tolist() == [FIRST_TEN[4], FIRST_TEN[9]]
    counts = torch.bincount(tr.ys, minlength=10) + torch.bincount(va.ys, minlength=10)
    assert counts.tolist() == CLASS_COUNTS
    total = (tr.xs.double().sum() + va.xs.double().sum()) * 255 / (10000 * 784)
    assert abs(float(total) - 33.79) < 0.005
    assert "bundled MNIST 10k test set, deterministic 8000/2000 split" in tr.description


def test_bundled_mnist_has_no_test_split():
    with pytest.raises(SpectrumkitError, match=r"seq_mnist: expected split 'train' or 'val'"):
        seq_mnist(split="test")


@pytest.mark.parametrize("scale", ["unit", "standard", "paper"])
def test_scales_and_variants(scale):
    row = seq_mnist(split="val", limit=5, scale="unit")
    ds = seq_mnist(split="val", limit=5, scale=scale)
    expected = {"unit": row.xs, "standard": (row.xs - MNIST_MEAN) / MNIST_STD,
                "paper": row.xs * 0.1}[scale]
    torch.testing.assert_close(ds.xs, expected, atol=1e-6, rtol=0)
    pix = seq_mnist(split="val", limit=5, variant="pixel", scale=scale)
    assert tuple(pix.xs.shape) == (5, 784, 1)
    torch.testing.assert_close(pix.xs[:, :, 0], expected.reshape(5, 784), atol=0, rtol=0)
    per = seq_mnist(split="val", limit=5, variant="permuted", scale=scale, permutation_seed=3)
    perm = torch.randperm(784, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(per.xs[:, :, 0], pix.xs[:, perm, 0], atol=0, rtol=0)
    assert sorted(per.xs[0, :, 0].tolist()) == sorted(pix.xs[0, :, 0].tolist())
    assert scale != "paper" or float(ds.xs.max()) == pytest.approx(0.1)


def test_limit_is_the_first_examples():
    full = seq_mnist(split="train")
    part = seq_mnist(split="train", limit=100)
    assert torch.equal(part.xs, full.xs[:100]) and torch.equal(part.ys, full.ys[:100])
    with pytest.raises(SpectrumkitError, match=r"expected limit <= the 8000 examples"):
        seq_mnist(split="train", limit=8001)


# ------------------------------------------------------------------------------ user layouts


@pytest.mark.parametrize("layout", ["plain", "gz", "torchvision", "dotted"])
def test_user_mnist_layouts(tmp_path, layout):
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    arrays = fake_mnist(folder, 5004, 3, gz=layout in ("gz", "torchvision"),
                        dotted=layout == "dotted")
    img, lab = arrays["train"]
    tr = seq_mnist(tmp_path, split="train")
    va = seq_mnist(tmp_path, split="val")
    te = seq_mnist(tmp_path, split="test", variant="pixel")
    assert (len(tr), len(va), len(te)) == (4, 5000, 3)
    np.testing.assert_allclose(tr.xs.numpy(), img[:4] / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(va.ys.numpy(), lab[4:])
    np.testing.assert_allclose(te.xs[:, :, 0].numpy(), arrays["t10k"][0].reshape(3, 784) / 255.0,
                               rtol=0, atol=1e-7)
    task = load_task("seq-mnist", root=tmp_path)
    assert task.test is not None and len(task.test) == 3


def test_missing_files_lists_every_path(tmp_path):
    with pytest.raises(SpectrumkitError) as e:
        seq_mnist(tmp_path / "nowhere", split="train")
    msg = str(e.value)
    for d in ("nowhere", "nowhere/MNIST/raw", "nowhere/raw"):
        for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                     "train-images.idx3-ubyte", "train-images.idx3-ubyte.gz"):
            assert f"{tmp_path}/{d}/{name}" in msg
    assert msg.startswith("seq_mnist: expected MNIST train images at one of: ")


def test_corrupt_user_file_is_named(tmp_path):
    fake_mnist(tmp_path, 5001, 2)
    data = (tmp_path / "t10k-labels-idx1-ubyte").read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(data + b"\x00")
    with pytest.raises(SpectrumkitError, match=r"t10k-labels-idx1-ubyte"):
        seq_mnist(tmp_path, split="test")


def test_bad_options():
    with pytest.raises(SpectrumkitError, match=r"seq_mnist: expected variant to be one of"):
        seq_mnist(variant="col")
    with pytest.raises(SpectrumkitError, match=r"seq_mnist: expected scale to be one of"):
        seq_mnist(scale="minmax")
    with pytest.raises(SpectrumkitError, match=r"load_task: expected options for seq-mnist"):
        load_task("seq-mnist", varaint="row")
    with pytest.raises(SpectrumkitError, match=r"load_task: expected task name to be one of"):
        load_task("mnist")
    with pytest.raises(SpectrumkitError, match=r"load_task: expected root=None"):
        load_task("adding", root="/tmp")


# ---------------------------------------------------------------------------------- WikiText


def test_wikitext_user_root(tmp_path):
    (tmp_path / "wiki.train.tokens").write_text(" a b a \n\n c a b\n")
    (tmp_path / "wiki.valid.tokens").write_text("a z\n")
    (tmp_path / "wiki.test.tokens").write_text("b <unk> a\n")
    w = wikitext(tmp_path)
    # counts: a 3, <eos> 3, b 2, c 1; ties by first occurrence; <unk> appended
    assert w.vocab == ("a", "<eos>", "b", "c", "<unk>")
    assert w.train.ids.tolist() == [0, 2, 0, 1, 1, 3, 0, 2, 1]
    assert w.val.ids.tolist() == [0, 4, 1]
    assert w.test.ids.tolist() == [2, 4, 0, 1]
    capped = wikitext(tmp_path, max_vocab=3)
    assert capped.vocab == ("a", "<eos>", "<unk>")
    assert capped.train.ids.tolist() == [0, 2, 0, 1, 1, 2, 0, 2, 1]


def test_wikitext_missing_lists_paths(tmp_path):
    with pytest.raises(SpectrumkitError) as e:
        wikitext(tmp_path)
    for name in ("train.txt", "wiki.train.tokens", "train.txt.gz", "wiki.train.tokens.gz"):
        assert str(tmp_path / name) in str(e.value)


def bundled_lines(name):
    path = files("spectrumkit") / "_bundled" / "wikitext-2" / name
    return gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()


def test_bundled_wikitext_counts():
    w = wikitext()
    # README: 213,886 whitespace words in valid and 241,211 in test; plus one <eos> per line.
    valid, test = bundled_lines("valid.txt.gz"), bundled_lines("test.txt.gz")
    assert len(w.train) + len(w.val) == 213_886 + len(valid)
    assert len(w.test) == 241_211 + len(test)
    cut = int(0.9 * len(valid))
    assert len(w.val) == sum(len(line.split()) + 1 for line in valid[cut:])
    head = [t for line in valid[:3] for t in line.split() + ["<eos>"]]
    assert [w.vocab[i] for i in w.train.ids[: len(head)]] == head
    assert w.vocab[:3] == ("the", "<unk>", ",")
    assert f"train = lines 1-{cut} of valid" in w.train.description


def test_bptt_batches_closed_form():
    ids = torch.arange(23)
    rows = batchify(ids, 3)  # 3 rows of 7, tokens 21, 22 dropped
    assert rows.tolist() == [list(range(0, 7)), list(range(7, 14)), list(range(14, 21))]
    windows = list(bptt_batches(ids, 3, 4))
    assert [tuple(x.shape) for x, _ in windows] == [(3, 4), (3, 2)]
    for x, y in windows:
        assert torch.equal(y, x + 1)
    assert windows[1][0][:, 0].tolist() == [4, 11, 18]


def test_bptt_window_closed_form():
    """Window k of rows (B, L): columns k·bptt .. k·bptt + t − 1 and their successors, with
    t = min(bptt, L − 1 − k·bptt); ⌈(L − 1) / bptt⌉ windows cover every target once."""
    rows = torch.arange(14).view(2, 7)
    assert [bptt_window_count(7, b) for b in (1, 2, 3, 4, 6, 7)] == [6, 3, 2, 2, 1, 1]
    x, y = bptt_window(rows, 1, 4)
    assert x.tolist() == [[4, 5], [11, 12]] and y.tolist() == [[5, 6], [12, 13]]
    x, y = bptt_window(rows, 0, 6)
    assert x.tolist() == [list(range(6)), list(range(7, 13))]
    targets = torch.cat([bptt_window(rows, k, 4)[1] for k in range(bptt_window_count(7, 4))], 1)
    assert torch.equal(targets, rows[:, 1:])


# ---------------------------------------------------------------------------- synthetic tasks


def test_adding_problem_definition_and_baseline():
    ds = adding_problem(20, 20000, seed=0)
    v, m = ds.xs[..., 0], ds.xs[..., 1]
    assert torch.equal(m.sum(1), torch.full((20000,), 2.0))
    assert torch.equal(m[:, :10].sum(1), torch.ones(20000))  # one marker in each half
    torch.testing.assert_close(ds.ys, (v * m).sum(1), atol=1e-6, rtol=0)
    assert abs(float(((ds.ys - 1.0) ** 2).mean()) - 1 / 6) < 0.005  # Var(U+U) = 1/6
    again = adding_problem(20, 20000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.xs, ds.xs)


def test_copy_task_structure():
    T, delay = 5, 7
    ds = copy_task(T, 50, delay, seed=1)
    L = 2 * T + delay
    assert tuple(ds.xs.shape) == (50, L) == tuple(ds.ys.shape)
    assert torch.equal(ds.ys[:, T + delay:], ds.xs[:, :T])
    assert ((ds.xs[:, :T] >= 1) & (ds.xs[:, :T] <= 8)).all()
    assert (ds.xs[:, T + delay - 1] == 9).all() and (ds.ys[:, : T + delay] == 0).all()
    rest = torch.cat([ds.xs[:, T:T + delay - 1], ds.xs[:, T + delay:]], 1)
    assert (rest == 0).all()
    assert f"{T * math.log(8) / L:.4f}" in ds.description


def test_load_task_kinds():
    a = load_task("adding", T=6, n_train=8, n_val=4, n_test=4, seed=2)
    assert (a.kind, a.input_size, a.num_classes, a.vocab_size) == ("regression", 2, None, None)
    same = adding_problem(6, 8, seed=2)  # train is drawn first from the same seed
    assert torch.equal(a.train.xs, same.xs)
    c = load_task("copy", T=3, delay=4, n_train=8, n_val=4, n_test=4)
    assert (c.kind, c.vocab_size) == ("language", 10)
    m = load_task("seq-mnist", variant="pixel", limit=10, val_limit=5)
    assert (m.kind, m.input_size, m.num_classes, m.test) == ("classification", 1, 10, None)
    assert (len(m.train), len(m.val)) == (10, 5)
    assert isinstance(TokenStream(torch.arange(3), "x").ids, torch.Tensor)
