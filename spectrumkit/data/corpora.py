r"""Corpora too large to hold in memory: One Billion Words and WikiText-103, streamed from disk.

Legend: B = batch (rows of the stream), t = window length (≤ bptt), V = vocabulary, n = tokens.

Both are word level: whitespace tokens, ``<eos>`` appended to every line (a line ends at ``\n``),
the vocabulary taken from the training split, most frequent first (ties by first occurrence),
words outside it mapped to ``<unk>``, which is always in the vocabulary. :func:`load_task` in
:mod:`spectrumkit.data` names them ``1b`` and ``wikitext-103`` and calls :func:`corpus_task`.

NOTE [One Billion Words layout]
The layout as distributed (Chelba et al. 2013,
``1-billion-word-language-modeling-benchmark-r13output``)::

    ROOT/training-monolingual.tokenized.shuffled/news.en-000NN-of-00100      NN = 01 .. 99
    ROOT/heldout-monolingual.tokenized.shuffled/news.en.heldout-000NN-of-00050   NN = 00 .. 49

Every shard may be plain or gzipped (a ``.gz`` suffix, or any file starting with the gzip magic);
a shard present both plain and gzipped is an error. ``ROOT`` is the benchmark folder or a folder
holding it. The training stream is the training shards in the order of their numbers, each read
line by line. Split rule: held-out shard 00000 is the test split (the benchmark's standard test
set) and held-out shard 00001 the validation split; the other held-out shards are not read. The
training shards present are all used (a partial download is allowed and its shard count is in the
description); a missing folder or a folder without shards is an error naming the layout.

NOTE [WikiText-103 layout]
``ROOT/wikitext-103/wiki.{train,valid,test}.tokens`` as unzipped from ``wikitext-103-v1.zip``
(``ROOT`` may also be the ``wikitext-103`` folder itself); each file plain or gzipped. Not bundled.

The streamed reading (NOTE [Streaming], NOTE [Vocabulary memory], NOTE [Line length]) is in
``spectrumkit/data/_stream.py``; the layouts' file finding in ``spectrumkit/data/_layouts.py``.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from ..errors import check_positive_int, fail
from ._files import bundled
from ._idx import read_bytes
from ._layouts import (
    ONE_B_DIR,
    ONE_B_HELDOUT,
    ONE_B_LAYOUT,
    ONE_B_TRAIN,
    WT103_LAYOUT,
    one_b_files,
    wt103_files,
)
from ._stream import (
    MAX_LINE_BYTES,
    StreamedTokens,
    check_split_tokens,
    count_tokens,
    encode_file,
)
from .containers import TaskData, TokenStream
from .vocab import vocab_from_counts

__all__ = ["MAX_LINE_BYTES", "ONE_B_DIR", "ONE_B_HELDOUT", "ONE_B_TRAIN", "corpus_task",
           "write_1b_sample"]

log = logging.getLogger("spectrumkit.data")


def write_1b_sample(folder: str | Path) -> Path:
    r"""Write a small corpus in the exact One Billion Words layout from the bundled WikiText-2 text.

    For tests and quick runs (NOTE [One Billion Words layout]): the non-empty lines of the bundled
    WikiText-2 ``valid`` split (stripped) go round-robin to the 99 training shards, those of its
    ``test`` split to the 50 held-out shards. Odd-numbered shards are gzipped (``.gz``, mtime 0)
    and even-numbered ones plain, so both paths are read. About 0.2 M training tokens, 2.5 k per
    held-out shard. Returns ``folder/1-billion-word-language-modeling-benchmark-r13output``.
    """
    fn = "write_1b_sample"
    base = Path(folder) / ONE_B_DIR
    texts = {}
    for split in ("valid", "test"):
        raw = read_bytes(fn, bundled(f"wikitext-2/{split}.txt.gz")).decode("utf-8")
        texts[split] = [line.strip() for line in raw.splitlines() if line.strip()]
    for sub, split, shards, name in (
            (ONE_B_TRAIN, "valid", range(1, 100), "news.en-{:05d}-of-00100"),
            (ONE_B_HELDOUT, "test", range(50), "news.en.heldout-{:05d}-of-00050")):
        d = base / sub
        d.mkdir(parents=True, exist_ok=True)
        ks = list(shards)
        for j, k in enumerate(ks):
            body = "".join(line + "\n" for line in texts[split][j::len(ks)]).encode("utf-8")
            path = d / name.format(k)
            if k % 2:
                path = path.with_name(path.name + ".gz")
                body = gzip.compress(body, mtime=0)
            path.write_bytes(body)
    return base


# --------------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------------


def corpus_task(name: str, root: str | Path | None, o: dict[str, Any]) -> TaskData:
    r"""The :class:`~spectrumkit.data.TaskData` of ``1b`` or ``wikitext-103`` (from ``load_task``).

    Options ``o`` (validated here): ``max_vocab`` (V ≥ 2 or None), ``bptt``, ``limit`` (read only
    the first ``limit`` training tokens, for the vocabulary *and* for training: quick runs never
    read the whole corpus), and for ``1b`` ``sample`` (True: read :func:`write_1b_sample`'s corpus,
    written into a temporary folder removed with the training split; ``root`` must then be None).
    The training split is a :class:`StreamedTokens`; val and test are
    :class:`~spectrumkit.data.TokenStream` (NOTE [One Billion Words layout] for the split rule).
    """
    fn = "load_task"
    check_positive_int(fn, "bptt", o["bptt"])
    if o["max_vocab"] is not None:
        check_positive_int(fn, "max_vocab", o["max_vocab"])
        if o["max_vocab"] < 2:
            raise fail(fn, "max_vocab >= 2 (room for <unk> and one word)", o["max_vocab"])
    if o["limit"] is not None:
        check_positive_int(fn, "limit", o["limit"])
    keep = None
    if name == "1b":
        if not isinstance(o["sample"], bool):
            raise fail(fn, "sample to be true or false", repr(o["sample"]))
        if o["sample"]:
            if root is not None:
                raise fail(fn, "root=None with sample=True (the sample is written to a temporary "
                           "folder)", repr(str(root)))
            keep = tempfile.mkdtemp(prefix="spectrumkit-1b-sample-")
            root = write_1b_sample(keep)
        elif root is None:
            raise fail(fn, ONE_B_LAYOUT + " given as root= (One Billion Words is not bundled; "
                       "sample=True reads a small corpus in its layout)", "root=None")
        base, train_files, val_file, test_file = one_b_files(fn, Path(root).expanduser())
        src = ("bundled-text sample in the One Billion Words layout (write_1b_sample)"
               if keep is not None else f"One Billion Words from {base}")
        split_words = (f"train = {len(train_files)} of 99 training shards, val = held-out shard "
                       "00001, test = held-out shard 00000")
    else:
        if root is None:
            raise fail(fn, WT103_LAYOUT + " given as root= (WikiText-103 is not bundled)",
                       "root=None")
        base, train_files, val_file, test_file = wt103_files(fn, Path(root).expanduser())
        src = f"WikiText-103 from {base}"
        split_words = "train = wiki.train.tokens, val = wiki.valid.tokens, test = wiki.test.tokens"
    counts, per_file = count_tokens(fn, train_files, o["limit"])
    check_split_tokens(fn, "training", sum(per_file),
                       ", ".join(map(str, train_files)) if len(train_files) <= 3 else
                       f"{len(train_files)} files in {train_files[0].parent}")
    vocab = vocab_from_counts(counts, o["max_vocab"])
    del counts
    index = {w: i for i, w in enumerate(vocab)}
    n = sum(per_file)
    cap = f", capped at {o['max_vocab']}" if o["max_vocab"] is not None else ""
    lim = f", first {n} tokens (limit {o['limit']})" if o["limit"] is not None else ""
    desc = f"{src}: {split_words}{lim}; word level, {len(vocab)} words from train{cap}"
    train = StreamedTokens(tuple(train_files[:len(per_file)]), tuple(per_file), vocab,
                           f"{desc}; train split, streamed")
    if keep is not None:  # the sample's folder goes when the stream that reads it goes
        weakref.finalize(train, shutil.rmtree, keep, ignore_errors=True)
    val = TokenStream(encode_file(fn, val_file, index), f"{desc}; val split")
    test = TokenStream(encode_file(fn, test_file, index), f"{desc}; test split")
    check_split_tokens(fn, "validation", len(val), val_file)
    check_split_tokens(fn, "test", len(test), test_file)
    log.info("%s: %s", name, desc)
    return TaskData(name, "language", train, val, test,
                    f"{desc}; tokens train {n}, val {len(val)}, test {len(test)}",
                    vocab_size=len(vocab), bptt=o["bptt"], vocab=vocab)
