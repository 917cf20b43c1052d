r"""Training with masks held exactly: the loop, evaluation, checkpoints, divergence, the L2 baseline.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, V = vocabulary,
n = examples.

:func:`train` trains a model (in place) and returns a :class:`TrainResult`;
:func:`train_l2_iterative` is the paper's iterative magnitude-pruning baseline. :func:`make_model`,
:func:`evaluate` and :func:`resolve_device` live in :mod:`spectrumkit.evaluation` and are
re-exported here.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from ._io import check_output_dir, write_atomic
from .corpora import StreamedTokens
from .data import TaskData, TokenStream, batchify
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

__all__ = ["L2_DENSITIES", "OPTIMIZERS", "TrainResult", "evaluate", "make_model",
           "resolve_device", "train", "train_l2_iterative", "write_atomic"]

OPTIMIZERS = ("adam", "sgd")
#: The paper's L2 baseline anneals the density along this schedule (stopping at the target).
L2_DENSITIES = (0.8, 0.6, 0.4, 0.2, 0.1, 0.05, 0.02, 0.01)
_CHECKPOINT = "checkpoint.pt"
_CHECKPOINT_VERSION = 2  # 2: the run's identity (NOTE [Checkpoint identity])
_CHECKPOINT_KEYS = ("version", "config", "model", "optimizer", "generator", "state", "mask")


# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------


def _check_mask(fn: str, model: Model, mask: Any) -> dict[str, torch.Tensor]:
    """Every cell weight present, no unknown tensor, bool of the parameter's shape."""
    if not isinstance(mask, Mapping):
        raise fail(fn, "mask to be a dict {tensor name: bool tensor}", type(mask).__name__)
    params = model.prunable(include_bias=True)
    for name in mask:
        if name not in params:
            raise fail(fn, f"mask keys among the cell's tensors {sorted(params)}",
                       f"unknown tensor {name!r}")
    for name in model.prunable():
        if name not in mask:
            raise fail(fn, f"a mask entry for every cell weight {sorted(model.prunable())} "
                       "(all-True keeps one dense)", f"none for {name!r}")
    out = {}
    for name, m in mask.items():
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise fail(fn, f"mask[{name!r}] to be a bool tensor",
                       getattr(m, "dtype", type(m).__name__))
        if m.shape != params[name].shape:
            raise fail(fn, f"mask[{name!r}] of the parameter's shape {tuple(params[name].shape)}",
                       f"shape {tuple(m.shape)}")
        out[name] = m
    return out


def _magnitude_mask(params: Mapping[str, torch.Tensor], old: Mapping[str, torch.Tensor] | None,
                    density: float) -> dict[str, torch.Tensor]:
    """Exactly K = round(density · n) entries of largest |θ|, global over ``params``.

    Ties break by position (stable sort over the concatenation in ``params`` order); entries that
    ``old`` already prunes rank below every kept one, so the masks of a schedule are nested.
    """
    names = list(params)
    scores = []
    for k in names:
        s = params[k].detach().abs().flatten().double()
        if old is not None and k in old:
            s = torch.where(old[k].flatten(), s, torch.full_like(s, -1.0))
        scores.append(s)
    flat = torch.cat(scores)
    keep_k = round(density * flat.numel())
    order = torch.argsort(flat, descending=True, stable=True)
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[order[:keep_k]] = True
    out, i = {}, 0
    for k in names:
        n = params[k].numel()
        out[k] = keep[i:i + n].view_as(params[k])
        i += n
    return out


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



def _val_columns(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items() if k not in ("n", "tokens")}


