r"""A training split streamed from disk (:class:`StreamedTokens`), and reading corpus files.

Legend: B = batch (rows of the stream), t = window length (<= bptt), V = vocabulary, n = tokens.

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
import math
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import check_positive_int, fail
from .vocab import EOS, UNK

__all__ = ["MAX_LINE_BYTES", "StreamedTokens", "check_split_tokens", "count_tokens", "encode_file",
           "read_lines"]

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



def read_lines(fn: str, path: Path) -> Iterator[str]:
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


def count_tokens(fn: str, files: list[Path], limit: int | None) -> tuple[Counter, list[int]]:
    """Word counts over the first ``limit`` tokens (all if None), and the tokens read per file."""
    counts: Counter = Counter()
    per_file: list[int] = []
    total = 0
    for path in files:
        n = 0
        for line in read_lines(fn, path):
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
        for line in read_lines(fn, path):
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



def encode_file(fn: str, path: Path, index: dict[str, int]) -> torch.Tensor:
    """A whole (small) file as token ids (n,) long: a validation or test split."""
    blocks = list(_blocks(fn, (path,), (sys.maxsize,), index, 0))
    if not blocks:
        return torch.zeros(0, dtype=torch.long)
    return torch.from_numpy(np.concatenate(blocks))

