r"""A training run's resumable state and its checkpoint file (NOTE [Checkpoint identity]).

Legend: B = batch, S = state size, n = examples.

:class:`TrainState` is where a run stands (step, epoch position, data order, carried state, history
rows, timing, status); :class:`Checkpointer` writes it atomically, with the model, the optimizer,
the data-order generator and the mask, into ``folder/checkpoint.pt``, and resumes only the run that
wrote it. :func:`spectrumkit.training.train` uses both.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import ValidationError
from torch import nn

from ._formats import CheckpointState, first_error
from ._io import describe_read_error, open_regular, write_atomic
from .errors import SpectrumkitError, fail
from .masks import check_mask

__all__ = ["CHECKPOINT_FILE", "Checkpointer", "TrainState", "digest", "metric_columns"]

#: The checkpoint's file name inside a run's checkpoint folder.
CHECKPOINT_FILE = "checkpoint.pt"
_CHECKPOINT_VERSION = 2  # 2: the run's identity (NOTE [Checkpoint identity])
_CHECKPOINT_KEYS = ("version", "config", "model", "optimizer", "generator", "state", "mask")


def metric_columns(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    """``{prefix_name: value}`` of an evaluation's metrics, without its counts (n, tokens)."""
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items() if k not in ("n", "tokens")}


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
            row.update(metric_columns(val, "val"))
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



def digest(mask: Mapping[str, torch.Tensor] | None) -> str | None:
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
        with open_regular(path) as f:  # NOTE [Reading back]: never a FIFO's blocking read
            ck = torch.load(f, map_location="cpu", weights_only=True)
    except OSError as e:
        raise _bad_checkpoint(path, f"unreadable: {describe_read_error(e)}") from None
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



# NOTE [Checkpoint payload]
# The identity says which run wrote a checkpoint; the payload must then be that run's, field by
# field, before anything is loaded: the training state by type (CheckpointState) and by range
# (step <= the total, pos within an epoch of per_epoch batches, order a permutation held as an
# integer tensor, the carried state a tensor of the model's dtype), and the mask by keys, shapes
# and dtype (masks.check_mask over the prunable tensors) and by content: until the first pruning
# step of the run's schedule has passed, the mask held is the one the run started with, so its
# digest must be the identity's "mask" (a dense mask swapped into a sparse run's checkpoint, or
# none at all, is refused). Each mismatch is one line naming the field.


def _check_tensor_fields(saved: Mapping[str, Any], dtype: torch.dtype) -> str | None:
    order, carry = saved["order"], saved["state"]
    if order is not None:
        if not isinstance(order, torch.Tensor) or order.dtype != torch.int64 or order.dim() != 1:
            return (f"state.order: expected None or a 1-D int64 tensor, got "
                    f"{getattr(order, 'dtype', type(order).__name__)}")
        if not torch.equal(order.sort().values, torch.arange(order.numel())):
            return "state.order: not a permutation"
    if carry is not None and (not isinstance(carry, torch.Tensor) or carry.dtype != dtype
                              or carry.dim() < 1):
        return (f"state.state: expected None or a tensor of dtype {dtype}, got "
                f"{getattr(carry, 'dtype', type(carry).__name__)}")
    return None


def _check_state(saved: Any, total: int, per_epoch: int, dtype: torch.dtype) -> str | None:
    """Why the checkpoint's ``state`` is not a state of this run (None if it is)."""
    if not isinstance(saved, Mapping):
        return f"state: expected a dict, got {type(saved).__name__}"
    try:
        CheckpointState.model_validate(dict(saved))
    except ValidationError as e:
        return f"state.{first_error(e)}"
    if not saved["pos"] < per_epoch:
        return f"state.pos: expected below {per_epoch} (batches per epoch), got {saved['pos']}"
    if saved["step"] > total:
        return f"state.step: expected at most {total} steps done, got {saved['step']}"
    return _check_tensor_fields(saved, dtype)


def _check_mask_payload(saved: Any, identity: Mapping[str, Any], step: int,
                        shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """Why the checkpoint's mask is not the one this run holds at ``step`` (None if it is)."""
    pruned = any(at <= step for at, _ in identity.get("prune_at") or [])
    if saved is None:
        return None if identity.get("mask") is None and not pruned else \
            "mask: none, but the run holds one"
    try:
        check_mask("mask", saved, shapes, what="prunable tensors")
    except SpectrumkitError as e:
        return str(e).removeprefix("mask: expected ")
    if not pruned and digest(saved) != identity.get("mask"):
        return "mask: its digest differs from the run's (not the mask the run started with)"
    return None


class Checkpointer:
    r"""Saves one run's checkpoint atomically and resumes from it (NOTE [Checkpoint identity]).

    The file is ``folder/checkpoint.pt``: the run's identity, the model, the optimizer, the
    generator, the :class:`TrainState` and the mask held. ``folder`` None makes both a no-op.
    """

    def __init__(self, folder: Path | None, identity: dict[str, Any]) -> None:
        self.folder, self.identity = folder, identity
        self.path = None if folder is None else folder / CHECKPOINT_FILE

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
               total: int, device: torch.device, *, per_epoch: int,
               shapes: Mapping[str, tuple[int, ...]]
               ) -> tuple[TrainState, dict[str, torch.Tensor] | None] | None:
        """Load the checkpoint into ``model``, ``opt`` and ``g``; None when there is none.

        Returns the saved :class:`TrainState` and mask (on ``device``). A checkpoint of another
        run, one past ``total`` steps, a payload that is not this run's (NOTE [Checkpoint
        payload]: ``per_epoch`` batches per epoch, ``shapes`` of the prunable tensors), or a file
        that is not such a checkpoint is one line.
        """
        if self.path is None or not os.path.lexists(self.path):
            return None
        ck = _load_checkpoint(self.path)
        if ck["config"] != self.identity:
            raise fail("train", f"a checkpoint in {self.folder} made by the same run ({_FRESH})",
                       f"one that differs in {_identity_diff(ck['config'], self.identity)}")
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()),
                     torch.float32)
        why = _check_state(ck["state"], total, per_epoch, dtype) or \
            _check_mask_payload(ck["mask"], self.identity, ck["state"]["step"], shapes)
        if why is not None:
            raise _bad_checkpoint(self.path, why)
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
