"""Shared helpers of the commands: the scoring / probing batch (NOTE [CLI data])."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# NOTE [CLI data]
# `--data gaussian`: x ~ N(0, 1) of shape (B, T, D) and labels uniform in [0, classes), drawn from a
# generator seeded --seed + 1 (x in float32, then cast to the dtype: NOTE [One draw] in init.py).
# `--data seq-mnist`: B examples of the row-wise sequential MNIST training split (T = D = 28, unit
# pixel scale), chosen without replacement by a generator seeded --seed + 1; `--data-root` points
# at the full data set, else the bundled 8k/2k split is used.

CLI_DATA = ("gaussian", "seq-mnist")


def cli_batch(fn: str, data: str, data_root: str | None, batch: int, seq_len: int,
               input_size: int, classes: int, seed: int, dtype: torch.dtype | None = None,
               batch_flag: str = "--score-batch") -> tuple[torch.Tensor, torch.Tensor]:
    """Return (xs (B, T, D) batch-first, ys (B,)) on the CPU for --data (NOTE [CLI data]);
    ``batch_flag`` names B in messages."""
    import torch

    from ..errors import fail

    if data not in CLI_DATA:
        raise fail(fn, f"--data one of {', '.join(CLI_DATA)}", repr(data))
    g = torch.Generator().manual_seed(seed + 1)
    if data == "gaussian":
        if data_root is not None:
            raise fail(fn, "no --data-root with --data gaussian", repr(data_root))
        # drawn in float32 whatever the dtype, then cast: a seed is one batch (NOTE [One draw])
        xs = torch.randn(batch, seq_len, input_size, generator=g, dtype=torch.float32)
        xs = xs.to(dtype or torch.float32)
        return xs, torch.randint(0, classes, (batch,), generator=g)
    from ..data import seq_mnist

    split = seq_mnist(data_root, split="train")
    n, T, D = split.xs.shape
    if (seq_len, input_size) != (T, D):
        raise fail(fn, f"--seq-len {T} and --input-size {D} for row-wise seq-mnist",
                   f"{seq_len} and {input_size}")
    if not 1 <= batch <= n:
        raise fail(fn, f"{batch_flag} in 1..{n} for seq-mnist", batch)
    idx = torch.randperm(n, generator=g)[:batch]
    return split.xs[idx].to(dtype or split.xs.dtype), split.ys[idx]


# NOTE [Memory estimate]
# A size that cannot fit is refused before anything is allocated, instead of the process being
# killed by the kernel. The estimate is a LOWER bound in bytes: 4 per float32 entry times
#   train:    4 × P   (weights, gradients, Adam's two moments; 2 × P for plain SGD)
#   prune:    3 × P   (weights, gradients, scores)
#   spectrum: P + B·S² (the weights and one step's Jacobians of the batch)
# where P counts every parameter of the model (the cell with its biases, the head, an embedding),
# against what the device has free (spectrumkit.errors.available_memory). A refusal is therefore
# certain; a run that passes may still need more (activations, the data) than the bound says.


def _check_memory(fn: str, what: str, params: int, copies: int, device: Any, extra: int = 0,
                  itemsize: int = 4) -> None:
    """Refuse ``copies`` × ``params`` (+ ``extra``) entries that cannot fit.

    NOTE [Memory estimate]; ``device``: a torch device or its name.
    """
    from ..errors import check_memory

    check_memory(fn, what, itemsize * (copies * params + extra), device)
