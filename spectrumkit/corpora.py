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

NOTE [Streaming]
Nothing holds the training stream. A first pass over the training files counts the words (for the
vocabulary) and the tokens of every file. Training then reads the stream exactly as
:func:`~spectrumkit.data.bptt_batches` would cut the whole stream (B contiguous rows of
L = ⌊n / B⌋ tokens, windows of ``bptt``), without materializing it: row b is a reader that starts
at token b·L (found from the per-file counts, skipping inside one file) and decodes ``_BLOCK``
tokens at a time. Memory while training is O(B · _BLOCK) tokens plus the vocabulary index,
whatever n is (``tests/test_corpora.py`` measures the peak RSS on a 5-million-token corpus).
The validation and test splits (one held-out shard, or ``wiki.valid``/``wiki.test``) are small and
are held as :class:`~spectrumkit.data.TokenStream`.

NOTE [Vocabulary memory]
The count table is exact: a :class:`collections.Counter` with one entry per distinct word. Its
memory is bounded by the number of word types, not of tokens: One Billion Words has about 0.8 M
types against 0.8 B tokens; a Counter of 800,000 nine-letter words measured 79 MiB (about 100
bytes per entry: a short str, an int and a dict slot), plus a transient list of (word, count)
pairs of about half that while ``most_common`` sorts it. No approximate counter (Misra–Gries,
space-saving) is used: it would change which words are kept near the cut-off, and the paper's
truncated vocabulary is the exact top 100,000.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
import shutil
import sys
import tempfile
import weakref
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import check_positive_int, fail

__all__ = ["MAX_LINE_BYTES", "ONE_B_HELDOUT", "ONE_B_TRAIN", "StreamedTokens", "check_split_tokens",
           "corpus_task", "vocab_from_counts", "write_1b_sample"]

log = logging.getLogger("spectrumkit.corpora")

EOS, UNK = "<eos>", "<unk>"
ONE_B_DIR = "1-billion-word-language-modeling-benchmark-r13output"
ONE_B_TRAIN = "training-monolingual.tokenized.shuffled"
ONE_B_HELDOUT = "heldout-monolingual.tokenized.shuffled"
WT103_DIR = "wikitext-103"
_TRAIN_RE = re.compile(r"news\.en-000(\d\d)-of-00100(\.gz)?")
_ONE_B_LAYOUT = (f"the One Billion Words layout ROOT/{ONE_B_TRAIN}/news.en-000NN-of-00100[.gz] "
                 f"(NN = 01..99) and ROOT/{ONE_B_HELDOUT}/news.en.heldout-000NN-of-00050[.gz] "
                 f"(00000 = test, 00001 = val), ROOT = {ONE_B_DIR} or its parent")
_WT103_LAYOUT = (f"the WikiText-103 layout ROOT/{WT103_DIR}/wiki.{{train,valid,test}}.tokens[.gz] "
                 f"(or ROOT itself holding them)")
_BLOCK = 4096  # tokens decoded at a time by one row reader (NOTE [Streaming])

#: The longest line read from a corpus file, in bytes with its newline (NOTE [Line length]).
MAX_LINE_BYTES = 1 << 20

# NOTE [Line length]
# Corpus files are read line by line, and a line is a unit of the data (``<eos>`` closes it), so a
# line is never held whole if it could be huge: ``readline`` is given a bound of
# :data:`MAX_LINE_BYTES` (1 MiB), and a line longer than that is REFUSED in one line naming the
# file and the line number, not split: splitting would add ``<eos>`` tokens the corpus does not
# have (and could cut a word or a UTF-8 character in two). Real lines are far shorter: One Billion
# Words holds sentences, WikiText-103 paragraphs (its longest line is under 100 kB). So a shard
# of 115 MB without a newline costs 1 MiB of memory before its one-line error, not the whole file.


# --------------------------------------------------------------------------------------------------
# Reading lines and tokens
# --------------------------------------------------------------------------------------------------


def _lines(fn: str, path: Path) -> Iterator[str]:
    """The lines of a plain or gzipped (by magic) UTF-8 file, streamed; errors name the file.

    A line longer than :data:`MAX_LINE_BYTES` is refused (NOTE [Line length]).
    """
    lineno = 0
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        opener: Any = gzip.open if gz else open
        with opener(path, "rb") as f:
            while raw := f.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise fail(fn, f"lines of at most {MAX_LINE_BYTES} bytes (a longer one is "
                               "refused, never split)",
                               f"a longer line, line {lineno} of {path}")
                yield raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        where = f" (line {lineno + 1})" if isinstance(e, UnicodeDecodeError) else ""
        raise fail(fn, f"a readable UTF-8 (gzip) file {path}",
                   f"{type(e).__name__}{where}: {e}") from None


