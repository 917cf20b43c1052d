r"""Data for training: sequential MNIST, WikiText language modelling, synthetic memory tasks.

Legend: n = examples, T = steps, D = input size, B = batch, V = vocabulary.

Every loader returns plain tensors in small frozen dataclasses with a ``description`` that says
exactly what the data is (which files, which split rule, which scale), so that every output of a
run can carry it. :func:`load_task` is the single entry point the trainer, the studies and the CLI
use; it returns a :class:`TaskData` with ``train``, ``val`` and ``test`` splits.

NOTE [Bundled data]
Without ``root=`` the loaders read the data shipped in ``spectrumkit/_bundled`` (package data, so
a non-editable install works offline; licences and sha256 sums in its README, checked on every
load):

* MNIST: only the official 10k *test* set is bundled. It is split deterministically into 8,000
  train and 2,000 validation examples: example i goes to validation when ``i % 5 == 4``. An
  interleaved rule, not a contiguous cut, because the first 5,000 test digits (NIST SD-3) are
  cleaner than the last 5,000 (SD-1); the rule needs no RNG, so it never changes between torch or
  numpy versions. There is no test split in this mode (it would overlap).
* WikiText-2: only the ``valid`` and ``test`` splits are bundled. The model trains on the first 90 %
  of the lines of ``valid``, validates on the last 10 %, and is tested on ``test``; the vocabulary
  comes from that training part.

With ``root=`` the standard layouts are read (MNIST IDX files plain or gzipped, also torchvision's
``MNIST/raw``; WikiText ``{train,valid,test}.txt`` or ``wiki.{train,valid,test}.tokens``).
For full MNIST the validation split is the last 5,000 of the 60,000 training images, train is the
first 55,000, and test is the official 10k test set; the data option ``split_rule="authors"``
gives the authors' 63,000/7,000 split instead (NOTE [The authors' split] in ``_mnist.py``).
:func:`data_identity` (NOTE [Data identity], in ``_identity.py``) names the files' content; IDX
files are read with memory bounded by their header (NOTE [Bounded IDX reads], in ``_idx.py``).
WikiText-103 and One Billion Words (tasks
``wikitext-103`` and ``1b``) are read, streamed, by :mod:`spectrumkit.corpora`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ._identity import data_identity
from ._idx import read_bytes, read_idx
from ._mnist import (
    _AUTHORS_TEST_TO_TRAIN,
    _FULL_VAL,
    _SCALES,
    _SPLIT_RULES,
    _SPLITS,
    _VARIANTS,
    _bundled,
    _find,
    _mnist_arrays,
)
from .choices import TASKS
from .corpora import StreamedTokens, check_split_tokens, corpus_task, vocab_from_counts
from .errors import check_choice, check_keys, check_memory, check_positive_int, fail
from .init import make_generator

__all__ = [
    "sample_batch",
    "MNIST_MEAN",
    "MNIST_STD",
    "SequenceDataset",
    "TaskData",
    "TokenStream",
    "WikiText",
    "adding_problem",
    "batchify",
    "bptt_batches",
    "bptt_window",
    "bptt_window_count",
    "DEFAULT_BPTT",
    "copy_task",
    "data_identity",
    "load_task",
    "read_idx",
    "seq_mnist",
    "wikitext",
]

log = logging.getLogger("spectrumkit.data")

#: Mean and std of the 60k MNIST training pixels in [0, 1] (the conventional constants). The
#: ``standard`` scale uses these fixed values for every split and every source.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

#: Truncated-BPTT window length of the language tasks when none is given.
DEFAULT_BPTT = 35

Kind = Literal["classification", "language", "regression"]



# --------------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    r"""Fixed-length sequences with one target each (or one target per step for the copy task).

    Attributes:
        xs: float32 inputs (n, T, D), batch-first; for the copy task, token ids (n, T), long.
        ys: targets: class labels (n,) long (classification), values (n,) float32 (regression),
            or token ids (n, T) long (copy task).
        description: what this data is, in words (source, split rule, scale).
    """

    xs: torch.Tensor
    ys: torch.Tensor
    description: str

    def __len__(self) -> int:
        return int(self.xs.shape[0])


@dataclass(frozen=True, eq=False)
class TokenStream:
    """One split of a corpus as a single stream of token ids ``ids`` (n,) long."""

    ids: torch.Tensor
    description: str

    def __len__(self) -> int:
        return int(self.ids.numel())


@dataclass(frozen=True, eq=False)
class WikiText:
    """A tokenised corpus: ``train``/``val``/``test`` streams and ``vocab`` (id -> word)."""

    train: TokenStream
    val: TokenStream
    test: TokenStream
    vocab: tuple[str, ...]
    description: str


@dataclass(frozen=True, eq=False)
class TaskData:
    r"""Everything a trainer needs to know about a task, from :func:`load_task`.

    Attributes:
        name: one of ``seq-mnist``, ``wikitext``, ``adding``, ``copy``, ``wikitext-103``, ``1b``.
        kind: ``classification`` (cross-entropy on the final state, error %), ``language``
            (per-step cross-entropy, perplexity) or ``regression`` (MSE on the final state).
        train, val: the training and validation splits (:class:`SequenceDataset` or
            :class:`TokenStream`; the training split of ``wikitext-103`` and ``1b`` is a
            :class:`~spectrumkit.corpora.StreamedTokens`); test: the test split or None (bundled
            MNIST has none).
        input_size: D for classification and regression; None for language (tokens).
        num_classes: C for classification, else None. vocab_size: V for language, else None.
        bptt: truncation length for token streams (None for fixed-length sequences).
        vocab: id -> word for WikiText, else None.
        description: one line for every output of a run.
    """

    name: str
    kind: Kind
    train: SequenceDataset | TokenStream | StreamedTokens
    val: SequenceDataset | TokenStream
    test: SequenceDataset | TokenStream | None
    description: str
    input_size: int | None = None
    num_classes: int | None = None
    vocab_size: int | None = None
    bptt: int | None = None
    vocab: tuple[str, ...] | None = None


def _read_bytes(fn: str, path: Path) -> bytes:
    """A small file's contents, gunzipped when it starts with the gzip magic (whatever its name)."""
    return read_bytes(fn, path)


