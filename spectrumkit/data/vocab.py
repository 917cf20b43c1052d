r"""The vocabulary of the word-level tasks: ``<eos>``, ``<unk>`` and the most frequent words.

Every word-level task (WikiText, WikiText-103, One Billion Words) takes its vocabulary from its
training split with :func:`vocab_from_counts`, so the rule is one.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["EOS", "UNK", "vocab_from_counts"]

#: The end-of-line token (appended to every line) and the out-of-vocabulary token.
EOS, UNK = "<eos>", "<unk>"


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