def vocab_from_counts(counts: Counter, max_vocab: int | None) -> tuple[str, ...]:
    r"""The vocabulary from word counts: most frequent first, ties by first occurrence.

    ``<eos>`` and ``<unk>`` are always in it (the encoders need both, whatever the counts hold).
    With ``max_vocab`` = V ≥ 2 the result has at most V entries, both of them included: the most
    frequent words, in order, with room kept for whichever of the two did not make it; the missing
    ones are appended, ``<eos>`` then ``<unk>`` (so ``<unk>`` is last when appended).

    >>> vocab_from_counts(Counter(["b", "a", "a", "c"]), 3)
    ('a', '<eos>', '<unk>')
    >>> vocab_from_counts(Counter(["a", "<eos>", "b", "<eos>"]), 3)
    ('<eos>', 'a', '<unk>')
    """
    words = [w for w, _ in counts.most_common()]  # stable: ties keep insertion order
    reserved = (EOS, UNK)
    if max_vocab is not None:
        room = max_vocab - len(reserved)  # entries left for the other words
        kept = []
        for w in words:
            if w in reserved or room > 0:
                kept.append(w)
                room -= w not in reserved
        words = kept
    return tuple(words + [w for w in reserved if w not in words])


def _count(fn: str, files: list[Path], limit: int | None) -> tuple[Counter, list[int]]:
    """Word counts over the first ``limit`` tokens (all if None), and the tokens read per file."""
    counts: Counter = Counter()
    per_file: list[int] = []
    total = 0
    for path in files:
        n = 0
        for line in _lines(fn, path):
            words = line.split()
            words.append(EOS)
            if limit is not None and total + n + len(words) > limit:
                words = words[:limit - total - n]
            counts.update(words)
            n += len(words)
            if limit is not None and total + n >= limit:
                break
        per_file.append(n)
        total += n
        if limit is not None and total >= limit:
            break
    return counts, per_file


def check_split_tokens(fn: str, split: str, n: int, where: Any) -> None:
    """Refuse a split of fewer than 2 tokens (an input and a target), naming its file(s)."""
    if n < 2:
        raise fail(fn, f"a {split} split of at least 2 tokens", f"{n} in {where}")


def _blocks(fn: str, files: tuple[Path, ...], per_file: tuple[int, ...], index: dict[str, int],
            start: int) -> Iterator[np.ndarray]:
    """Token ids from global offset ``start`` on, in int64 blocks of about ``_BLOCK`` tokens."""
    unk, eos = index[UNK], index[EOS]
    get = index.get
    before = 0
    for path, n in zip(files, per_file):
        if before + n <= start:
            before += n
            continue
        skip, left = max(0, start - before), n
        buf: list[int] = []
        for line in _lines(fn, path):
            words = line.split()
            k = len(words) + 1
            if skip >= k:
                skip, left = skip - k, left - k
                continue
            ids = [get(w, unk) for w in words]
            ids.append(eos)
            ids = ids[skip:min(k, left)]
            left -= k
            skip = 0
            buf.extend(ids)
            if len(buf) >= _BLOCK:
                yield np.asarray(buf, dtype=np.int64)
                buf = []
            if left <= 0:
                break
        if buf:
            yield np.asarray(buf, dtype=np.int64)
        before += n