# --------------------------------------------------------------------------------------------------
# Sequential MNIST (the files and split rules: spectrumkit/_mnist.py)
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# WikiText
# --------------------------------------------------------------------------------------------------

EOS, UNK = "<eos>", "<unk>"
_BUNDLED_TRAIN_FRACTION = 0.9


def _wikitext_candidates(root: Path, stem: str) -> list[Path]:
    return [root / f"{stem}.txt", root / f"wiki.{stem}.tokens", root / f"{stem}.txt.gz",
            root / f"wiki.{stem}.tokens.gz"]


def _wikitext_lines(fn: str, root: Path | None
                    ) -> tuple[dict[str, list[str]], str, dict[str, str]]:
    """(lines per split, source words, where each split comes from) of WikiText."""
    if root is None:
        valid = _read_bytes(fn, _bundled("wikitext-2/valid.txt.gz")).decode("utf-8").splitlines()
        test = _read_bytes(fn, _bundled("wikitext-2/test.txt.gz")).decode("utf-8").splitlines()
        cut = int(len(valid) * _BUNDLED_TRAIN_FRACTION)
        return ({"train": valid[:cut], "val": valid[cut:], "test": test},
                f"bundled WikiText-2: train = lines 1-{cut} of valid, val = lines {cut + 1}-"
                f"{len(valid)} of valid, test = test",
                {"train": "bundled valid.txt.gz", "val": "bundled valid.txt.gz",
                 "test": "bundled test.txt.gz"})
    out, used, where = {}, [], {}
    if (root / "wikitext-2").is_dir():  # a data root holding the unzipped wikitext-2/ folder
        root = root / "wikitext-2"
    for split, stem in (("train", "train"), ("val", "valid"), ("test", "test")):
        path = _find(fn, f"the WikiText {stem} split", _wikitext_candidates(root, stem))
        out[split] = _read_bytes(fn, path).decode("utf-8").splitlines()
        used.append(path.name)
        where[split] = str(path)
    return out, f"WikiText from {root} ({', '.join(used)})", where


def _build_vocab(lines: list[str], max_vocab: int | None) -> tuple[str, ...]:
    # Counter.most_common orders ties by first occurrence, so the vocabulary is deterministic.
    return vocab_from_counts(Counter(w for line in lines for w in line.split() + [EOS]), max_vocab)


