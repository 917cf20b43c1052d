r"""Sequential MNIST: the files, the split rules, :func:`seq_mnist` and the ``seq-mnist`` task.

Legend: n = examples, T = steps, D = input size.

The bundled files and a root's layouts (NOTE [Bundled data] in :mod:`spectrumkit.data`), the split
rules (NOTE [The authors' split] here). The arrays are read unscaled (images (n, 28, 28) uint8,
labels (n,) uint8) and scaled by :func:`seq_mnist`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import check_choice, check_positive_int, fail
from ._files import bundled, find
from ._idx import read_idx
from ._layouts import mnist_candidates
from .containers import SequenceDataset, TaskData

__all__ = ["MNIST_MEAN", "MNIST_STD", "mnist_task", "seq_mnist"]

log = logging.getLogger("spectrumkit.data")

#: Mean and std of the 60k MNIST training pixels in [0, 1] (the conventional constants). The
#: ``standard`` scale uses these fixed values for every split and every source.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

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


def _mnist_files(fn: str, root: Path | None, prefix: str) -> tuple[np.ndarray, np.ndarray, Path]:
    """(images (n, 28, 28) uint8, labels (n,) uint8, image path) of one MNIST file pair, checked."""
    if root is None:
        img_path = bundled("mnist/t10k-images-idx3-ubyte.gz")
        lab_path = bundled("mnist/t10k-labels-idx1-ubyte.gz")
    else:
        img_path = find(fn, f"MNIST {prefix} images", mnist_candidates(root, prefix, "images"))
        lab_path = find(fn, f"MNIST {prefix} labels", mnist_candidates(root, prefix, "labels"))
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


def _mnist_label(variant: str, scale: str, permutation_seed: int) -> str:
    seed = f", permutation_seed={permutation_seed}" if variant == "permuted" else ""
    return f"{variant}{seed}, {scale} scale"


def seq_mnist(root: str | Path | None = None, *, variant: str = "row", split: str = "train",
              scale: str = "unit", permutation_seed: int = 0, limit: int | None = None,
              split_rule: str = "default") -> SequenceDataset:
    r"""Sequential MNIST: each 28×28 digit read as a sequence.

    Variants:
        ``row``: T = 28 steps of the D = 28 pixels of one row (the paper's setting);
        ``pixel``: T = 784 steps of D = 1 pixel, row-major;
        ``permuted``: ``pixel`` with one fixed permutation of the 784 positions, drawn by
        ``torch.randperm(784)`` from a CPU generator seeded with ``permutation_seed``.

    Scales of the pixel value p ∈ {0..255}:
        ``unit``: p / 255 ∈ [0, 1];
        ``standard``: (p / 255 − 0.1307) / 0.3081 (:data:`MNIST_MEAN`, :data:`MNIST_STD`);
        ``paper``: 0.1 · p / 255 ∈ [0, 0.1], as the authors' code does.

    Args:
        root: a folder holding ``train-*``/``t10k-*`` IDX files (gzipped or not; also
            ``MNIST/raw``), or None for the bundled data (NOTE [Bundled data]: 8,000 train and
            2,000 val examples from the 10k test set; logged once at INFO and in
            ``description``).
        split: ``train``, ``val`` or ``test`` (see NOTE [Bundled data] for the split rules).
        split_rule: ``default`` (NOTE [Bundled data]) or ``authors`` (NOTE [The authors' split]:
            train = 60,000 training + first 3,000 test digits, val = the other 7,000, no test;
            needs ``root``).
        limit: keep only the first ``limit`` examples of the split (a deterministic subset; the
            splits are already class-mixed). Must not exceed the split's size.

    Returns:
        A :class:`SequenceDataset` with xs float32 (n, T, D) and ys long (n,).

    >>> ds = seq_mnist(split="val", limit=3)
    >>> tuple(ds.xs.shape), ds.ys.tolist(), float(ds.xs.max())
    ((3, 28, 28), [4, 9, 1], 1.0)
    """
    fn = "seq_mnist"
    check_choice(fn, "variant", variant, _VARIANTS)
    check_choice(fn, "split", split, _SPLITS)
    check_choice(fn, "scale", scale, _SCALES)
    check_choice(fn, "split_rule", split_rule, _SPLIT_RULES)
    if isinstance(permutation_seed, bool) or not isinstance(permutation_seed, int):
        raise fail(fn, "permutation_seed to be an int", repr(permutation_seed))
    if limit is not None:
        check_positive_int(fn, "limit", limit)
    rootp = None if root is None else Path(root).expanduser()
    images, labels, src = _mnist_arrays(fn, rootp, split, split_rule)
    if limit is not None:
        if limit > len(labels):
            raise fail(fn, f"limit <= the {len(labels)} examples of the {split} split", limit)
        images, labels = images[:limit], labels[:limit]
        src += f", first {limit}"
    if rootp is None:
        log.info("seq_mnist: no root given, using the %s", src)
    x = torch.tensor(images, dtype=torch.float32) / 255.0
    if scale == "standard":
        x = (x - MNIST_MEAN) / MNIST_STD
    elif scale == "paper":
        x = x * 0.1
    if variant == "row":
        xs = x
    else:
        xs = x.reshape(-1, 784, 1)
        if variant == "permuted":
            perm = torch.randperm(784, generator=torch.Generator().manual_seed(permutation_seed))
            xs = xs[:, perm]
    ys = torch.tensor(labels, dtype=torch.long)
    desc = (f"seq-MNIST ({_mnist_label(variant, scale, permutation_seed)}): {src}; "
            f"{len(ys)} examples")
    return SequenceDataset(xs.contiguous(), ys, desc)



def mnist_task(name: str, root: str | Path | None, o: dict[str, Any]) -> TaskData:
    """The ``seq-mnist`` task of :func:`~spectrumkit.data.load_task` (options ``o`` checked)."""
    fn = "load_task"
    check_choice(fn, "split_rule", o["split_rule"], _SPLIT_RULES)
    rule = o["split_rule"]
    if rule == "authors" and root is None:
        raise fail(fn, "a root with the full MNIST (--data-root) for split_rule='authors' (63,000 "
                   "training and 7,000 validation digits; the bundled data is the 10k test set "
                   "alone)", "the bundled data")
    common = dict(variant=o["variant"], scale=o["scale"], permutation_seed=o["permutation_seed"])
    train = seq_mnist(root, split="train", limit=o["limit"], split_rule=rule, **common)
    val = seq_mnist(root, split="val", limit=o["val_limit"], split_rule=rule, **common)
    test = None if root is None or rule == "authors" else seq_mnist(root, split="test", **common)
    if root is None:
        src = ("bundled MNIST 10k test set, deterministic 8000/2000 split (index % 5 == 4 -> "
               "val), no test split")
    elif rule == "authors":
        src = (f"MNIST from {root}, the authors' split: train = 60,000 training + first "
               f"{_AUTHORS_TEST_TO_TRAIN} test digits, val = the other test digits, no test split")
    else:
        src = f"MNIST from {root}, val = last {_FULL_VAL} of the training set"
    sizes = ", ".join(f"{s} {len(d)}" for s, d in (("train", train), ("val", val),
                                                    ("test", test)) if d is not None)
    desc = f"seq-MNIST ({_mnist_label(**common)}): {src}; {sizes}"
    return TaskData("seq-mnist", "classification", train, val, test, desc,
                    input_size=int(train.xs.shape[-1]), num_classes=10)
