r"""Where each data set's files lie under a root: the layouts that loaders and identities share.

The MNIST IDX names (also torchvision's ``MNIST/raw``), the WikiText names, and the layouts of
One Billion Words and WikiText-103 (NOTE [One Billion Words layout], NOTE [WikiText-103 layout]
in :mod:`spectrumkit.data.corpora`). Nothing here reads a file's contents.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import fail

__all__ = ["ONE_B_DIR", "ONE_B_HELDOUT", "ONE_B_LAYOUT", "ONE_B_TRAIN", "WT103_DIR",
           "WT103_LAYOUT", "mnist_candidates", "one_b_files", "shard", "wikitext_candidates",
           "wt103_files"]

ONE_B_DIR = "1-billion-word-language-modeling-benchmark-r13output"
ONE_B_TRAIN = "training-monolingual.tokenized.shuffled"
ONE_B_HELDOUT = "heldout-monolingual.tokenized.shuffled"
WT103_DIR = "wikitext-103"
_TRAIN_RE = re.compile(r"news\.en-000(\d\d)-of-00100(\.gz)?")
ONE_B_LAYOUT = (f"the One Billion Words layout ROOT/{ONE_B_TRAIN}/news.en-000NN-of-00100[.gz] "
                f"(NN = 01..99) and ROOT/{ONE_B_HELDOUT}/news.en.heldout-000NN-of-00050[.gz] "
                f"(00000 = test, 00001 = val), ROOT = {ONE_B_DIR} or its parent")
WT103_LAYOUT = (f"the WikiText-103 layout ROOT/{WT103_DIR}/wiki.{{train,valid,test}}.tokens[.gz] "
                f"(or ROOT itself holding them)")


def mnist_candidates(root: Path, prefix: str, kind: str) -> list[Path]:
    """Where the MNIST ``prefix`` (train, t10k) ``kind`` (images, labels) file may lie."""
    idx = "idx3" if kind == "images" else "idx1"
    out = []
    for d in (root, root / "MNIST" / "raw", root / "raw"):
        for name in (f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"):
            out += [d / name, d / (name + ".gz")]
    return out


def wikitext_candidates(root: Path, stem: str) -> list[Path]:
    """Where the WikiText ``stem`` (train, valid, test) split may lie."""
    return [root / f"{stem}.txt", root / f"wiki.{stem}.tokens", root / f"{stem}.txt.gz",
            root / f"wiki.{stem}.tokens.gz"]


def shard(fn: str, folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz`` (both present is an error), or None."""
    plain, gz = folder / name, folder / (name + ".gz")
    if plain.is_file() and gz.is_file():
        raise fail(fn, f"shard {name} either plain or gzipped in {folder}", "both")
    return plain if plain.is_file() else gz if gz.is_file() else None


def one_b_files(fn: str, root: Path) -> tuple[Path, list[Path], Path, Path]:
    """(benchmark folder, training shards in order, val shard, test shard) of ``root``."""
    base = root / ONE_B_DIR if (root / ONE_B_DIR).is_dir() else root
    tdir, hdir = base / ONE_B_TRAIN, base / ONE_B_HELDOUT
    for d in (tdir, hdir):
        if not d.is_dir():
            raise fail(fn, ONE_B_LAYOUT, f"no folder {d}")
    found: dict[int, Path] = {}
    for p in tdir.iterdir():
        m = _TRAIN_RE.fullmatch(p.name)
        if m and 1 <= int(m.group(1)) <= 99:
            path = shard(fn, tdir, p.name.removesuffix(".gz"))
            if path is not None:  # p itself (or its twin, refused by shard)
                found[int(m.group(1))] = path
    if not found:
        raise fail(fn, ONE_B_LAYOUT, f"no training shard news.en-000NN-of-00100 in {tdir}")
    held: dict[str, Path] = {}
    for k, split in ((0, "test"), (1, "val")):
        name = f"news.en.heldout-{k:05d}-of-00050"
        path = shard(fn, hdir, name)
        if path is None:
            raise fail(fn, ONE_B_LAYOUT, f"no {split} shard {name} in {hdir}")
        held[split] = path
    return base, [found[k] for k in sorted(found)], held["val"], held["test"]


def wt103_files(fn: str, root: Path) -> tuple[Path, list[Path], Path, Path]:
    """(folder, [train file], val file, test file) of a WikiText-103 root."""
    base = root / WT103_DIR if (root / WT103_DIR).is_dir() else root
    if not base.is_dir():
        raise fail(fn, WT103_LAYOUT, f"no folder {base}")
    out = []
    for stem in ("train", "valid", "test"):
        p = shard(fn, base, f"wiki.{stem}.tokens")
        if p is None:
            raise fail(fn, WT103_LAYOUT, f"no wiki.{stem}.tokens in {base}")
        out.append(p)
    return base, [out[0]], out[1], out[2]