def _encode(lines: list[str], index: dict[str, int]) -> torch.Tensor:
    unk = index[UNK]
    return torch.tensor([index.get(w, unk) for line in lines for w in line.split() + [EOS]],
                        dtype=torch.long)


def wikitext(root: str | Path | None = None, *, max_vocab: int | None = None) -> WikiText:
    r"""Word-level WikiText: whitespace tokens, ``<eos>`` at the end of every line.

    The vocabulary is taken from the training split, most frequent first (ties by first
    occurrence); words outside it map to ``<unk>``, which is always in the vocabulary.
    ``<eos>`` and ``<unk>`` are always in the vocabulary (:func:`~spectrumkit.corpora.
    vocab_from_counts`). ``max_vocab`` keeps at most ``max_vocab`` entries, both included (the
    paper's truncated 1B-words setting uses 100,000). A split of fewer than 2 tokens is refused,
    naming its file.

    Args:
        root: a folder with ``{train,valid,test}.txt`` or ``wiki.{train,valid,test}.tokens``
            (plain or ``.gz``), or None for the bundled WikiText-2 ``valid``/``test`` splits
            (NOTE [Bundled data]: train on 90 % of valid, validate on the rest, test on test).
        max_vocab: vocabulary cap V (≥ 2) or None.

    Returns:
        A :class:`WikiText` with three :class:`TokenStream` splits and the vocabulary.
    """
    fn = "wikitext"
    if max_vocab is not None:
        check_positive_int(fn, "max_vocab", max_vocab)
        if max_vocab < 2:
            raise fail(fn, "max_vocab >= 2 (room for <unk> and one word)", max_vocab)
    rootp = None if root is None else Path(root).expanduser()
    lines, src, where = _wikitext_lines(fn, rootp)
    vocab = _build_vocab(lines["train"], max_vocab)
    index = {w: i for i, w in enumerate(vocab)}
    cap = f", vocabulary capped at {max_vocab}" if max_vocab is not None else ""
    desc = f"{src}; word level, {len(vocab)} words from train{cap}"
    if rootp is None:
        log.info("wikitext: no root given, using the %s", desc)
    streams = {s: TokenStream(_encode(lines[s], index), f"{desc}; {s} split")
               for s in ("train", "val", "test")}
    for s, name in (("train", "training"), ("val", "validation"), ("test", "test")):
        check_split_tokens(fn, name, len(streams[s]), where[s])
    return WikiText(streams["train"], streams["val"], streams["test"], vocab, desc)


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a stream (n,) into ``batch_size`` contiguous rows (B, n // B), dropping the remainder."""
    check_positive_int("batchify", "batch_size", batch_size)
    if ids.dim() != 1 or ids.numel() < 2 * batch_size:
        raise fail("batchify", f"a 1-D stream of at least {2 * batch_size} tokens",
                   f"shape {tuple(ids.shape)}")
    L = ids.numel() // batch_size
    return ids[: L * batch_size].view(batch_size, L)


def bptt_window(rows: torch.Tensor, k: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Window ``k`` of a stream cut into rows (B, L): ``(inputs (B, t), targets (B, t))``.

    ``inputs = rows[:, k·bptt : k·bptt + t]`` and ``targets`` the same columns shifted by one
    token, with t = min(``bptt``, L − 1 − k·``bptt``); a pass has ⌈(L − 1) / ``bptt``⌉ windows
    (:func:`bptt_window_count`). The one windowing rule of training, evaluation and
    :func:`bptt_batches`; the caller checks ``k``.

    >>> [a.tolist() for a in bptt_window(torch.arange(10).view(2, 5), 1, 3)]
    [[[3], [8]], [[4], [9]]]
    """
    start = k * bptt
    t = min(bptt, rows.shape[1] - 1 - start)
    return rows[:, start:start + t], rows[:, start + 1:start + 1 + t]


def bptt_window_count(length: int, bptt: int) -> int:
    """Windows of :func:`bptt_window` in a pass over rows of L = ``length``: ⌈(L − 1) / bptt⌉.

    >>> bptt_window_count(5, 2), bptt_window_count(5, 4), bptt_window_count(5, 3)
    (2, 1, 2)
    """
    return math.ceil((length - 1) / bptt)


def bptt_batches(ids: torch.Tensor, batch_size: int, bptt: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    r"""Truncated-BPTT windows over a token stream.

    The stream is cut into B = ``batch_size`` contiguous rows (:func:`batchify`); window k yields
    ``inputs = rows[:, k·bptt : k·bptt + t]`` and ``targets`` shifted by one token, both (B, t)
    with t = ``bptt`` except possibly in the last window (:func:`bptt_window`). Row b of window
    k+1 continues row b of window k, so a model may carry its state across windows.

    >>> [a.tolist() for a, _ in bptt_batches(torch.arange(10), 2, 2)]
    [[[0, 1], [5, 6]], [[2, 3], [7, 8]]]
    """
    check_positive_int("bptt_batches", "bptt", bptt)
    rows = batchify(ids, batch_size)
    for k in range(bptt_window_count(rows.shape[1], bptt)):
        yield bptt_window(rows, k, bptt)


# --------------------------------------------------------------------------------------------------
# Synthetic long-memory tasks
# --------------------------------------------------------------------------------------------------


def sample_batch(split: SequenceDataset | TokenStream | StreamedTokens, n: int, *,
                 generator: torch.Generator, bptt: int | None = None,
                 device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One batch of ``n`` examples of a split, in the models' batch format, on ``device``.

    Fixed-length sequences: ``n`` examples drawn without replacement by ``generator`` (all of them
    if the split is smaller), returned as ``(xs (B, T, D), ys)``. A token stream: the first ``bptt``
    window (:data:`DEFAULT_BPTT` if None) of the stream cut into ``n`` rows, returned as
    ``(inputs (B, t), targets (B, t))``; the generator is not used. This is the scoring batch of
    ``spectrumkit train`` and of study trials.
    """
    check_positive_int("sample_batch", "n", n)
    if isinstance(split, StreamedTokens):
        inputs, targets = split.head_window(n, bptt or DEFAULT_BPTT)
        return inputs.to(device), targets.to(device)
    if isinstance(split, TokenStream):
        inputs, targets = next(iter(bptt_batches(split.ids, n, bptt or DEFAULT_BPTT)))
        return inputs.to(device), targets.to(device)
    if not isinstance(split, SequenceDataset):
        raise fail("sample_batch", "a SequenceDataset or TokenStream", type(split).__name__)
    idx = torch.randperm(len(split), generator=generator)[: min(n, len(split))]
    return split.xs[idx].to(device), split.ys[idx].to(device)


def adding_problem(T: int, n: int, *, generator: torch.Generator | None = None,
                   seed: int | None = None) -> SequenceDataset:
    r"""The adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015).

    Each input step is (v_t, m_t) with v_t ~ U(0, 1); exactly two markers m_t = 1, one at a
    uniform position in [0, ⌊T/2⌋) and one in [⌊T/2⌋, T). The target is the sum of the two marked
    values. Predicting the constant 1 gives MSE Var(v_1 + v_2) = 1/6 ≈ 0.167, the baseline a model
    must beat. Draws, in order from ``generator`` (or a fresh one seeded with ``seed``): the values
    (n, T), the first positions, the second positions.

    Returns:
        :class:`SequenceDataset` with xs float32 (n, T, 2) and ys float32 (n,).
    """
    fn = "adding_problem"
    check_positive_int(fn, "T", T)
    check_positive_int(fn, "n", n)
    if T < 2:
        raise fail(fn, "T >= 2 (two marked steps)", T)
    g = make_generator(generator, seed, fn)
    v = torch.rand(n, T, generator=g)
    i1 = torch.randint(0, T // 2, (n,), generator=g)
    i2 = torch.randint(T // 2, T, (n,), generator=g)
    m = torch.zeros(n, T)
    rows = torch.arange(n)
    m[rows, i1] = 1.0
    m[rows, i2] = 1.0
    ys = v[rows, i1] + v[rows, i2]
    return SequenceDataset(torch.stack([v, m], dim=-1), ys,
                           f"adding problem, T={T}, {n} examples (baseline MSE 1/6)")


COPY_SYMBOLS, COPY_BLANK, COPY_CUE = 8, 0, 9


def copy_task(T: int, n: int, delay: int, *, generator: torch.Generator | None = None,
              seed: int | None = None) -> SequenceDataset:
    r"""The copying-memory task (Hochreiter & Schmidhuber 1997; the form of Arjovsky et al. 2016).

    Tokens: 0 = blank, 1..8 = symbols, 9 = cue; V = 10. An input of length L = 2T + delay holds T
    symbols drawn uniformly from 1..8, then ``delay − 1`` blanks, the cue, and T blanks. The
    target is blank for the first T + delay steps and then the T symbols, in order. A model
    without memory reaches at best a mean cross-entropy of T·ln 8 / L per step.

    Returns:
        :class:`SequenceDataset` with xs long (n, L) and ys long (n, L).
    """
    fn = "copy_task"
    check_positive_int(fn, "T", T)
    check_positive_int(fn, "n", n)
    check_positive_int(fn, "delay", delay)
    g = make_generator(generator, seed, fn)
    sym = torch.randint(1, COPY_SYMBOLS + 1, (n, T), generator=g)
    L = 2 * T + delay
    xs = torch.full((n, L), COPY_BLANK, dtype=torch.long)
    xs[:, :T] = sym
    xs[:, T + delay - 1] = COPY_CUE
    ys = torch.full((n, L), COPY_BLANK, dtype=torch.long)
    ys[:, T + delay:] = sym
    return SequenceDataset(xs, ys, f"copy task, T={T}, delay={delay}, {n} examples "
                           f"(memoryless cross-entropy {T * math.log(COPY_SYMBOLS) / L:.4f})")


# --------------------------------------------------------------------------------------------------
# The one entry point
# --------------------------------------------------------------------------------------------------

_OPTIONS: dict[str, dict[str, Any]] = {
    "seq-mnist": {"variant": "row", "scale": "unit", "permutation_seed": 0, "limit": None,
                  "val_limit": None, "split_rule": "default"},
    "wikitext": {"max_vocab": None, "bptt": DEFAULT_BPTT, "limit": None},
    "adding": {"T": 50, "n_train": 10000, "n_val": 1000, "n_test": 1000, "seed": 0},
    "copy": {"T": 10, "delay": 20, "n_train": 10000, "n_val": 1000, "n_test": 1000, "seed": 0},
    "wikitext-103": {"max_vocab": None, "bptt": DEFAULT_BPTT, "limit": None},
    "1b": {"max_vocab": 100000, "bptt": DEFAULT_BPTT, "limit": None, "sample": False},
}


def load_task(name: str, *, root: str | Path | None = None, **options: Any) -> TaskData:
    r"""Load a task by name with its options; the single entry point of training and studies.

    =============  ==============  ===========================================================
    name           kind            options (defaults)
    =============  ==============  ===========================================================
    ``seq-mnist``  classification  variant="row", scale="unit", permutation_seed=0,
                                   limit=None (first n train examples), val_limit=None,
                                   split_rule="default" ("authors": 63k/7k, no test; NOTE
                                   [The authors' split], root required)
    ``wikitext``   language        max_vocab=None, bptt=35, limit=None (first n train tokens)
    ``adding``     regression      T=50, n_train=10000, n_val=1000, n_test=1000, seed=0
    ``copy``       language        T=10, delay=20, n_train=10000, n_val=1000, n_test=1000,
                                   seed=0 (per-step targets; trained as independent sequences)
    ``wikitext-``  language        max_vocab=None, bptt=35, limit=None (first n train tokens,
    ``103``                        vocabulary included); root required, training streamed
    ``1b``         language        max_vocab=100000, bptt=35, limit=None (as wikitext-103),
                                   sample=False (True: a small corpus in the 1b layout)
    =============  ==============  ===========================================================

    ``root`` is for ``seq-mnist`` and ``wikitext`` (None = bundled, NOTE [Bundled data]; a root
    holding a ``wikitext-2/`` folder reads it), ``wikitext-103`` and ``1b`` (One Billion Words);
    the last two are read by :mod:`spectrumkit.corpora` (NOTE [One Billion Words layout], NOTE
    [WikiText-103 layout]) and their training split is a streamed
    :class:`~spectrumkit.corpora.StreamedTokens`.
    The synthetic tasks draw train, then val, then test from one generator seeded with ``seed``.
    Unknown option names are refused.

    >>> task = load_task("adding", T=10, n_train=4, n_val=2, n_test=2)
    >>> task.kind, task.input_size, len(task.train), tuple(task.val.xs.shape)
    ('regression', 2, 4, (2, 10, 2))
    """
    fn = "load_task"
    check_choice(fn, "task name", name, TASKS)
    check_keys(fn, f"options for {name}", options, _OPTIONS[name])
    o = {**_OPTIONS[name], **options}
    if name in ("adding", "copy") and root is not None:
        raise fail(fn, f"root=None for the synthetic task {name!r}", repr(root))
    if name in ("wikitext-103", "1b"):
        return corpus_task(name, root, o)
    if name == "seq-mnist":
        return _seq_mnist_task(root, o)
    if name == "wikitext":
        return _wikitext_task(fn, root, o)
    return _synthetic_task(fn, name, o)


def _seq_mnist_task(root: str | Path | None, o: dict[str, Any]) -> TaskData:
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


def _wikitext_task(fn: str, root: str | Path | None, o: dict[str, Any]) -> TaskData:
    check_positive_int(fn, "bptt", o["bptt"])
    corpus = wikitext(root, max_vocab=o["max_vocab"])
    train = corpus.train
    if o["limit"] is not None:
        check_positive_int(fn, "limit", o["limit"])
        if o["limit"] > len(train):
            raise fail(fn, f"limit <= the {len(train)} training tokens", o["limit"])
        train = TokenStream(train.ids[: o["limit"]],
                            f"{train.description}, first {o['limit']} tokens")
    return TaskData("wikitext", "language", train, corpus.val, corpus.test,
                    f"{corpus.description}; tokens train {len(train)}, val "
                    f"{len(corpus.val)}, test {len(corpus.test)}",
                    vocab_size=len(corpus.vocab), bptt=o["bptt"], vocab=corpus.vocab)


# NOTE [Synthetic task memory]
# The synthetic tasks hold all three splits at once, so their sizes go through
# spectrumkit.errors.check_memory before anything is drawn. Bytes per example (lower bounds, the
# kept tensors and the one transient stack): adding 16·T (values and markers in float32, then their
# stacked copy); copy 8·T + 16·L with L = 2T + delay (the symbols, inputs and targets in int64).
def _synthetic_bytes(name: str, o: dict[str, Any]) -> int:
    n = o["n_train"] + o["n_val"] + o["n_test"]
    if name == "adding":
        return 16 * o["T"] * n
    return (8 * o["T"] + 16 * (2 * o["T"] + o["delay"])) * n


def _synthetic_what(name: str, o: dict[str, Any]) -> str:
    delay = f", delay={o['delay']}" if name == "copy" else ""
    return (f"the {name} task's data (T={o['T']}{delay}, n_train + n_val + n_test = "
            f"{o['n_train'] + o['n_val'] + o['n_test']} examples)")


def _synthetic_task(fn: str, name: str, o: dict[str, Any]) -> TaskData:
    """``adding`` or ``copy``: train, then val, then test drawn from one seeded generator."""
    for k in ("T", "n_train", "n_val", "n_test") + (("delay",) if name == "copy" else ()):
        check_positive_int(fn, k, o[k])
    check_memory(fn, _synthetic_what(name, o), _synthetic_bytes(name, o))
    g = make_generator(None, o["seed"], fn)
    if name == "adding":
        train, val, test = (adding_problem(o["T"], o[k], generator=g)
                            for k in ("n_train", "n_val", "n_test"))
        return TaskData(name, "regression", train, val, test,
                        f"adding problem, T={o['T']}, seed={o['seed']}; train {o['n_train']}, "
                        f"val {o['n_val']}, test {o['n_test']} (baseline MSE 1/6)",
                        input_size=2)
    train, val, test = (copy_task(o["T"], o[k], o["delay"], generator=g)
                        for k in ("n_train", "n_val", "n_test"))
    return TaskData(name, "language", train, val, test,
                    f"copy task, T={o['T']}, delay={o['delay']}, seed={o['seed']}; train "
                    f"{o['n_train']}, val {o['n_val']}, test {o['n_test']}",
                    vocab_size=COPY_SYMBOLS + 2)