class _Row:
    """One row of the batched stream: hands out the next m tokens of a block iterator."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self.blocks, self.cur, self.pos = blocks, np.empty(0, dtype=np.int64), 0

    def take(self, m: int) -> np.ndarray:
        parts = []
        while m > 0:
            if self.pos == len(self.cur):
                block = next(self.blocks, None)
                if block is None:
                    raise fail("StreamedTokens.windows", "the files to hold the tokens counted "
                               "when the corpus was loaded", "fewer (changed on disk?)")
                self.cur, self.pos = block, 0
            part = self.cur[self.pos:self.pos + m]
            self.pos += len(part)
            m -= len(part)
            parts.append(part)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass(frozen=True, eq=False)
class StreamedTokens:
    r"""A training split read from disk on demand (NOTE [Streaming]); never held in memory.

    Attributes:
        files: the files of the stream, in order. per_file: tokens read from each (after
        ``limit``). vocab: id -> word. description: what this is, in words.
    ``len()`` is n, the number of tokens of the stream.
    """

    files: tuple[Path, ...]
    per_file: tuple[int, ...]
    vocab: tuple[str, ...]
    description: str
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.vocab)})

    def __len__(self) -> int:
        return int(sum(self.per_file))

    def num_windows(self, batch_size: int, bptt: int) -> int:
        """Windows per pass: ⌈(⌊n / B⌋ − 1) / bptt⌉, as :func:`~spectrumkit.data.bptt_batches`."""
        return math.ceil((len(self) // batch_size - 1) / bptt)

    def windows(self, batch_size: int, bptt: int, start: int = 0
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        r"""The truncated-BPTT windows ``(inputs (B, t), targets (B, t))`` from window ``start`` on.

        Equal, window by window, to ``bptt_batches(whole stream, batch_size, bptt)``; ``start``
        skips the first windows (to resume) without running a model over them.

        >>> from spectrumkit.data import load_task
        >>> s = load_task("1b", sample=True, limit=50).train  # 25 tokens a row
        >>> [tuple(a.shape) for a, _ in s.windows(2, 10)]
        [(2, 10), (2, 10), (2, 4)]
        """
        fn = "StreamedTokens.windows"
        check_positive_int(fn, "batch_size", batch_size)
        check_positive_int(fn, "bptt", bptt)
        L = len(self) // batch_size
        if L < 2:
            raise fail(fn, f"a stream of at least {2 * batch_size} tokens", f"{len(self)} tokens")
        total = self.num_windows(batch_size, bptt)
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= total:
            raise fail(fn, f"start in [0, {total}]", repr(start))
        return self._windows(batch_size, bptt, start, L, total)

    def _windows(self, B: int, bptt: int, start: int, L: int, total: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        fn = "StreamedTokens.windows"
        index = self._index
        rows = [_Row(_blocks(fn, self.files, self.per_file, index, b * L + start * bptt))
                for b in range(B)]
        carry = np.stack([r.take(1) for r in rows])  # (B, 1): the token before the window
        for k in range(start, total):
            t = min(bptt, L - 1 - k * bptt)
            new = np.stack([r.take(t) for r in rows])  # (B, t)
            seq = torch.from_numpy(np.concatenate([carry, new], axis=1))
            yield seq[:, :-1], seq[:, 1:]
            carry = new[:, -1:]

    def head_window(self, batch_size: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first window, as :func:`~spectrumkit.data.sample_batch` takes it."""
        return next(iter(self.windows(batch_size, bptt)))


def _encode_all(fn: str, path: Path, index: dict[str, int]) -> torch.Tensor:
    """A whole (small) file as token ids (n,) long: a validation or test split."""
    blocks = list(_blocks(fn, (path,), (sys.maxsize,), index, 0))
    if not blocks:
        return torch.zeros(0, dtype=torch.long)
    return torch.from_numpy(np.concatenate(blocks))


# --------------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------------


def _shard(fn: str, folder: Path, name: str) -> Path | None:
    plain, gz = folder / name, folder / (name + ".gz")
    if plain.is_file() and gz.is_file():
        raise fail(fn, f"shard {name} either plain or gzipped in {folder}", "both")
    return plain if plain.is_file() else gz if gz.is_file() else None


def _one_b_files(fn: str, root: Path) -> tuple[Path, list[Path], Path, Path]:
    """(benchmark folder, training shards in order, val shard, test shard) of ``root``."""
    base = root / ONE_B_DIR if (root / ONE_B_DIR).is_dir() else root
    tdir, hdir = base / ONE_B_TRAIN, base / ONE_B_HELDOUT
    for d in (tdir, hdir):
        if not d.is_dir():
            raise fail(fn, _ONE_B_LAYOUT, f"no folder {d}")
    found: dict[int, Path] = {}
    for p in tdir.iterdir():
        m = _TRAIN_RE.fullmatch(p.name)
        if m and 1 <= int(m.group(1)) <= 99:
            shard = _shard(fn, tdir, p.name.removesuffix(".gz"))
            if shard is not None:  # p itself (or its twin, refused by _shard)
                found[int(m.group(1))] = shard
    if not found:
        raise fail(fn, _ONE_B_LAYOUT, f"no training shard news.en-000NN-of-00100 in {tdir}")
    held: dict[str, Path] = {}
    for k, split in ((0, "test"), (1, "val")):
        name = f"news.en.heldout-{k:05d}-of-00050"
        shard = _shard(fn, hdir, name)
        if shard is None:
            raise fail(fn, _ONE_B_LAYOUT, f"no {split} shard {name} in {hdir}")
        held[split] = shard
    return base, [found[k] for k in sorted(found)], held["val"], held["test"]


