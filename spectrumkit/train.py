r"""Training with masks held exactly: the loop, checkpoints, divergence, the L2 baseline.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, V = vocabulary,
n = examples.

:func:`train` trains a model (in place) and returns a :class:`TrainResult`;
:func:`train_l2_iterative` is the paper's iterative magnitude-pruning baseline. :func:`make_model`,
:func:`evaluate` and :func:`resolve_device` live in :mod:`spectrumkit.evaluation` and are
re-exported here.

The loop (``_train_impl``) is assembled from named parts: a :class:`TrainState` (where the run
stands; what a checkpoint carries), one :class:`Batches` iterator per kind of training data
(:class:`SequenceBatches`, :class:`StreamBatches`, :class:`StreamedBatches`), a
:class:`MaskHolder` (NOTE [Holding a mask]) and a :class:`Checkpointer` (NOTE [Checkpoint
identity]).

NOTE [Holding a mask]
A mask is ``{name: bool tensor}`` over the cell's tensors (keys as ``model.prunable()``; True =
keep). Pruned entries must stay exactly 0.0 through every step. Three things do it:
1. before the first step the pruned parameters are set to 0.0;
2. after every backward pass the pruned gradient entries are set to 0.0, so Adam's first and
   second moments of those entries stay exactly 0 (they start at 0 and only ever see 0) and the
   update m̂ / (√v̂ + ε) is exactly 0 / ε = 0; gradient clipping then sees the masked gradient;
3. after every optimizer step the pruned parameters are set to 0.0 again, which covers optimizers
   that move an entry even with a zero gradient (weight decay, stale momentum).
When a mask *changes* during training (the L2 schedule), the optimizer's per-entry state (Adam's
moments, SGD's momentum) is zeroed at the newly pruned entries so that no stale momentum remains.
``masked_fill_`` is used rather than multiplication so that a pruned entry is +0.0, never −0.0.
The model's forward pass is unchanged (dense kernels with zeros), so masking costs only these
element-wise fills (``benchmarks/bench_train.py`` measures it).

NOTE [Divergence]
A run diverges when the training loss of a step is not finite, or when it exceeds
``diverge_factor`` × the loss of the first step (default 10). The second rule is needed because
a blown-up recurrent network rarely produces NaN: tanh and sigmoid bound the state, so after a
step with lr = 10 the cross-entropy of a GRU grows to tens or hundreds but stays finite. A healthy
run never climbs an order of magnitude above its starting loss (ln C for a fresh classifier, ln V
for a language model). A diverged run stops at once (the offending update is not applied),
reports ``status="diverged"`` and ``diverged_at`` (the 1-based step), and raises nothing.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, cast

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from ._io import check_output_dir, write_atomic
from .choices import OPTIMIZERS
from .corpora import StreamedTokens
from .data import (
    DEFAULT_BPTT,
    SequenceDataset,
    TaskData,
    TokenStream,
    batchify,
    bptt_window,
    bptt_window_count,
)
from .errors import SpectrumkitError, check_choice, check_positive_int, check_seed, fail
from .evaluation import (
    Model,
    _check_pair,
    _evaluate,
    _model_dtype,
    _to_device,
    evaluate,
    make_model,
    resolve_device,
)
from .masks import check_mask
from .models import LanguageModel
from .scores.ranking import k_of, top_k

__all__ = ["L2_DENSITIES", "OPTIMIZERS", "Batches", "Checkpointer", "MaskHolder",
           "SequenceBatches", "StreamBatches", "StreamedBatches", "TrainResult", "TrainState",
           "evaluate", "make_model", "resolve_device", "train", "train_l2_iterative",
           "write_atomic"]

#: The paper's L2 baseline anneals the density along this schedule (stopping at the target).
L2_DENSITIES = (0.8, 0.6, 0.4, 0.2, 0.1, 0.05, 0.02, 0.01)
_CHECKPOINT = "checkpoint.pt"
_CHECKPOINT_VERSION = 2  # 2: the run's identity (NOTE [Checkpoint identity])
_CHECKPOINT_KEYS = ("version", "config", "model", "optimizer", "generator", "state", "mask")


# --------------------------------------------------------------------------------------------------
# The state of a run
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class TrainState:
    r"""Where a run stands: everything a checkpoint carries to resume it bit-exactly.

    Attributes:
        step: optimizer steps done. pos: index of the next batch within the epoch.
        order: this epoch's permutation of the training examples (n,) (sequences), or None.
        carry: the hidden state (B, S) carried from window to window (token streams), or None.
        rows: the history rows so far (one per evaluation).
        loss_sum, loss_count: the training losses since the last row.
        seconds: wall time banked by earlier sessions (:meth:`elapsed` adds the running one).
        first_loss: the loss of step 1 (NOTE [Divergence]). status, diverged_at: as
            :class:`TrainResult`. metrics: the final numbers once the run has finished, else None.
    """

    step: int = 0
    pos: int = 0
    order: torch.Tensor | None = None
    carry: torch.Tensor | None = None
    rows: list[dict[str, float]] = field(default_factory=list)
    loss_sum: float = 0.0
    loss_count: int = 0
    seconds: float = 0.0
    first_loss: float | None = None
    status: Literal["ok", "diverged"] = "ok"
    diverged_at: int | None = None
    metrics: dict[str, float] | None = None
    started: float = field(default_factory=time.perf_counter, repr=False)

    #: checkpoint key -> attribute; "state" is the checkpoint's name for the carried hidden state
    KEYS: ClassVar[dict[str, str]] = {
        "step": "step", "pos": "pos", "order": "order", "state": "carry", "rows": "rows",
        "loss_sum": "loss_sum", "loss_count": "loss_count", "seconds": "seconds",
        "first_loss": "first_loss", "status": "status", "diverged_at": "diverged_at",
        "metrics": "metrics"}

    def to_checkpoint(self) -> dict[str, Any]:
        """The state as the checkpoint stores it, ``seconds`` counting the running session."""
        out = {key: getattr(self, attr) for key, attr in self.KEYS.items()}
        out["seconds"] = self.elapsed()
        return out

    @classmethod
    def from_checkpoint(cls, saved: Mapping[str, Any], device: torch.device) -> TrainState:
        """The state :meth:`to_checkpoint` wrote, its tensors moved to ``device``.

        A missing or unknown key is a ``KeyError`` (the caller names the file).
        """
        if set(saved) != set(cls.KEYS):
            raise KeyError(f"state keys {sorted(saved)}, expected {sorted(cls.KEYS)}")
        st = cls(**{attr: saved[key] for key, attr in cls.KEYS.items()})
        st.order = None if st.order is None else st.order.to(device)
        st.carry = None if st.carry is None else st.carry.to(device)
        return st

    def elapsed(self) -> float:
        """Seconds of training so far: the banked ones plus the running session's."""
        return self.seconds + time.perf_counter() - self.started

    def restart_clock(self) -> None:
        """Start timing the running session now."""
        self.started = time.perf_counter()

    def bank_time(self) -> None:
        """Move the running session's time into ``seconds`` and restart the clock."""
        self.seconds += time.perf_counter() - self.started
        self.restart_clock()

    def add_loss(self, value: float) -> None:
        """Count one step's training loss towards the next history row."""
        self.loss_sum += value
        self.loss_count += 1

    def add_row(self, val: Mapping[str, float] | None, per_epoch: int, density: float) -> None:
        """Append a history row: the mean training loss since the last row, ``val``'s metrics."""
        row = {"step": self.step, "epoch": self.step / per_epoch,
               "train_loss": self.loss_sum / self.loss_count, "density": density}
        if val is not None:
            row.update(_val_columns(val, "val"))
        row["seconds"] = self.elapsed()
        self.rows.append(row)

    def extend_to(self, total: int) -> bool:
        """Whether nothing is left to do in a run of ``total`` steps.

        A run that diverged or finished is done, except one that finished in fewer steps than
        ``total`` (resumed with more): it forgets its final metrics and trains on.
        """
        if self.metrics is not None and self.step < total:
            self.metrics = None
        return self.metrics is not None or self.status != "ok"


