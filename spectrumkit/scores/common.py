"""Shared helpers of the score methods: batch checks, gradients, finite checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from ..errors import fail
from ..protocols import RecurrentModel


def check_inputs_match(fn: str, model: RecurrentModel, xs: torch.Tensor) -> None:
    """The batch's cell inputs (T, B, D) must have the dtype and device of the cell parameters."""
    w = next(iter(model.cell_params().values()))
    if xs.dtype != w.dtype or xs.device != w.device:
        raise fail(fn, f"a batch of the model's dtype {w.dtype} on {w.device}",
                   f"{xs.dtype} on {xs.device}")


def check_nonempty_batch(fn: str, xs: torch.Tensor) -> None:
    """The cell inputs xs (T, B, D) must hold at least one step of one sequence.

    An empty batch has no loss and no trajectory: SNIP and Foresight would score every entry 0 and
    the exact-K mask would keep the first K entries by position, so every score refuses it.
    """
    T, B = int(xs.shape[0]), int(xs.shape[1])
    if T < 1 or B < 1:
        raise fail(fn, "a non-empty batch (B >= 1 sequences of T >= 1 steps)", f"B={B}, T={T}")


@contextmanager
def grad_on(theta: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Enable autograd and ``requires_grad`` on the pruned tensors, restoring the flags after."""
    flags = {n: p.requires_grad for n, p in theta.items()}
    try:
        with torch.enable_grad():
            for p in theta.values():
                p.requires_grad_(True)
            yield
    finally:
        for n, p in theta.items():
            p.requires_grad_(flags[n])


def grads(out: torch.Tensor, theta: Mapping[str, torch.Tensor], **kw: Any
          ) -> dict[str, torch.Tensor]:
    """∂out/∂θ for every tensor of ``theta`` (zeros where ``out`` does not depend on it)."""
    if not out.requires_grad:
        return {n: torch.zeros_like(p) for n, p in theta.items()}
    gs = torch.autograd.grad(out, list(theta.values()), allow_unused=True, **kw)
    return {n: (g if g is not None else torch.zeros_like(p))
            for (n, p), g in zip(theta.items(), gs)}


def check_finite_scores(fn: str, scores: Mapping[str, torch.Tensor]) -> None:
    """Name the tensor and count the entries when a score is NaN or Inf."""
    for n, s in scores.items():
        bad = int((~torch.isfinite(s)).sum())
        if bad:
            raise fail(fn, f"finite scores in {n!r}", f"{bad} NaN/Inf entries of {s.numel()}")
