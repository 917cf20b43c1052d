r"""Training with masks held exactly: the loop, checkpoints, divergence, the L2 baseline.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, V = vocabulary,
n = examples.

:func:`train` trains a model (in place) and returns a :class:`TrainResult`;
:func:`train_l2_iterative` is the paper's iterative magnitude-pruning baseline. :func:`make_model`,
:func:`evaluate` and :func:`resolve_device` live in :mod:`spectrumkit.evaluation` and are
re-exported here.

The loop (``_train_impl``) is assembled from named parts: a
:class:`~spectrumkit.checkpoints.TrainState` (where the run stands; what a checkpoint carries), one
:class:`~spectrumkit.batches.Batches` iterator per kind of training data
(:mod:`spectrumkit.batches`), a :class:`MaskHolder` (NOTE [Holding a mask] in
``spectrumkit/_mask_hold.py``) and a :class:`~spectrumkit.checkpoints.Checkpointer` (NOTE
[Checkpoint identity], :mod:`spectrumkit.checkpoints`). The settings are one
:class:`~spectrumkit.config.TrainingConfig`, checked when it was built; the arguments beside it
are the run's hooks (device, seed, checkpoints, progress, callback, identity).

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

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast

import pandas as pd
import torch
from torch import nn

from ._evaluate import Model, check_pair, evaluate_split, model_dtype, to_device
from ._io import check_output_dir, write_atomic
from ._mask_hold import L2_DENSITIES, MaskHolder, magnitude_mask, prune_steps
from ._progress import progress_bar
from .batches import Batches, SequenceBatches, StreamBatches, StreamedBatches, batches_for
from .checkpoints import CHECKPOINT_FILE, Checkpointer, TrainState, digest, metric_columns
from .choices import OPTIMIZERS
from .config import TrainingConfig
from .data import DEFAULT_BPTT, StreamedTokens, TaskData, TokenStream
from .errors import check_positive_int, check_seed, fail
from .evaluation import evaluate, make_model, resolve_device
from .masks import check_mask
from .models import LanguageModel

__all__ = ["L2_DENSITIES", "OPTIMIZERS", "Batches", "Checkpointer", "MaskHolder",
           "SequenceBatches", "StreamBatches", "StreamedBatches", "TrainResult", "TrainState",
           "evaluate", "make_model", "resolve_device", "train", "train_l2_iterative",
           "write_atomic"]



def _run_identity(model: Model, data: TaskData, mask: Mapping[str, torch.Tensor] | None,
                  o: _Settings, prune_at: Mapping[int, float], routine: str) -> dict[str, Any]:
    """The run's identity (NOTE [Checkpoint identity]), taken before the first step."""
    config = {"routine": routine, "initial_weights": digest(model.state_dict()),
              "dtype": str(model_dtype(model)), "model": type(model).__name__,
              "cell": model.cell.name,
              "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
              "data": data.description, "batch_size": o.t.batch_size, "lr": o.t.lr,
              "optimizer": o.t.optimizer, "clip": o.t.clip, "seed": o.seed,
              "eval_every": o.t.eval_every, "diverge_factor": o.diverge_factor,
              "mask": digest(mask), "prune_at": sorted(prune_at.items()), "bptt": data.bptt,
              "identity": dict(o.identity or {})}
    if isinstance(model, LanguageModel) and model.softmax_samples is not None:
        config["softmax_samples"] = model.softmax_samples  # NOTE [Sampled softmax]
    return config


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
    """The validated settings and hooks of a run: :func:`train`'s arguments but model, data and
    mask."""

    t: TrainingConfig
    device: torch.device
    seed: int
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


def _check_extension(st: TrainState, eval_every: int | None, total: int) -> None:
    """Refuse to extend a finished run where the longer run would differ from a fresh one.

    NOTE [Extending a run]
    A run that finished at step k wrote a history row there (the end is always evaluated), and
    that row reset the running mean of the training loss. A fresh run of ``total`` > k steps
    writes a row at k only if k is on its grid (a multiple of ``eval_every``, or an epoch's end
    without it): then the extension is exact, weights, rows and metrics alike; otherwise its
    history would hold a row the fresh run lacks and a later row averaging fewer steps, under
    the fresh run's key. That case is refused; the weights would be the same, the record not.
    """
    if st.metrics is None or st.step >= total or st.status != "ok":
        return
    on_grid = (st.step % eval_every == 0) if eval_every else st.pos == 0
    if not on_grid:
        grid = f"every {eval_every} steps" if eval_every else "at the end of each epoch"
        raise fail("train", f"a finished run extended from a step where a fresh {total}-step run "
                   f"also writes a history row ({grid}); start afresh with --no-resume on the "
                   "command line, or delete the checkpoint",
                   f"a run that finished at step {st.step}")