def _val_columns(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items() if k not in ("n", "tokens")}


# --------------------------------------------------------------------------------------------------
# Batches: one iterator per kind of training data
# --------------------------------------------------------------------------------------------------


class Batches(Protocol):
    """What the loop asks of its training data: the batches of an epoch and their loss.

    ``per_epoch`` batches make an epoch; :meth:`start_epoch` runs when ``st.pos`` is 0;
    :meth:`next_batch` returns batch ``st.pos``; :meth:`loss` is the training loss of a batch
    (and updates the state a stream carries). ``eval_batch_size`` is evaluation's batch size.
    """

    per_epoch: int
    eval_batch_size: int

    def start_epoch(self, st: TrainState, g: torch.Generator) -> None:
        """Prepare a new epoch (draw its order, reset the carried state)."""

    def next_batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``st.pos`` of the epoch."""

    def loss(self, model: Model, batch: tuple[torch.Tensor, torch.Tensor], st: TrainState,
             g: torch.Generator) -> torch.Tensor:
        """The training loss of ``batch``."""


class SequenceBatches:
    r"""Fixed-length sequences in memory: every epoch a fresh permutation drawn from ``g``.

    Batch ``pos`` holds the examples ``order[pos·B : (pos + 1)·B]`` (the last one may be short);
    ``per_epoch`` = ⌈n / B⌉. The loss is the model's task loss (a copy-task language model with a
    sampled softmax draws its candidates from ``g``, NOTE [Sampled softmax]).
    """

    eval_batch_size = 256

    def __init__(self, split: SequenceDataset, batch_size: int, device: torch.device) -> None:
        self.split, self.batch_size, self.device = split, batch_size, device
        self.per_epoch = math.ceil(len(split) / batch_size)

    def start_epoch(self, st: TrainState, g: torch.Generator) -> None:
        """Draw the epoch's order (n,) from ``g``."""
        st.order = torch.randperm(len(self.split), generator=g).to(self.device)

    def next_batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        """``(xs (B, T, D), ys)`` of batch ``st.pos``."""
        if st.order is None:
            raise fail("train", "an epoch order (start_epoch first)", "none")
        idx = st.order[st.pos * self.batch_size:(st.pos + 1) * self.batch_size]
        return self.split.xs[idx], self.split.ys[idx]

    def loss(self, model: Model, batch: tuple[torch.Tensor, torch.Tensor], st: TrainState,
             g: torch.Generator) -> torch.Tensor:
        """The task loss of ``batch``."""
        if isinstance(model, LanguageModel) and model.softmax_samples is not None:
            return model.train_loss(batch, generator=g)[0]
        return model.loss(batch)