def _wt103_files(fn: str, root: Path) -> tuple[Path, list[Path], Path, Path]:
    base = root / WT103_DIR if (root / WT103_DIR).is_dir() else root
    if not base.is_dir():
        raise fail(fn, _WT103_LAYOUT, f"no folder {base}")
    out = []
    for stem in ("train", "valid", "test"):
        p = _shard(fn, base, f"wiki.{stem}.tokens")
        if p is None:
            raise fail(fn, _WT103_LAYOUT, f"no wiki.{stem}.tokens in {base}")
        out.append(p)
    return base, [out[0]], out[1], out[2]


def write_1b_sample(folder: str | Path) -> Path:
    r"""Write a small corpus in the exact One Billion Words layout from the bundled WikiText-2 text.

    For tests and quick runs (NOTE [One Billion Words layout]): the non-empty lines of the bundled
    WikiText-2 ``valid`` split (stripped) go round-robin to the 99 training shards, those of its
    ``test`` split to the 50 held-out shards. Odd-numbered shards are gzipped (``.gz``, mtime 0)
    and even-numbered ones plain, so both paths are read. About 0.2 M training tokens, 2.5 k per
    held-out shard. Returns ``folder/1-billion-word-language-modeling-benchmark-r13output``.
    """
    from .data import _bundled, _read_bytes

    fn = "write_1b_sample"
    base = Path(folder) / ONE_B_DIR
    texts = {}
    for split in ("valid", "test"):
        raw = _read_bytes(fn, _bundled(f"wikitext-2/{split}.txt.gz")).decode("utf-8")
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


def corpus_task(name: str, root: str | Path | None, o: dict[str, Any]) -> Any:
    r"""The :class:`~spectrumkit.data.TaskData` of ``1b`` or ``wikitext-103`` (from ``load_task``).

    Options ``o`` (validated here): ``max_vocab`` (V ≥ 2 or None), ``bptt``, ``limit`` (read only
    the first ``limit`` training tokens, for the vocabulary *and* for training: quick runs never
    read the whole corpus), and for ``1b`` ``sample`` (True: read :func:`write_1b_sample`'s corpus,
    written into a temporary folder removed with the training split; ``root`` must then be None).
    The training split is a :class:`StreamedTokens`; val and test are
    :class:`~spectrumkit.data.TokenStream` (NOTE [One Billion Words layout] for the split rule).
    """
    from .data import TaskData, TokenStream

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
            raise fail(fn, _ONE_B_LAYOUT + " given as root= (One Billion Words is not bundled; "
                       "sample=True reads a small corpus in its layout)", "root=None")
        base, train_files, val_file, test_file = _one_b_files(fn, Path(root).expanduser())
        src = ("bundled-text sample in the One Billion Words layout (write_1b_sample)"
               if keep is not None else f"One Billion Words from {base}")
        split_words = (f"train = {len(train_files)} of 99 training shards, val = held-out shard "
                       "00001, test = held-out shard 00000")
    else:
        if root is None:
            raise fail(fn, _WT103_LAYOUT + " given as root= (WikiText-103 is not bundled)",
                       "root=None")
        base, train_files, val_file, test_file = _wt103_files(fn, Path(root).expanduser())
        src = f"WikiText-103 from {base}"
        split_words = "train = wiki.train.tokens, val = wiki.valid.tokens, test = wiki.test.tokens"
    counts, per_file = _count(fn, train_files, o["limit"])
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
    val = TokenStream(_encode_all(fn, val_file, index), f"{desc}; val split")
    test = TokenStream(_encode_all(fn, test_file, index), f"{desc}; test split")
    check_split_tokens(fn, "validation", len(val), val_file)
    check_split_tokens(fn, "test", len(test), test_file)
    log.info("%s: %s", name, desc)
    return TaskData(name, "language", train, val, test,
                    f"{desc}; tokens train {n}, val {len(val)}, test {len(test)}",
                    vocab_size=len(vocab), bptt=o["bptt"], vocab=vocab)