def _progress_bar(progress: bool | None, total: int, initial: int, finished: bool,
                  per_epoch: int) -> Any:
    # NOTE [Progress lines]: a bar on a terminal, a line per epoch on a pipe or a log file
    return progress_bar(progress, total, initial, finished=finished, per_epoch=per_epoch)


def _final_metrics(st: TrainState, test: Mapping[str, float] | None,
                   density: float) -> dict[str, float]:
    """The last row's validation metrics, the test split's, the last train loss, the density."""
    last = st.rows[-1]
    metrics = {k: v for k, v in last.items() if k.startswith("val_")}
    if test is not None:
        metrics.update(metric_columns(test, "test"))
    metrics.update(train_loss=last["train_loss"], density=density)
    return metrics


def _train_impl(model: Model, data: TaskData, mask: dict[str, torch.Tensor] | None,
                o: _Settings, *, prune: tuple[int | None, list[float]] | None,
                routine: str) -> TrainResult:
    """Trusted core of :func:`train` and :func:`train_l2_iterative` (inputs validated).

    ``prune`` = (stage_steps or None for evenly spaced stages, densities) for the L2 schedule.
    """
    dtype, device = model_dtype(model), o.device
    model.to(device)
    batches = batches_for(data, o.t.batch_size, device, dtype)
    score = partial(evaluate_split, model, batch_size=batches.eval_batch_size,
                    bptt=data.bptt or DEFAULT_BPTT, device=device)
    val_split = to_device(data.val, device, dtype)
    total = o.t.steps if o.t.steps is not None else cast(int, o.t.epochs) * batches.per_epoch
    prune_at = prune_steps(prune, total)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(o.t.optimizer, trainable, o.t.lr)
    mask = None if mask is None else {k: m.to(device) for k, m in mask.items()}
    ckpt = Checkpointer(o.checkpoint_dir, _run_identity(model, data, mask, o, prune_at, routine))
    g = torch.Generator().manual_seed(o.seed)
    shapes = {k: tuple(p.shape) for k, p in model.prunable(include_bias=True).items()}
    st, mask = ckpt.resume(model, opt, g, total, device, per_epoch=batches.per_epoch,
                           shapes=shapes) or (TrainState(), mask)
    holder = MaskHolder(model.prunable(include_bias=True), opt)
    if mask is not None:
        holder.hold(mask)
    _check_extension(st, o.t.eval_every, total)
    finished = st.extend_to(total)
    st.restart_clock()
    bar = _progress_bar(o.progress, total, st.step, finished, batches.per_epoch)
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
            _update(opt, loss, holder, trainable, o.t.clip)
            if st.step in prune_at:  # the L2 schedule prunes further
                holder.hold(magnitude_mask(model.prunable(), holder.mask, prune_at[st.step]))
            st.add_loss(value)
            st.pos = (st.pos + 1) % batches.per_epoch
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)
            evaluated = _eval_due(st, o.t.eval_every, total)
            if evaluated:
                st.add_row(score(val_split), batches.per_epoch, holder.density())
                st.loss_sum, st.loss_count = 0.0, 0
                ckpt.save(model, opt, g, st, holder.mask)
            if o.callback is not None:  # after the evaluation, whose history row it carries
                o.callback({"step": st.step, "loss": value,
                            **({"row": dict(st.rows[-1])} if evaluated else {})})
        if not finished:
            if st.status == "ok":
                test = None if data.test is None else score(to_device(data.test, device, dtype))
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
        check_pair(fn, model, data.val)  # a LanguageModel
        if len(data.train.vocab) > model.vocab_size:
            raise fail(fn, f"a model vocab_size of at least the corpus's {len(data.train.vocab)}",
                       model.vocab_size)
    else:
        check_pair(fn, model, data.train)
        check_pair(fn, model, data.val)