class _TokenWindows:
    """The loss of a token window, with the state carried across windows from a zero start."""

    eval_batch_size = 64

    def start_epoch(self, st: TrainState, g: torch.Generator) -> None:
        """Restart the carried state from zero."""
        st.carry = None

    def loss(self, model: Model, batch: tuple[torch.Tensor, torch.Tensor], st: TrainState,
             g: torch.Generator) -> torch.Tensor:
        """Next-token loss of ``(inputs (B, t), targets (B, t))`` from ``st.carry``."""
        lm = cast(LanguageModel, model)  # a token stream pairs with a LanguageModel (_check_pair)
        # the sampled softmax draws its candidates from g (NOTE [Sampled softmax])
        loss, s_next = lm.train_loss(batch, st.carry, generator=g)
        st.carry = s_next.detach()
        return loss


class StreamBatches(_TokenWindows):
    r"""A token stream in memory, cut into B rows and read window by window (:func:`bptt_window`).

    ``per_epoch`` = ⌈(⌊n / B⌋ − 1) / bptt⌉; the state is carried from window to window and
    restarts from zero at every epoch.
    """

    def __init__(self, split: TokenStream, batch_size: int, bptt: int) -> None:
        self.rows, self.bptt = batchify(split.ids, batch_size), bptt
        self.per_epoch = bptt_window_count(self.rows.shape[1], bptt)

    def next_batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        """Window ``st.pos``: ``(inputs (B, t), targets (B, t))``."""
        return bptt_window(self.rows, st.pos, self.bptt)


class StreamedBatches(_TokenWindows):
    r"""A corpus streamed from disk (:class:`~spectrumkit.corpora.StreamedTokens`), by windows.

    The windows of :class:`StreamBatches` over the whole stream, read on demand: a reader opens at
    the first window of an epoch, or at window ``st.pos`` after a resume.
    """

    def __init__(self, split: StreamedTokens, batch_size: int, bptt: int,
                 device: torch.device) -> None:
        self.split, self.batch_size, self.bptt, self.device = split, batch_size, bptt, device
        self.per_epoch = split.num_windows(batch_size, bptt)
        self._windows: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    def start_epoch(self, st: TrainState, g: torch.Generator) -> None:
        """Restart the carried state and the reader."""
        super().start_epoch(st, g)
        self._windows = None

    def next_batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        """Window ``st.pos``, read from disk, on the device."""
        if self._windows is None:  # a new epoch, or a resume mid-epoch
            self._windows = self.split.windows(self.batch_size, self.bptt, start=st.pos)
        inputs, targets = next(self._windows)
        return inputs.to(self.device), targets.to(self.device)


def _batches_for(data: TaskData, batch_size: int, device: torch.device,
                 dtype: torch.dtype) -> Batches:
    """The batch iterator of ``data``'s training split (moved to ``device`` unless streamed)."""
    bptt = data.bptt or DEFAULT_BPTT
    if isinstance(data.train, StreamedTokens):  # read from disk (spectrumkit.corpora)
        return StreamedBatches(data.train, batch_size, bptt, device)
    split = _to_device(data.train, device, dtype)
    if isinstance(split, TokenStream):
        return StreamBatches(split, batch_size, bptt)
    return SequenceBatches(split, batch_size, device)


# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------


