"""Shared helpers of the commands: the scoring / probing batch (NOTE [CLI data])."""

from __future__ import annotations

# NOTE [CLI data]
# `--data gaussian`: x ~ N(0, 1) of shape (B, T, D) and labels uniform in [0, classes), drawn from a
# generator seeded --seed + 1. `--data seq-mnist`: B examples of the row-wise sequential MNIST
# training split (T = D = 28, unit pixel scale), chosen without replacement by a generator seeded
# --seed + 1; `--data-root` points at the full data set, else the bundled 8k/2k split is used.

_CLI_DATA = ("gaussian", "seq-mnist")


def _cli_batch(fn: str, data: str, data_root: str | None, batch: int, seq_len: int,
               input_size: int, classes: int, seed: int, dtype=None):
    """Return (xs (B, T, D) batch-first, ys (B,)) on the CPU for --data (NOTE [CLI data])."""
    import torch

    from ..errors import fail

    if data not in _CLI_DATA:
        raise fail(fn, f"--data one of {', '.join(_CLI_DATA)}", repr(data))
    g = torch.Generator().manual_seed(seed + 1)
    if data == "gaussian":
        if data_root is not None:
            raise fail(fn, "no --data-root with --data gaussian", repr(data_root))
        xs = torch.randn(batch, seq_len, input_size, generator=g, dtype=dtype)
        return xs, torch.randint(0, classes, (batch,), generator=g)
    from ..data import seq_mnist

    split = seq_mnist(data_root, split="train")
    n, T, D = split.xs.shape
    if (seq_len, input_size) != (T, D):
        raise fail(fn, f"--seq-len/--steps {T} and --input-size {D} for row-wise seq-mnist",
                   f"{seq_len} and {input_size}")
    if not 1 <= batch <= n:
        raise fail(fn, f"a batch size in 1..{n} for seq-mnist", batch)
    idx = torch.randperm(n, generator=g)[:batch]
    return split.xs[idx].to(dtype or split.xs.dtype), split.ys[idx]
