"""Small tasks written as a user would, for the user-task tests: loaders importable by path.

``parity``: T random bits (float inputs (n, T, 1)); the label is their sum mod 2.
``delayed_recall``: token ids (n, L) with L = 2 + delay: a symbol in 1..K, ``delay`` blanks, and
the cue K + 1; the target is blank (0) everywhere but at the cue, where it is the symbol.
``FLIP`` (a module global) inverts every parity label, so a test can change what the loader
returns without changing its name or options.
"""

from __future__ import annotations

import torch

FLIP = False


def parity_pool(T: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(xs (n, T, 1) float32 bits, ys (n,) long parities), drawn from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (n, T), generator=g)
    ys = bits.sum(dim=1) % 2
    return bits.to(torch.float32).unsqueeze(-1), (1 - ys) if FLIP else ys


def parity(T: int = 6, n: int = 60, seed: int = 0):
    """One pool of ``n`` sequences as tensors (the loader splits it)."""
    return parity_pool(T, n, seed)


class RecallDataset(torch.utils.data.Dataset):
    """A map-style Dataset of (x (L,), y (L,)) token sequences."""

    def __init__(self, n: int, delay: int, symbols: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.sym = torch.randint(1, symbols + 1, (n,), generator=g)
        self.delay, self.cue = delay, symbols + 1

    def __len__(self) -> int:
        return len(self.sym)

    def __getitem__(self, i: int):
        L = 2 + self.delay
        x = torch.zeros(L, dtype=torch.long)
        x[0], x[-1] = self.sym[i], self.cue
        y = torch.zeros(L, dtype=torch.long)
        y[-1] = self.sym[i]
        return x, y


def delayed_recall(delay: int = 3, symbols: int = 4, seed: int = 0):
    """Splits as Datasets: train 40, val 10, test 10."""
    return {"train": RecallDataset(40, delay, symbols, seed),
            "val": RecallDataset(10, delay, symbols, seed + 1),
            "test": RecallDataset(10, delay, symbols, seed + 2)}


def wrong_type(n: int = 3):
    """Not data."""
    return "parity"