class MaskHolder:
    r"""Holds a mask on a model's cell tensors through training (NOTE [Holding a mask]).

    :meth:`hold` sets the pruned parameters to 0.0 and zeroes the optimizer's per-entry state at
    them, so a mask that changes leaves no stale momentum; :meth:`mask_grads` runs after every
    backward pass, :meth:`mask_params` after every optimizer step. Without a mask (``mask`` is
    None) the three do nothing and :meth:`density` is 1.0.
    """

    def __init__(self, params: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer
                 ) -> None:
        self._params, self._opt = dict(params), optimizer
        self.mask: dict[str, torch.Tensor] | None = None
        self._pruned: list[tuple[torch.Tensor, torch.Tensor]] = []

    @torch.no_grad()
    def hold(self, mask: Mapping[str, torch.Tensor]) -> None:
        """Hold ``mask`` ``{name: bool tensor}`` (True = keep) from now on."""
        self.mask = dict(mask)
        self._pruned = [(self._params[k], ~v) for k, v in mask.items()]
        for p, pruned in self._pruned:
            p.masked_fill_(pruned, 0.0)
            for buf in self._opt.state.get(p, {}).values():
                if isinstance(buf, torch.Tensor) and buf.shape == p.shape:
                    buf.masked_fill_(pruned, 0.0)

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Set the gradient of every pruned entry to 0.0."""
        for p, pruned in self._pruned:
            if p.grad is not None:
                p.grad.masked_fill_(pruned, 0.0)

    @torch.no_grad()
    def mask_params(self) -> None:
        """Set every pruned parameter to 0.0."""
        for p, pruned in self._pruned:
            p.masked_fill_(pruned, 0.0)

    def density(self) -> float:
        """Kept fraction of the masked entries; 1.0 without a mask."""
        if self.mask is None:
            return 1.0
        return (sum(int(v.sum()) for v in self.mask.values())
                / sum(v.numel() for v in self.mask.values()))


def _magnitude_mask(params: Mapping[str, torch.Tensor], old: Mapping[str, torch.Tensor] | None,
                    density: float) -> dict[str, torch.Tensor]:
    r"""Exactly K = ⌊density · P + ½⌋ entries of largest |θ|, global over ``params``.

    The ranking is NOTE [Exact-K ranking] (:func:`~spectrumkit.scores.ranking.top_k`) over the
    concatenation of the flattened tensors in ``params`` order, so ties break by that position,
    lowest first. Entries that ``old`` already prunes score −1, below every |θ| ≥ 0, so the masks
    of a schedule are nested.
    """
    names = list(params)
    scores = []
    for k in names:
        s = params[k].detach().abs().flatten().double()
        if old is not None and k in old:
            s = torch.where(old[k].flatten(), s, torch.full_like(s, -1.0))
        scores.append(s)
    flat = torch.cat(scores)
    keep = top_k(flat, k_of(density, flat.numel()))
    parts = keep.split([params[k].numel() for k in names])
    return {k: part.view_as(params[k]) for k, part in zip(names, parts)}


def _prune_steps(prune: tuple[int | None, list[float]] | None, total: int) -> dict[int, float]:
    """``{step: density}`` of the L2 schedule ``prune`` = (stage_steps or None, densities)."""
    if prune is None:
        return {}
    stage, schedule = prune
    stage = stage if stage is not None else total // (len(schedule) + 1)
    prune_at = {stage * (i + 1): d for i, d in enumerate(schedule)}
    if stage < 1 or max(prune_at) >= total:
        raise fail("train_l2_iterative", f"the last of {len(schedule)} pruning stages "
                   f"(every {stage} steps) before the end of training", f"{total} steps in all")
    return prune_at


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------


def _digest(mask: Mapping[str, torch.Tensor] | None) -> str | None:
    """SHA-256 over the sorted names and the bytes of the tensors (a mask or a state dict)."""
    if mask is None:
        return None
    h = hashlib.sha256()
    for k in sorted(mask):
        h.update(k.encode())
        t = mask[k].detach().cpu().contiguous()
        h.update(str(t.dtype).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# NOTE [Checkpoint identity]
# A checkpoint is resumed only by the run that wrote it. Its "config" is the run's identity:
#   routine         train or train_l2_iterative (the method of training)
#   initial_weights SHA-256 of the model's state dict BEFORE training: the init scheme, the seed,
#                   the sizes and the cell, whatever made the model (make_model, a user's model)
#   dtype, model, cell, shapes
#   data            the data's description (the task, its source, its sizes)
#   mask            SHA-256 of the mask held (so the pruning method, sparsity and score batch)
#   batch_size, lr, optimizer, clip, seed, eval_every, diverge_factor, prune_at, bptt
#   + the caller's `identity` fields (the CLI passes its flags: init, method, sparsity, ...).
# Only epochs / steps may differ (to train on). Any other difference is refused with one line
# naming the fields, never loaded over the new model. The CLI's --no-resume starts afresh.
_FRESH = "start afresh with --no-resume on the command line, or delete it"


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else ""


def _identity_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The differing fields, the caller's first, with both values where they are short."""
    out = []
    old_run, new_run = old.get("identity") or {}, new.get("identity") or {}
    pairs = [(k, old_run.get(k), new_run.get(k)) for k in sorted(set(old_run) | set(new_run))]
    pairs += [(k, old.get(k), new.get(k)) for k in new if k != "identity"]
    for k, a, b in pairs:
        if a != b:
            ka, kb = _short(a), _short(b)
            out.append(f"{k} ({ka} in the checkpoint, {kb} now)" if ka and kb else k)
    return ", ".join(out)


def _bad_checkpoint(path: Path, why: str) -> SpectrumkitError:
    why = " ".join(why.split())
    return fail("train", f"a checkpoint written by spectrumkit's train ({_FRESH})",
                f"{path} ({why[:160]}{'…' if len(why) > 160 else ''})")


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """torch.load(weights_only=True) and a structure check; every failure is one line."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same error for the user
        first = (str(e).strip().splitlines() or [""])[0]
        raise _bad_checkpoint(path, f"unreadable: {type(e).__name__}: {first}") from None
    if not isinstance(ck, dict) or not all(k in ck for k in _CHECKPOINT_KEYS):
        got = type(ck).__name__ if not isinstance(ck, dict) else \
            f"a dict without {', '.join(k for k in _CHECKPOINT_KEYS if k not in ck)}"
        raise _bad_checkpoint(path, f"not a spectrumkit checkpoint: {got}")
    if ck["version"] != _CHECKPOINT_VERSION:
        raise _bad_checkpoint(path, f"format version {ck['version']!r}, this spectrumkit "
                              f"reads version {_CHECKPOINT_VERSION}")
    if not isinstance(ck["config"], dict) or not isinstance(ck["state"], dict):
        raise _bad_checkpoint(path, "not a spectrumkit checkpoint: config or state not a dict")
    return ck



def _run_identity(model: Model, data: TaskData, mask: Mapping[str, torch.Tensor] | None,
                  o: _Settings, prune_at: Mapping[int, float], routine: str) -> dict[str, Any]:
    """The run's identity (NOTE [Checkpoint identity]), taken before the first step."""
    config = {"routine": routine, "initial_weights": _digest(model.state_dict()),
              "dtype": str(_model_dtype(model)), "model": type(model).__name__,
              "cell": model.cell.name,
              "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
              "data": data.description, "batch_size": o.batch_size, "lr": o.lr,
              "optimizer": o.optimizer, "clip": o.clip, "seed": o.seed,
              "eval_every": o.eval_every, "diverge_factor": o.diverge_factor,
              "mask": _digest(mask), "prune_at": sorted(prune_at.items()), "bptt": data.bptt,
              "identity": dict(o.identity or {})}
    if isinstance(model, LanguageModel) and model.softmax_samples is not None:
        config["softmax_samples"] = model.softmax_samples  # NOTE [Sampled softmax]
    return config


