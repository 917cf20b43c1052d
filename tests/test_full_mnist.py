"""The full MNIST (60,000 + 10,000 digits) read from the shared data folder, when it is present.

The folder is ``../shared/data/mnist`` beside the repository (or in a folder above it), or
``$SPECTRUMKIT_FULL_MNIST``. The expected values are the official ones (the folder's README and
LeCun's page); the raw files are inflated and parsed here with gzip/numpy, independently of the
reader under test.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from spectrumkit.data import data_identity, load_task, read_idx, seq_mnist
from spectrumkit.errors import SpectrumkitError
from spectrumkit.study.config import TrialConfig, trial_key

_REPO = Path(__file__).resolve().parent.parent


def _find_full_mnist() -> Path | None:
    env = os.environ.get("SPECTRUMKIT_FULL_MNIST")
    candidates = [Path(env)] if env else []
    candidates += [d / "shared" / "data" / "mnist" for d in _REPO.parents]
    for c in candidates:
        if all((c / f"{p}-images-idx3-ubyte.gz").is_file() for p in ("train", "t10k")):
            return c
    return None


ROOT = _find_full_mnist()
pytestmark = pytest.mark.skipif(
    ROOT is None, reason="the full MNIST is not here: no ../shared/data/mnist beside the "
                         "repository (or above it) and no $SPECTRUMKIT_FULL_MNIST")

OFFICIAL_SHA256 = {  # of the uncompressed files (LeCun's page; the shared folder's README)
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
}
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _raw(name: str) -> bytes:
    assert ROOT is not None
    return gzip.decompress((ROOT / f"{name}.gz").read_bytes())


def _raw_images(prefix: str) -> np.ndarray:
    raw = _raw(f"{prefix}-images-idx3-ubyte")
    assert raw[:4] == b"\x00\x00\x08\x03"
    n = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 28, 28)


def _raw_labels(prefix: str) -> np.ndarray:
    raw = _raw(f"{prefix}-labels-idx1-ubyte")
    assert raw[:4] == b"\x00\x00\x08\x01"
    return np.frombuffer(raw, dtype=np.uint8, offset=8)


def _pixels(xs: torch.Tensor) -> np.ndarray:
    """Unit-scale float pixels back to their bytes (p / 255 is exact enough to round back)."""
    return (xs * 255).round().to(torch.uint8).numpy()


def test_uncompressed_training_files_have_the_official_sha256():
    for name, digest in OFFICIAL_SHA256.items():
        assert hashlib.sha256(_raw(name)).hexdigest() == digest, name


def test_reader_gives_the_files_bytes_sizes_labels_and_class_counts():
    assert ROOT is not None
    train_x = read_idx(ROOT / "train-images-idx3-ubyte.gz")
    train_y = read_idx(ROOT / "train-labels-idx1-ubyte.gz")
    test_x = read_idx(ROOT / "t10k-images-idx3-ubyte.gz")
    test_y = read_idx(ROOT / "t10k-labels-idx1-ubyte.gz")
    assert train_x.shape == (60000, 28, 28) and train_y.shape == (60000,)
    assert test_x.shape == (10000, 28, 28) and test_y.shape == (10000,)
    # the reader's arrays are the files' bodies, byte for byte (so they carry the official digests)
    header = b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in (60000, 28, 28))
    assert hashlib.sha256(header + train_x.tobytes()).hexdigest() == \
        OFFICIAL_SHA256["train-images-idx3-ubyte"]
    header = b"\x00\x00\x08\x01" + (60000).to_bytes(4, "big")
    assert hashlib.sha256(header + train_y.tobytes()).hexdigest() == \
        OFFICIAL_SHA256["train-labels-idx1-ubyte"]
    assert np.array_equal(test_x, _raw_images("t10k"))
    assert train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(train_y, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(test_y, minlength=10).tolist() == TEST_COUNTS
    assert round(float(train_x.mean()), 2) == 33.32 and round(float(test_x.mean()), 2) == 33.79


@pytest.mark.slow
def test_default_split_is_the_last_5000_training_digits_and_deterministic():
    task = load_task("seq-mnist", root=ROOT)
    assert (len(task.train), len(task.val), len(task.test)) == (55000, 5000, 10000)
    raw_x, raw_y = _raw_images("train"), _raw_labels("train")
    assert np.array_equal(task.val.ys.numpy(), raw_y[55000:])
    assert np.array_equal(task.train.ys.numpy(), raw_y[:55000])
    assert np.array_equal(_pixels(task.val.xs[[0, -1]]), raw_x[[55000, 59999]])
    assert task.test is not None and np.array_equal(task.test.ys.numpy(), _raw_labels("t10k"))
    # determinism: a second load (reader cache cleared) gives the same splits, bit for bit
    from spectrumkit.data import _idx
    _idx._read_idx.cache_clear()
    again = load_task("seq-mnist", root=ROOT)
    assert torch.equal(again.val.xs, task.val.xs) and torch.equal(again.val.ys, task.val.ys)
    assert torch.equal(again.train.ys, task.train.ys)


@pytest.mark.slow
def test_authors_split_first_and_last_example_of_each_part():
    task = load_task("seq-mnist", root=ROOT, split_rule="authors")
    assert (len(task.train), len(task.val), task.test) == (63000, 7000, None)
    tr_x, tr_y = _raw_images("train"), _raw_labels("train")
    te_x, te_y = _raw_images("t10k"), _raw_labels("t10k")
    # train: training digit 1 ... training digit 60,000, then test digit 1 ... test digit 3,000
    cases = {"train": [(0, tr_x[0], tr_y[0]), (59999, tr_x[59999], tr_y[59999]),
                       (60000, te_x[0], te_y[0]), (62999, te_x[2999], te_y[2999])],
             # val: test digit 3,001 ... test digit 10,000
             "val": [(0, te_x[3000], te_y[3000]), (6999, te_x[9999], te_y[9999])]}
    for part, rows in cases.items():
        split = getattr(task, part)
        for i, x, y in rows:
            assert np.array_equal(_pixels(split.xs[i]), x), (part, i)
            assert int(split.ys[i]) == int(y), (part, i)
    # the first and last training labels and the first test label (the official files)
    assert [int(task.train.ys[i]) for i in (0, 59999, 60000)] == [5, 8, 7]
    assert np.bincount(task.train.ys.numpy(), minlength=10).tolist() == [
        a + b for a, b in zip(TRAIN_COUNTS, np.bincount(te_y[:3000], minlength=10))]
    assert np.array_equal(task.val.ys.numpy(), te_y[3000:])
    with pytest.raises(SpectrumkitError, match="no test split"):
        seq_mnist(ROOT, split="test", split_rule="authors")


def test_authors_split_changes_the_trial_key_and_needs_the_full_data(cli, tmp_path):
    ident = data_identity("seq-mnist", ROOT)
    plain = TrialConfig(seed=0, epochs=1, method="random")
    authors = TrialConfig(seed=0, epochs=1, method="random", data={"split_rule": "authors"})
    assert trial_key(plain, ident) != trial_key(authors, ident)
    line = cli("train", "--data-option", "split_rule=authors", "--hidden-size", 8, "--steps", 1,
               "--out", tmp_path / "o").error_line()
    assert "split_rule='authors'" in line and "--data-root" in line