def _check_training(fn: str, data: TaskData, training: Any) -> TrainingConfig:
    """A TrainingConfig of some length, and a stream long enough for its batch."""
    if training is None:
        training = TrainingConfig.model_validate({})
    if not isinstance(training, TrainingConfig):
        raise fail(fn, "training= a spectrumkit.config.TrainingConfig", type(training).__name__)
    if training.length == 0:
        raise fail(fn, "some training (epochs or steps > 0; the pipeline evaluates a run of 0 "
                   "at initialization)", f"{'epochs' if training.steps is None else 'steps'}=0")
    B = training.batch_size
    if isinstance(data.train, (TokenStream, StreamedTokens)) and len(data.train) < 2 * B + 1:
        raise fail(fn, f"a training stream of more than {2 * B} tokens for batch_size={B}",
                   f"{len(data.train)} tokens")
    return training


def _check_checkpoint_dir(fn: str, checkpoint_dir: Any) -> Path | None:
    if checkpoint_dir is None:
        return None
    if not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise fail(fn, "checkpoint_dir to be a path or None", type(checkpoint_dir).__name__)
    # NOTE [Output paths]: before any step, not at the first save
    check_output_dir(fn, checkpoint_dir, files=[CHECKPOINT_FILE])
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


def _validate(fn: str, model: Any, data: Any, mask: Any, *, training: Any, device: Any,
              seed: Any, checkpoint_dir: Any, progress: Any, diverge_factor: Any, callback: Any,
              identity: Any) -> tuple[dict[str, torch.Tensor] | None, _Settings]:
    """Check every argument of :func:`train`, in order; return the mask and the settings."""
    _check_model_data(fn, model, data)
    t = _check_training(fn, data, training)
    check_seed(fn, "seed", seed)
    folder = _check_checkpoint_dir(fn, checkpoint_dir)
    diverge_factor = _check_hooks(fn, identity, progress, diverge_factor, callback)
    mask = None if mask is None else _check_train_mask(fn, model, mask)
    return mask, _Settings(t, resolve_device(device), seed, folder, progress, diverge_factor,
                           callback, None if identity is None else dict(identity))


def train(model: Model, data: TaskData, *, training: TrainingConfig | None = None,
          mask: Mapping[str, torch.Tensor] | None = None, device: str | torch.device = "auto",
          seed: int, checkpoint_dir: str | os.PathLike | None = None,
          progress: bool | None = None, diverge_factor: float | None = 10.0,
          callback: Callable[[dict], None] | None = None,
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
        training: the settings, a :class:`~spectrumkit.config.TrainingConfig` (None: its
            defaults, one epoch): ``epochs`` or ``steps`` (passes over the training split, or
            optimizer steps; epochs repeat as needed), ``batch_size`` B, ``lr``, ``optimizer``,
            ``clip`` (max global gradient norm or None) and ``eval_every`` (evaluate the
            validation split every this many steps; None = at the end of every epoch; the last
            step is always evaluated; each evaluation adds a history row).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:K"``;
            ``"cuda"`` without CUDA is an error. Data is moved to the device once.
        seed: seeds the data order.
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
        progress: a tqdm bar on stderr; None = the bar when stderr is a terminal, else a line
            per epoch (NOTE [Progress lines]); False = nothing.
        diverge_factor: see NOTE [Divergence]; None keeps only the non-finite rule.
        callback: called after every step with ``{"step", "loss"}``, and ``"row"`` (the new
            history row) after a step that ended with an evaluation; its exceptions propagate.
        identity: JSON-able settings that also define the run (e.g. the CLI's ``init``,
            ``method``, ``sparsity``), stored in the checkpoint and compared on resume.

    Returns:
        :class:`TrainResult`. Divergence is a status, never an exception.
    """
    fn = "train"
    checked, o = _validate(fn, model, data, mask, training=training, device=device, seed=seed,
                           checkpoint_dir=checkpoint_dir, progress=progress,
                           diverge_factor=diverge_factor, callback=callback, identity=identity)
    return _train_impl(model, data, checked, o, prune=None, routine=fn)


def train_l2_iterative(model: Model, data: TaskData, *, density: float,
                       stage_steps: int | None = None,
                       densities: tuple[float, ...] = L2_DENSITIES,
                       training: TrainingConfig | None = None,
                       device: str | torch.device = "auto", seed: int,
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
    _, o = _validate(fn, model, data, None, training=training, device=device, seed=seed,
                     checkpoint_dir=checkpoint_dir, progress=progress,
                     diverge_factor=diverge_factor, callback=callback, identity=identity)
    return _train_impl(model, data, None, o, prune=(stage_steps, schedule), routine=fn)