class Checkpointer:
    r"""Saves one run's checkpoint atomically and resumes from it (NOTE [Checkpoint identity]).

    The file is ``folder/checkpoint.pt``: the run's identity, the model, the optimizer, the
    generator, the :class:`TrainState` and the mask held. ``folder`` None makes both a no-op.
    """

    def __init__(self, folder: Path | None, identity: dict[str, Any]) -> None:
        self.folder, self.identity = folder, identity
        self.path = None if folder is None else folder / _CHECKPOINT

    def save(self, model: nn.Module, opt: torch.optim.Optimizer, g: torch.Generator,
             st: TrainState, mask: Mapping[str, torch.Tensor] | None) -> None:
        """Write the checkpoint atomically (NOTE [Atomic writes])."""
        if self.path is None:
            return
        obj = {"version": _CHECKPOINT_VERSION, "config": self.identity,
               "model": model.state_dict(), "optimizer": opt.state_dict(),
               "generator": g.get_state(), "state": st.to_checkpoint(),
               "mask": None if mask is None else {k: v.cpu() for k, v in mask.items()}}
        write_atomic(self.path, lambda f: torch.save(obj, f))

    def resume(self, model: nn.Module, opt: torch.optim.Optimizer, g: torch.Generator,
               total: int, device: torch.device
               ) -> tuple[TrainState, dict[str, torch.Tensor] | None] | None:
        """Load the checkpoint into ``model``, ``opt`` and ``g``; None when there is none.

        Returns the saved :class:`TrainState` and mask (on ``device``). A checkpoint of another
        run, one past ``total`` steps, or a file that is not such a checkpoint is one line.
        """
        if self.path is None or not self.path.exists():
            return None
        ck = _load_checkpoint(self.path)
        if ck["config"] != self.identity:
            raise fail("train", f"a checkpoint in {self.folder} made by the same run ({_FRESH})",
                       f"one that differs in {_identity_diff(ck['config'], self.identity)}")
        if ck["state"].get("step", 0) > total:
            raise fail("train", f"at most {total} steps done in the checkpoint",
                       f"{ck['state']['step']} in {self.path}")
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            g.set_state(ck["generator"])
            st = TrainState.from_checkpoint(ck["state"], device)
            mask = None if ck["mask"] is None else {k: m.to(device) for k, m in ck["mask"].items()}
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise _bad_checkpoint(self.path, f"inconsistent: {type(e).__name__}: {first}"
                                  ) from None
        return st, mask


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrainResult:
    r"""What :func:`train` returns.

    Attributes:
        history: one row per evaluation with columns ``step``, ``epoch`` (fractional),
            ``train_loss`` (mean over the steps since the previous row), ``density`` (kept
            fraction of the pruned set; 1.0 when dense), the validation metric(s) of the task
            (``val_loss`` and ``val_error_pct`` / ``val_loss`` and ``val_ppl`` / ``val_mse``), and
            ``seconds`` (wall time since the start of training, evaluation included, carried
            across checkpoint resumes).
        status: ``"ok"`` or ``"diverged"`` (NOTE [Divergence]).
        diverged_at: the 1-based step whose loss diverged, or None.
        metrics: final numbers: the ``val_*`` and, when the task has a test split, ``test_*``
            metrics, ``train_loss`` (last row), ``density``, ``steps``, ``epochs`` and
            ``train_seconds``. A diverged run has only ``steps``, ``epochs`` and
            ``train_seconds``.
        device: where it ran, e.g. ``"cpu"`` or ``"cuda:0"``.
        mask: the mask held at the end (changes under :func:`train_l2_iterative`), or None.
        description: the data's description, for every output of the run.
    """

    history: pd.DataFrame
    status: Literal["ok", "diverged"]
    diverged_at: int | None
    metrics: dict[str, float]
    device: str
    mask: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    description: str = ""



@dataclass(frozen=True)
class _Settings:
    """The validated settings of a run: :func:`train`'s arguments but model, data and mask."""

    epochs: int | None
    steps: int | None
    batch_size: int
    lr: float
    optimizer: str
    clip: float | None
    device: torch.device
    seed: int
    eval_every: int | None
    checkpoint_dir: Path | None
    progress: bool | None
    diverge_factor: float | None
    callback: Callable[[dict], None] | None
    identity: dict[str, Any] | None


