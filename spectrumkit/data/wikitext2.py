r"""Word-level WikiText (bundled WikiText-2 or a root): :func:`wikitext` and the ``wikitext`` task.

Legend: n = tokens, V = vocabulary.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from ..errors import check_positive_int, fail
from ._files import bundled, find
from ._idx import read_bytes
from ._layouts import wikitext_candidates
from ._stream import check_split_tokens
from .containers import TaskData, TokenStream, WikiText
from .vocab import EOS, UNK, vocab_from_counts

__all__ = ["wikitext", "wikitext_task"]

log = logging.getLogger("spectrumkit.data")

_BUNDLED_TRAIN_FRACTION = 0.9


def _wikitext_lines(fn: str, root: Path | None
                    ) -> tuple[dict[str, list[str]], str, dict[str, str]]:
    """(lines per split, source words, where each split comes from) of WikiText."""
    if root is None:
        valid = read_bytes(fn, bundled("wikitext-2/valid.txt.gz")).decode("utf-8").splitlines()
        test = read_bytes(fn, bundled("wikitext-2/test.txt.gz")).decode("utf-8").splitlines()
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
        path = find(fn, f"the WikiText {stem} split", wikitext_candidates(root, stem))
        out[split] = read_bytes(fn, path).decode("utf-8").splitlines()
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
    ``<eos>`` and ``<unk>`` are always in the vocabulary (:func:`~spectrumkit.data.vocab.
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


def wikitext_task(name: str, root: str | Path | None, o: dict[str, Any]) -> TaskData:
    """The ``wikitext`` task of :func:`~spectrumkit.data.load_task` (options ``o`` checked)."""
    fn = "load_task"
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