def _train_impl(model: Model, data: TaskData, *, mask: dict[str, torch.Tensor] | None,
                epochs: int | None, steps: int | None, batch_size: int, lr: float,
                optimizer: str, clip: float | None, device: torch.device, seed: int,
                eval_every: int | None, checkpoint_dir: Path | None, progress: bool | None,
                diverge_factor: float | None, callback: Callable[[dict], None] | None,
                prune: tuple[int | None, list[float]] | None, routine: str = "train",
                identity: Mapping[str, Any] | None = None) -> TrainResult:
    """Trusted core of :func:`train` (inputs validated).

    ``prune`` = (stage_steps or None for evenly spaced stages, densities) for the L2 schedule.
    """
    dtype = _model_dtype(model)
    model.to(device)
    streamed = isinstance(data.train, StreamedTokens)  # read from disk (spectrumkit.corpora)
    train_split = data.train if streamed else _to_device(data.train, device, dtype)
    val_split = _to_device(data.val, device, dtype)
    stream = streamed or isinstance(train_split, TokenStream)
    windows = None
    if streamed:
        per_epoch = data.train.num_windows(batch_size, data.bptt)
    elif stream:
        rows = batchify(train_split.ids, batch_size)
        per_epoch = math.ceil((rows.shape[1] - 1) / data.bptt)
    else:
        per_epoch = math.ceil(len(train_split) / batch_size)
    total = steps if steps is not None else epochs * per_epoch
    prune_at: dict[int, float] = {}
    if prune is not None:
        stage, schedule = prune
        stage = stage if stage is not None else total // (len(schedule) + 1)
        prune_at = {stage * (i + 1): d for i, d in enumerate(schedule)}
        if stage < 1 or max(prune_at) >= total:
            raise fail("train_l2_iterative", f"the last of {len(schedule)} pruning stages "
                       f"(every {stage} steps) before the end of training",
                       f"{total} steps in all")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(trainable, lr=lr)
    else:
        opt = torch.optim.SGD(trainable, lr=lr)
    cell_params = model.prunable(include_bias=True)
    mask = None if mask is None else {k: m.to(device) for k, m in mask.items()}
    eval_bs = 64 if stream else 256

    def density(m: Mapping[str, torch.Tensor] | None) -> float:
        if m is None:
            return 1.0
        return sum(int(v.sum()) for v in m.values()) / sum(v.numel() for v in m.values())

    def hold(m: Mapping[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        pairs = [(cell_params[k], ~v) for k, v in m.items()]
        with torch.no_grad():
            for p, pruned in pairs:
                p.masked_fill_(pruned, 0.0)
                for buf in opt.state.get(p, {}).values():  # NOTE [Holding a mask]
                    if isinstance(buf, torch.Tensor) and buf.shape == p.shape:
                        buf.masked_fill_(pruned, 0.0)
        return pairs

    config = {"routine": routine, "initial_weights": _digest(model.state_dict()),
              "dtype": str(dtype), "model": type(model).__name__, "cell": model.cell.name,
              "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
              "data": data.description, "batch_size": batch_size, "lr": lr,
              "optimizer": optimizer, "clip": clip, "seed": seed, "eval_every": eval_every,
              "diverge_factor": diverge_factor, "mask": _digest(mask),
              "prune_at": sorted(prune_at.items()), "bptt": data.bptt,
              "identity": dict(identity or {})}  # NOTE [Checkpoint identity]
    if getattr(model, "softmax_samples", None) is not None:  # NOTE [Sampled softmax]
        config["softmax_samples"] = model.softmax_samples
    g = torch.Generator().manual_seed(seed)
    st: dict[str, Any] = {"step": 0, "pos": 0, "order": None, "state": None, "rows": [],
                          "loss_sum": 0.0, "loss_count": 0, "seconds": 0.0, "first_loss": None,
                          "status": "ok", "diverged_at": None, "metrics": None}
    ckpt_path = None if checkpoint_dir is None else checkpoint_dir / _CHECKPOINT
    if ckpt_path is not None and ckpt_path.exists():
        ck = _load_checkpoint(ckpt_path)
        if ck["config"] != config:
            raise fail("train", f"a checkpoint in {checkpoint_dir} made by the same run ({_FRESH})",
                       f"one that differs in {_identity_diff(ck['config'], config)}")
        if ck["state"].get("step", 0) > total:
            raise fail("train", f"at most {total} steps done in the checkpoint",
                       f"{ck['state']['step']} in {ckpt_path}")
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            g.set_state(ck["generator"])
            st = ck["state"]
            mask = None if ck["mask"] is None else {k: m.to(device) for k, m in ck["mask"].items()}
            for key in ("order", "state"):
                if st[key] is not None:
                    st[key] = st[key].to(device)
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise _bad_checkpoint(ckpt_path, f"inconsistent: {type(e).__name__}: {first}") from None
    pairs = hold(mask) if mask is not None else []

    def checkpoint() -> None:
        if ckpt_path is None:
            return
        now = {**st, "seconds": st["seconds"] + time.perf_counter() - t0}
        obj = {"version": _CHECKPOINT_VERSION, "config": config, "model": model.state_dict(),
               "optimizer": opt.state_dict(), "generator": g.get_state(), "state": now,
               "mask": None if mask is None else {k: v.cpu() for k, v in mask.items()}}
        write_atomic(ckpt_path, lambda f: torch.save(obj, f))

    def add_row(val: Mapping[str, float] | None, train_loss: float) -> None:
        row = {"step": st["step"], "epoch": st["step"] / per_epoch, "train_loss": train_loss,
               "density": density(mask)}
        if val is not None:
            row.update(_val_columns(val, "val"))
        row["seconds"] = st["seconds"] + time.perf_counter() - t0
        st["rows"].append(row)

    if st["metrics"] is not None and st["step"] < total:
        st["metrics"] = None  # a finished run resumed with more steps: train on
    finished = st["metrics"] is not None or st["status"] != "ok"
    t0 = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = tqdm(total=total, initial=st["step"], file=sys.stderr, disable=not show or finished,
               desc="train", unit="step", dynamic_ncols=True, leave=False)
    try:
        while not finished and st["step"] < total and st["status"] == "ok":
            if st["pos"] == 0:  # a new epoch
                windows = None
                if stream:
                    st["state"] = None
                else:
                    st["order"] = torch.randperm(len(train_split), generator=g).to(device)
            if streamed:
                if windows is None:  # a new epoch, or a resume mid-epoch
                    windows = train_split.windows(batch_size, data.bptt, start=st["pos"])
                inputs, targets = (x.to(device) for x in next(windows))
            elif stream:
                start = st["pos"] * data.bptt
                t = min(data.bptt, rows.shape[1] - 1 - start)
                inputs, targets = rows[:, start:start + t], rows[:, start + 1:start + 1 + t]
            if stream:
                # the sampled softmax draws its candidates from g (NOTE [Sampled softmax])
                loss, s_next = model.train_loss((inputs, targets), st["state"], generator=g)
                st["state"] = s_next.detach()
            else:
                idx = st["order"][st["pos"] * batch_size:(st["pos"] + 1) * batch_size]
                batch = (train_split.xs[idx], train_split.ys[idx])
                if getattr(model, "softmax_samples", None) is not None:  # copy task, sampled
                    loss = model.train_loss(batch, generator=g)[0]
                else:
                    loss = model.loss(batch)
            value = loss.detach().item()
            st["step"] += 1
            if st["first_loss"] is None:
                st["first_loss"] = value
            if not math.isfinite(value) or (diverge_factor is not None
                                            and value > diverge_factor * st["first_loss"]):
                st["status"], st["diverged_at"] = "diverged", st["step"]
                st["loss_sum"] += value
                st["loss_count"] += 1
                add_row(None, st["loss_sum"] / st["loss_count"])
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for p, pruned in pairs:
                    p.grad.masked_fill_(pruned, 0.0)
            if clip is not None:
                nn.utils.clip_grad_norm_(trainable, clip)
            opt.step()
            with torch.no_grad():
                for p, pruned in pairs:
                    p.masked_fill_(pruned, 0.0)
            if st["step"] in prune_at:
                mask = _magnitude_mask(model.prunable(), mask, prune_at[st["step"]])
                pairs = hold(mask)
            st["loss_sum"] += value
            st["loss_count"] += 1
            st["pos"] = (st["pos"] + 1) % per_epoch
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)
            if callback is not None:
                callback({"step": st["step"], "loss": value})
            due = (st["step"] % eval_every == 0) if eval_every else st["pos"] == 0
            if due or st["step"] == total:
                val = _evaluate(model, val_split, eval_bs, data.bptt or 35, device)
                add_row(val, st["loss_sum"] / st["loss_count"])
                st["loss_sum"], st["loss_count"] = 0.0, 0
                checkpoint()
        if not finished and st["status"] == "ok":
            last = st["rows"][-1]
            metrics = {k: v for k, v in last.items() if k.startswith("val_")}
            if data.test is not None:
                test = _evaluate(model, _to_device(data.test, device, dtype), eval_bs,
                                 data.bptt or 35, device)
                metrics.update(_val_columns(test, "test"))
            metrics.update(train_loss=last["train_loss"], density=density(mask))
            st["metrics"] = metrics
        if not finished:
            st["seconds"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            checkpoint()
    finally:
        bar.close()
    metrics = dict(st["metrics"] or {})
    metrics.update(steps=st["step"], epochs=st["step"] / per_epoch, train_seconds=st["seconds"])
    hist = pd.DataFrame(st["rows"])
    return TrainResult(hist, st["status"], st["diverged_at"], metrics, str(device),
                       None if mask is None else {k: v.detach().cpu() for k, v in mask.items()},
                       data.description)


def _check_real(fn: str, name: str, value: Any, *, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= low:
        raise fail(fn, f"{name} to be a finite number > {low:g}", repr(value))
    return float(value)


def _validate(fn: str, model: Any, data: Any, mask: Any, epochs: Any, steps: Any, batch_size: Any,
              lr: Any, optimizer: Any, clip: Any, device: Any, seed: Any, eval_every: Any,
              checkpoint_dir: Any, progress: Any, diverge_factor: Any, callback: Any,
              identity: Any = None) -> dict[str, Any]:
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
    lr = _check_real(fn, "lr", lr)
    check_choice(fn, "optimizer", optimizer, OPTIMIZERS)
    clip = None if clip is None else _check_real(fn, "clip", clip)
    check_seed(fn, "seed", seed)
    if eval_every is not None:
        check_positive_int(fn, "eval_every", eval_every)
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise fail(fn, "checkpoint_dir to be a path or None", type(checkpoint_dir).__name__)
    if checkpoint_dir is not None:  # NOTE [Output paths]: before any step, not at the first save
        check_output_dir(fn, checkpoint_dir, files=[_CHECKPOINT])
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
    return dict(mask=None if mask is None else _check_mask(fn, model, mask), epochs=epochs,
                steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer, clip=clip,
                device=resolve_device(device), seed=seed, eval_every=eval_every,
                checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
                progress=progress, diverge_factor=diverge_factor, callback=callback,
                identity=None if identity is None else dict(identity))


def train(model: Model, data: TaskData, *, mask: Mapping[str, torch.Tensor] | None = None,
          epochs: int | None = None, steps: int | None = None, batch_size: int = 64,
          lr: float = 1e-3, optimizer: str = "adam", clip: float | None = None,
          device: str | torch.device = "auto", seed: int, eval_every: int | None = None,
          checkpoint_dir: str | os.PathLike | None = None, progress: bool | None = None,
          diverge_factor: float | None = 10.0, callback: Callable[[dict], None] | None = None,
          identity: Mapping[str, Any] | None = None) -> TrainResult:
    r"""Train ``model`` on ``data`` in place, holding ``mask`` exactly; return a :class:`TrainResult`.

    The issue asked for the history table as the return value; a :class:`TrainResult` *carrying*
    it (``result.history``) is returned instead, on purpose: a run also has a status, a divergence
    step, final metrics and a device, and a study stores them all.

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
    v = _validate(fn, model, data, mask, epochs, steps, batch_size, lr, optimizer, clip, device,
                  seed, eval_every, checkpoint_dir, progress, diverge_factor, callback, identity)
    return _train_impl(model, data, prune=None, routine=fn, **v)


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
    next density of the schedule, keeping the exactly K = round(d · n) entries of largest |θ|
    (global over the cell's weights, ties by position, already pruned entries never return), and
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
    v = _validate(fn, model, data, None, epochs, steps, batch_size, lr, optimizer, clip, device,
                  seed, eval_every, checkpoint_dir, progress, diverge_factor, callback, identity)
    return _train_impl(model, data, prune=(stage_steps, schedule), routine=fn, **v)