def _make_optimizer(name: str, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """``adam``: torch Adam with default betas; ``sgd``: plain SGD without momentum."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


def _update(opt: torch.optim.Optimizer, loss: torch.Tensor, holder: MaskHolder,
            trainable: list[nn.Parameter], clip: float | None) -> None:
    """One optimizer step on ``loss`` with the mask held: backward, mask, clip, step, re-mask."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    holder.mask_grads()
    if clip is not None:
        nn.utils.clip_grad_norm_(trainable, clip)
    opt.step()
    holder.mask_params()


def _diverges(value: float, first: float, factor: float | None) -> bool:
    """NOTE [Divergence]: a non-finite loss, or one above ``factor`` × the first step's."""
    return not math.isfinite(value) or (factor is not None and value > factor * first)


def _eval_due(st: TrainState, eval_every: int | None, total: int) -> bool:
    """Evaluate every ``eval_every`` steps (None: at the end of every epoch) and at the end."""
    due = (st.step % eval_every == 0) if eval_every else st.pos == 0
    return due or st.step == total


def _progress_bar(progress: bool | None, total: int, initial: int, finished: bool) -> tqdm:
    show = sys.stderr.isatty() if progress is None else bool(progress)
    return tqdm(total=total, initial=initial, file=sys.stderr, disable=not show or finished,
                desc="train", unit="step", dynamic_ncols=True, leave=False)


def _final_metrics(st: TrainState, test: Mapping[str, float] | None,
                   density: float) -> dict[str, float]:
    """The last row's validation metrics, the test split's, the last train loss, the density."""
    last = st.rows[-1]
    metrics = {k: v for k, v in last.items() if k.startswith("val_")}
    if test is not None:
        metrics.update(_val_columns(test, "test"))
    metrics.update(train_loss=last["train_loss"], density=density)
    return metrics


def _train_impl(model: Model, data: TaskData, mask: dict[str, torch.Tensor] | None,
                o: _Settings, *, prune: tuple[int | None, list[float]] | None,
                routine: str) -> TrainResult:
    """Trusted core of :func:`train` and :func:`train_l2_iterative` (inputs validated).

    ``prune`` = (stage_steps or None for evenly spaced stages, densities) for the L2 schedule.
    """
    dtype, device = _model_dtype(model), o.device
    model.to(device)
    batches = _batches_for(data, o.batch_size, device, dtype)
    score = partial(_evaluate, model, batch_size=batches.eval_batch_size,
                    bptt=data.bptt or DEFAULT_BPTT, device=device)
    val_split = _to_device(data.val, device, dtype)
    total = o.steps if o.steps is not None else cast(int, o.epochs) * batches.per_epoch
    prune_at = _prune_steps(prune, total)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(o.optimizer, trainable, o.lr)
    mask = None if mask is None else {k: m.to(device) for k, m in mask.items()}
    ckpt = Checkpointer(o.checkpoint_dir, _run_identity(model, data, mask, o, prune_at, routine))
    g = torch.Generator().manual_seed(o.seed)
    st, mask = ckpt.resume(model, opt, g, total, device) or (TrainState(), mask)
    holder = MaskHolder(model.prunable(include_bias=True), opt)
    if mask is not None:
        holder.hold(mask)
    finished = st.extend_to(total)
    st.restart_clock()
    bar = _progress_bar(o.progress, total, st.step, finished)
    try:
        while not finished and st.step < total and st.status == "ok":
            if st.pos == 0:  # a new epoch
                batches.start_epoch(st, g)
            loss = batches.loss(model, batches.next_batch(st), st, g)
            value = loss.detach().item()
            st.step += 1
            if st.first_loss is None:
                st.first_loss = value
            if _diverges(value, st.first_loss, o.diverge_factor):  # the update is not applied
                st.status, st.diverged_at = "diverged", st.step
                st.add_loss(value)
                st.add_row(None, batches.per_epoch, holder.density())
                break
            _update(opt, loss, holder, trainable, o.clip)
            if st.step in prune_at:  # the L2 schedule prunes further
                holder.hold(_magnitude_mask(model.prunable(), holder.mask, prune_at[st.step]))
            st.add_loss(value)
            st.pos = (st.pos + 1) % batches.per_epoch
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)
            if o.callback is not None:
                o.callback({"step": st.step, "loss": value})
            if _eval_due(st, o.eval_every, total):
                st.add_row(score(val_split), batches.per_epoch, holder.density())
                st.loss_sum, st.loss_count = 0.0, 0
                ckpt.save(model, opt, g, st, holder.mask)
        if not finished:
            if st.status == "ok":
                test = None if data.test is None else score(_to_device(data.test, device, dtype))
                st.metrics = _final_metrics(st, test, holder.density())
            st.bank_time()
            ckpt.save(model, opt, g, st, holder.mask)
    finally:
        bar.close()
    return _result(st, batches.per_epoch, device, holder.mask, data.description)


def _result(st: TrainState, per_epoch: int, device: torch.device,
            mask: Mapping[str, torch.Tensor] | None, description: str) -> TrainResult:
    metrics = dict(st.metrics or {})
    metrics.update(steps=st.step, epochs=st.step / per_epoch, train_seconds=st.seconds)
    return TrainResult(pd.DataFrame(st.rows), st.status, st.diverged_at, metrics, str(device),
                       None if mask is None else {k: v.detach().cpu() for k, v in mask.items()},
                       description)


# --------------------------------------------------------------------------------------------------
# Validation and the public functions
# --------------------------------------------------------------------------------------------------


