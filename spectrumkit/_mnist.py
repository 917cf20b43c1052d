r"""The MNIST files and their split rules, as arrays: what :func:`spectrumkit.data.seq_mnist` reads.

The bundled files (their pinned SHA-256 digests, checked on every load), the file layouts of a
root, and the split rules (NOTE [Bundled data] in :mod:`spectrumkit.data`, NOTE [The authors'
split] here). Arrays are returned unscaled: images (n, 28, 28) uint8, labels (n,) uint8.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np

from ._digest import file_sha256
from ._idx import read_idx
from .errors import fail

_BUNDLED_SHA256 = {
    "mnist/t10k-images-idx3-ubyte.gz":
        "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    "mnist/t10k-labels-idx1-ubyte.gz":
        "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
    "wikitext-2/valid.txt.gz": "13a311129adfcd8bc4240c0a1bc87100acc8a79f5c07da65ccfb52d54b7e963e",
    "wikitext-2/test.txt.gz": "117429eaf70acf81a949f6a16724a9625d3d658989765ee75eeda330dce331fe",
}


def _bundled(rel: str) -> Path:
    """Path of a bundled file, its sha256 checked (a corrupt install is an error, not bad data)."""
    path = Path(str(files("spectrumkit") / "_bundled" / rel))
    _, digest = file_sha256("spectrumkit data", path, persist=False)
    if digest != _BUNDLED_SHA256[rel]:
        raise fail("spectrumkit data", f"bundled {rel} with sha256 {_BUNDLED_SHA256[rel]}",
                   f"{digest} at {path} (reinstall spectrumkit)")
    return path


def _find(fn: str, what: str, candidates: list[Path]) -> Path:
    for p in candidates:
        if p.is_file():
            return p
    raise fail(fn, f"{what} at one of: {', '.join(map(str, candidates))}", "none of them")


_VARIANTS = ("row", "pixel", "permuted")
_SPLITS = ("train", "val", "test")
_SCALES = ("unit", "standard", "paper")
_FULL_VAL = 5000
_SPLIT_RULES = ("default", "authors")
_AUTHORS_TEST_TO_TRAIN = 3000

# NOTE [The authors' split]
# ``split_rule="authors"`` (a data option of ``seq-mnist``; it needs root= with the full MNIST) is
# the split of the authors' code (docs/authors-code.md §7): train = the 60,000 training digits in
# their order, followed by the first 3,000 test digits (63,000); val = the other 7,000 test digits
# (test digits 3,001-10,000, in order); there is no test split. ``split_rule="default"`` is
# NOTE [Bundled data]'s rule: with a root, train = the first 55,000 training digits, val = the
# last 5,000, test = the 10,000 test digits.


def _mnist_candidates(root: Path, prefix: str, kind: str) -> list[Path]:
    idx = "idx3" if kind == "images" else "idx1"
    out = []
    for d in (root, root / "MNIST" / "raw", root / "raw"):
        for name in (f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"):
            out += [d / name, d / (name + ".gz")]
    return out


def _mnist_files(fn: str, root: Path | None, prefix: str) -> tuple[np.ndarray, np.ndarray, Path]:
    """(images (n, 28, 28) uint8, labels (n,) uint8, image path) of one MNIST file pair, checked."""
    if root is None:
        img_path = _bundled("mnist/t10k-images-idx3-ubyte.gz")
        lab_path = _bundled("mnist/t10k-labels-idx1-ubyte.gz")
    else:
        img_path = _find(fn, f"MNIST {prefix} images", _mnist_candidates(root, prefix, "images"))
        lab_path = _find(fn, f"MNIST {prefix} labels", _mnist_candidates(root, prefix, "labels"))
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise fail(fn, "uint8 images of shape (n, 28, 28)",
                   f"{images.dtype} {images.shape} in {img_path}")
    if labels.shape != (images.shape[0],) or labels.dtype != np.uint8 or labels.max() > 9:
        raise fail(fn, f"{images.shape[0]} uint8 labels in 0..9",
                   f"{labels.dtype} {labels.shape} (max {labels.max()}) in {lab_path}")
    return images, labels, img_path


def _mnist_arrays(fn: str, root: Path | None, split: str, split_rule: str = "default"
                  ) -> tuple[np.ndarray, np.ndarray, str]:
    """(images (n, 28, 28) uint8, labels (n,) uint8, source words) of one split, unscaled."""
    if root is None:
        if split_rule == "authors":
            raise fail(fn, "root= holding the full MNIST (60k training and 10k test digits) for "
                       "split_rule='authors' (the bundled data is the 10k test set alone)",
                       "root=None")
        if split == "test":
            raise fail(fn, "split 'train' or 'val' for the bundled data (its 10k images are the "
                       "MNIST test set, split 8000/2000 into train and val; pass root= for a "
                       "test split)", repr(split))
        images, labels, _ = _mnist_files(fn, root, "t10k")
        n = images.shape[0]
        keep = (np.arange(n) % 5 == 4) if split == "val" else (np.arange(n) % 5 != 4)
        src = ("bundled MNIST 10k test set, deterministic 8000/2000 split "
               f"(index % 5 == 4 -> val); {split} split")
        return images[keep], labels[keep], src
    if split_rule == "authors":
        return _authors_arrays(fn, root, split)
    images, labels, img_path = _mnist_files(fn, root, "t10k" if split == "test" else "train")
    n = images.shape[0]
    if split == "test":
        return images, labels, f"MNIST test set from {img_path}"
    if n <= _FULL_VAL:
        raise fail(fn, f"a training set of more than {_FULL_VAL} images", f"{n} in {img_path}")
    keep = np.arange(n) >= n - _FULL_VAL if split == "val" else np.arange(n) < n - _FULL_VAL
    src = (f"MNIST training set from {img_path}, "
           f"{'last' if split == 'val' else 'first'} {int(keep.sum())} as {split}")
    return images[keep], labels[keep], src


def _authors_arrays(fn: str, root: Path, split: str) -> tuple[np.ndarray, np.ndarray, str]:
    """The authors' split (NOTE [The authors' split]) of a full MNIST root."""
    if split == "test":
        raise fail(fn, "split 'train' or 'val' with split_rule='authors' (it has no test split: "
                   f"the first {_AUTHORS_TEST_TO_TRAIN} test digits train, the rest validate)",
                   repr(split))
    test_x, test_y, test_path = _mnist_files(fn, root, "t10k")
    if test_x.shape[0] <= _AUTHORS_TEST_TO_TRAIN:
        raise fail(fn, f"a test set of more than {_AUTHORS_TEST_TO_TRAIN} images for "
                   "split_rule='authors'", f"{test_x.shape[0]} in {test_path}")
    if split == "val":
        return (test_x[_AUTHORS_TEST_TO_TRAIN:], test_y[_AUTHORS_TEST_TO_TRAIN:],
                f"MNIST test set from {test_path}, digits {_AUTHORS_TEST_TO_TRAIN + 1}-"
                f"{test_x.shape[0]} as val (the authors' split)")
    train_x, train_y, train_path = _mnist_files(fn, root, "train")
    return (np.concatenate([train_x, test_x[:_AUTHORS_TEST_TO_TRAIN]]),
            np.concatenate([train_y, test_y[:_AUTHORS_TEST_TO_TRAIN]]),
            f"MNIST training set from {train_path} ({train_x.shape[0]}) followed by the first "
            f"{_AUTHORS_TEST_TO_TRAIN} of the test set as train (the authors' split)")