def _check_real(fn: str, name: str, value: Any, *, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= low:
        raise fail(fn, f"{name} to be a finite number > {low:g}", repr(value))
    return float(value)



def _check_model_data(fn: str, model: Any, data: Any) -> None:
    """A TaskData, a model holding data, and a model that can score the splits."""
    if not isinstance(data, TaskData):
        raise fail(fn, "data to be a TaskData from load_task", type(data).__name__)
    if isinstance(model, nn.Module):
        meta = [k for k, p in model.named_parameters() if p.is_meta]
        if meta:
            raise fail(fn, "a model whose parameters hold data (not on the meta device)",
                       f"{len(meta)} parameters on meta, e.g. {meta[0]}")
    if isinstance(data.train, StreamedTokens):  # a streamed corpus: check what is known
        _check_pair(fn, model, data.val)  # a LanguageModel
        if len(data.train.vocab) > model.vocab_size:
            raise fail(fn, f"a model vocab_size of at least the corpus's {len(data.train.vocab)}",
                       model.vocab_size)
    else:
        _check_pair(fn, model, data.train)
        _check_pair(fn, model, data.val)


def _check_length(fn: str, data: TaskData, epochs: Any, steps: Any, batch_size: Any) -> None:
    """Exactly one of epochs / steps, a batch size, and a stream long enough for it."""
    if (epochs is None) == (steps is None):
        raise fail(fn, "exactly one of epochs= or steps=", "both" if epochs is not None
                   else "neither")
    if epochs is not None:
        check_positive_int(fn, "epochs", epochs)
    else:
        check_positive_int(fn, "steps", steps)
    check_positive_int(fn, "batch_size", batch_size)
    if isinstance(data.train, (TokenStream, StreamedTokens)) \
            and len(data.train) < 2 * batch_size + 1:
        raise fail(fn, f"a training stream of more than {2 * batch_size} tokens for "
                   f"batch_size={batch_size}", f"{len(data.train)} tokens")


def _check_checkpoint_dir(fn: str, checkpoint_dir: Any) -> Path | None:
    if checkpoint_dir is None:
        return None
    if not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise fail(fn, "checkpoint_dir to be a path or None", type(checkpoint_dir).__name__)
    # NOTE [Output paths]: before any step, not at the first save
    check_output_dir(fn, checkpoint_dir, files=[_CHECKPOINT])
    return Path(checkpoint_dir)


def _check_hooks(fn: str, identity: Any, progress: Any, diverge_factor: Any,
                 callback: Any) -> float | None:
    """identity, progress and callback; returns ``diverge_factor`` as a float or None."""
    if identity is not None and not isinstance(identity, Mapping):
        raise fail(fn, "identity to be a dict of the run's defining settings or None",
                   type(identity).__name__)
    if progress is not None and not isinstance(progress, bool):
        raise fail(fn, "progress to be None (on when stderr is a terminal), True or False",
                   repr(progress))
    if diverge_factor is not None:
        diverge_factor = _check_real(fn, "diverge_factor", diverge_factor, low=1.0)
    if callback is not None and not callable(callback):
        raise fail(fn, "callback to be callable or None", type(callback).__name__)
    return diverge_factor


def _check_train_mask(fn: str, model: Model, mask: Any) -> dict[str, torch.Tensor]:
    """Every cell weight present, no unknown tensor, bool of the parameter's shape."""
    params = model.prunable(include_bias=True)
    return check_mask(fn, mask, {k: tuple(p.shape) for k, p in params.items()},
                      what="cell's tensors", require=list(model.prunable()))


def _validate(fn: str, model: Any, data: Any, mask: Any, *, epochs: Any, steps: Any,
              batch_size: Any, lr: Any, optimizer: Any, clip: Any, device: Any, seed: Any,
              eval_every: Any, checkpoint_dir: Any, progress: Any, diverge_factor: Any,
              callback: Any, identity: Any) -> tuple[dict[str, torch.Tensor] | None, _Settings]:
    """Check every argument of :func:`train`, in order; return the mask and the settings."""
    _check_model_data(fn, model, data)
    _check_length(fn, data, epochs, steps, batch_size)
    lr = _check_real(fn, "lr", lr)
    check_choice(fn, "optimizer", optimizer, OPTIMIZERS)
    clip = None if clip is None else _check_real(fn, "clip", clip)
    check_seed(fn, "seed", seed)
    if eval_every is not None:
        check_positive_int(fn, "eval_every", eval_every)
    folder = _check_checkpoint_dir(fn, checkpoint_dir)
    diverge_factor = _check_hooks(fn, identity, progress, diverge_factor, callback)
    mask = None if mask is None else _check_train_mask(fn, model, mask)
    return mask, _Settings(epochs, steps, batch_size, lr, optimizer, clip, resolve_device(device),
                           seed, eval_every, folder, progress, diverge_factor, callback,
                           None if identity is None else dict(identity))


def train(model: Model, data: TaskData, *, mask: Mapping[str, torch.Tensor] | None = None,
          epochs: int | None = None, steps: int | None = None, batch_size: int = 64,
          lr: float = 1e-3, optimizer: str = "adam", clip: float | None = None,
          device: str | torch.device = "auto", seed: int, eval_every: int | None = None,
          checkpoint_dir: str | os.PathLike | None = None, progress: bool | None = None,
          diverge_factor: float | None = 10.0, callback: Callable[[dict], None] | None = None,
          identity: Mapping[str, Any] | None = None) -> TrainResult:
    r"""Train ``model`` on ``data`` in place, holding ``mask`` exactly; return a TrainResult.

    The history table comes back inside a :class:`TrainResult` (``result.history``): a run also
    has a status, a divergence step, final metrics and a device, and a study stores them all.

    Each step draws a minibatch, computes the task loss (cross-entropy on the final state, MSE, or
    next-token cross-entropy), back-propagates, masks the gradient, optionally clips its global
    norm to ``clip``, takes one ``optimizer`` step (``adam``: torch Adam with default betas;
    ``sgd``: plain SGD without momentum) and re-masks the parameters (NOTE [Holding a mask]).

    Data order: each epoch is a fresh permutation of the training examples drawn from a CPU
    generator seeded with ``seed`` (the last batch may be short); a token stream is cut into
    ``batch_size`` rows read in windows of ``data.bptt`` tokens, the state carried across windows
    and reset to zero at every epoch. The model's initialization is the model's business
    (:func:`make_model`'s seed), so the same model, data and ``seed`` give the same history on the
    CPU, except the ``seconds`` column (wall time).

    Args:
        model: from :func:`make_model` (or a matching model); trained in place, moved to
            ``device``.
        data: a :class:`~spectrumkit.data.TaskData`.
        mask: ``{name: bool tensor}`` over the cell's tensors (True = keep), keys as
            ``model.prunable()``: every weight tensor must be present, biases may be; an unknown
            tensor, a wrong shape or a non-bool tensor is an error naming it.
        epochs / steps: exactly one: passes over the training split, or optimizer steps (epochs
            repeat as needed).
        batch_size: B. lr: learning rate (> 0). clip: max global gradient norm or None.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:K"``;
            ``"cuda"`` without CUDA is an error. Data is moved to the device once.
        seed: seeds the data order.
        eval_every: evaluate the validation split every this many steps; None = at the end of
            every epoch. The last step is always evaluated. Each evaluation adds a history row.
        checkpoint_dir: save a checkpoint (``checkpoint.pt``: model, optimizer, data order and
            generator, history, mask; written atomically) at every evaluation and at the end, and
            resume from it when present. A resumed run ends with the same weights and history as
            an uninterrupted one. The checkpoint must come from the same run (NOTE [Checkpoint
            identity]: the initial weights, hence init, seed and sizes; dtype, data, mask,
            batch size, lr, optimizer, clip, seed, eval_every, routine, ``identity``); only
            ``epochs`` or ``steps`` may grow, to train on. A mismatch, or a file that is not such
            a checkpoint, is a one-line error naming the fields or the file. Loaded with
            ``torch.load(weights_only=True)``. The folder is checked up front (NOTE [Output
            paths]).
        progress: a tqdm bar on stderr; None = only when stderr is a terminal.
        diverge_factor: see NOTE [Divergence]; None keeps only the non-finite rule.
        callback: called after every step with ``{"step", "loss"}``; its exceptions propagate.
        identity: JSON-able settings that also define the run (e.g. the CLI's ``init``,
            ``method``, ``sparsity``), stored in the checkpoint and compared on resume.

    Returns:
        :class:`TrainResult`. Divergence is a status, never an exception.
    """
    fn = "train"
    checked, o = _validate(fn, model, data, mask, epochs=epochs, steps=steps,
                           batch_size=batch_size, lr=lr, optimizer=optimizer, clip=clip,
                           device=device, seed=seed, eval_every=eval_every,
                           checkpoint_dir=checkpoint_dir, progress=progress,
                           diverge_factor=diverge_factor, callback=callback, identity=identity)
    return _train_impl(model, data, checked, o, prune=None, routine=fn)


def train_l2_iterative(model: Model, data: TaskData, *, density: float,
                       stage_steps: int | None = None,
                       densities: tuple[float, ...] = L2_DENSITIES, epochs: int | None = None,
                       steps: int | None = None, batch_size: int = 64, lr: float = 1e-3,
                       optimizer: str = "adam", clip: float | None = None,
                       device: str | torch.device = "auto", seed: int,
                       eval_every: int | None = None,
                       checkpoint_dir: str | os.PathLike | None = None,
                       progress: bool | None = None, diverge_factor: float | None = 10.0,
                       callback: Callable[[dict], None] | None = None,
                       identity: Mapping[str, Any] | None = None) -> TrainResult:
    r"""The paper's L2 baseline: iterative magnitude prune-retrain with an annealed density.

    Training starts dense. After every ``stage_steps`` steps the cell's weights are pruned to the
    next density of the schedule, keeping exactly K = ⌊d · P + ½⌋ entries of largest |θ| (NOTE
    [Exact-K ranking]: global over the cell's weights, ties by position, already pruned entries
    never return), and
    training continues with that mask held (NOTE [Holding a mask]). The schedule is ``densities``
    (default 0.8, 0.6, 0.4, 0.2, 0.1, 0.05, 0.02, 0.01) up to and including the first entry ≤
    ``density``, which is replaced by ``density`` itself; e.g. density 0.05 gives 0.8, 0.6, 0.4,
    0.2, 0.1, 0.05. The last pruning must come before the last step (training continues at the
    target density for the remaining steps). ``stage_steps=None`` spaces the stages evenly:
    k = ⌊total steps / (stages + 1)⌋, so the final density trains as long as every stage.

    The other arguments are those of :func:`train`. ``result.mask`` is the final mask and the
    history's ``density`` column shows the schedule.
    """
    fn = "train_l2_iterative"
    if not isinstance(density, (int, float)) or isinstance(density, bool) \
            or not 0 < density <= 1:
        raise fail(fn, "density in (0, 1]", repr(density))
    if stage_steps is not None:
        check_positive_int(fn, "stage_steps", stage_steps)
    ds = tuple(densities) if isinstance(densities, (tuple, list)) else ()
    if not ds or any(isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 < d <= 1
                     for d in ds) or any(a <= b for a, b in zip(ds, ds[1:])):
        raise fail(fn, "densities: a decreasing sequence in (0, 1]", repr(densities))
    # 1e-9: a density computed as 1 - 0.9 = 0.0999... must not add a stage after 0.1
    schedule = [d for d in ds if d > density + 1e-9] + [float(density)]
    _, o = _validate(fn, model, data, None, epochs=epochs, steps=steps, batch_size=batch_size,
                     lr=lr, optimizer=optimizer, clip=clip, device=device, seed=seed,
                     eval_every=eval_every, checkpoint_dir=checkpoint_dir, progress=progress,
                     diverge_factor=diverge_factor, callback=callback, identity=identity)
    return _train_impl(model, data, None, o, prune=(stage_steps, schedule), routine=fn)
