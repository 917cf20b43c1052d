r"""One prune-and-train pipeline: a trial config → data → model → scores → mask → training.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, P = parameters.

Study trials (:func:`spectrumkit.study.trial.run_trial`) and ``spectrumkit train`` both run
:func:`run_pipeline`, so a study trial and the command that re-runs it give the same mask and
the same history. For a run configuration c (:class:`~spectrumkit.config.RunConfig`, a study's
TrialConfig):

1. ``task = load_task(c.task, root=data_root, **c.data)`` (:func:`load_data`);
2. ``model = make_model(task, c.cell, c.hidden_size, init=c.init, seed=c.seed, ...)``;
3. unless ``c.method`` is ``dense`` or ``l2``: scores on one minibatch of ``c.score_batch``
   training examples (``compute_scores``; timed as the best of ``c.score_repeats`` runs), then the
   exact-K mask ``topk_mask(scores, c.density, scope=c.scope)``, the package's one ranking rule;
4. the records asked for at initialization (mask anatomy, connection map, spectra of the masked
   cell on ``c.spectrum_batch`` validation sequences);
5. the authors' swap of the scored GRU when asked for (NOTE [The authors' pipeline]);
6. training with the mask held (``train``; ``l2`` = the paper's iterative magnitude baseline,
   ``train_l2_iterative``), or, with 0 epochs / steps, an evaluation at initialization;
7. the spectra again after training (unless it diverged), and the mask trained with (record
   ``mask``: :func:`pack_mask`).

NOTE [The authors' pipeline]
With ``c.pipeline = "authors"`` (docs/authors-code.md §6, a reproduction of their code, off by
default) the scored ``gru_cho`` is turned into the cell their code trains between steps 3 and 6:
:func:`~spectrumkit.interop.authors_trained_gru` swaps the z and candidate row blocks of the
weights and of the mask (``c.block_swap``, True by default under this pipeline), sets both biases
to zero (no +0.1) and holds ``bias_hh`` at 0, so one zero-initialized bias per pre-activation
trains; the kept weights keep their scoring values. ``block_swap=False`` keeps the blocks where
they were scored; ``pipeline="plain"`` with ``block_swap=True`` swaps the blocks and keeps the
biases as initialized. Records at initialization (anatomy, connection map, spectra) describe the
SCORED mask and cell; the record ``mask`` is the mask training held.

NOTE [Trial randomness]
Everything random in a trial derives from ``c.seed`` alone: the model's initialization uses
``seed`` (``make_model``), the data order uses ``seed`` (``train``), and the draws of the trial
itself use separate generators seeded with ``SHA-256("<seed>:<purpose>")`` (:func:`sub_seed`) for
the purposes ``score-batch`` (which training examples the scores see), ``scores`` (random scores,
Hutchinson probes, γ inputs), ``spectrum-batch``, ``lyapunov`` and ``spectrum-probes`` (the SLQ
probes of ``spectrum_method="lanczos"``). Separate streams keep e.g. the random mask independent
of which examples the scores saw, and make a trial's numbers independent of the process,
executor and order it runs in, and of whether a study or ``spectrumkit train`` runs it.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from .anatomy import anatomy_summary, connection_map, mask_anatomy
from .data import TaskData, load_task, sample_batch
from .errors import fail
from .evaluation import Model, evaluate, make_model, resolve_device
from .masks import topk_mask
from .scores import compute_scores
from .spectra import histogram, lyapunov_exponents, spectrum

if TYPE_CHECKING:
    from .config import RunConfig as TrialConfig
    from .training import TrainResult

__all__ = ["PipelineResult", "load_data", "pack_mask", "run_pipeline", "sub_seed", "unpack_mask"]

Mask = dict[str, torch.Tensor]
_SPECTRAL = ("sv_hist", "spectrum_steps", "lyapunov")


def sub_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose of one trial (NOTE [Trial randomness]).

    >>> sub_seed(0, "scores") == sub_seed(0, "scores") != sub_seed(1, "scores")
    True
    >>> sub_seed(0, "scores") < 2 ** 63
    True
    """
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _generator(seed: int, purpose: str) -> torch.Generator:
    return torch.Generator().manual_seed(sub_seed(seed, purpose))


def _silent(msg: str) -> None:
    """The default log: drop the line."""


# ------------------------------------------------------------------------------- the mask record


def pack_mask(mask: Mapping[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    r"""A JSON form of a mask: ``{name: {"shape": [...], "packbits": base64}}``, bit for bit.

    Each bool tensor is flattened in row-major order and packed eight entries to a byte, most
    significant bit first (``numpy.packbits``), then base64-encoded, as the ``connection_map``
    record is. :func:`unpack_mask` inverts it exactly.

    >>> m = {"W": torch.tensor([[True, False, True], [False, False, True]])}
    >>> pack_mask(m)                          # 1 0 1 0 0 1 (0 0) = 0xA4
    {'W': {'shape': [2, 3], 'packbits': 'pA=='}}
    >>> torch.equal(unpack_mask(pack_mask(m))["W"], m["W"])
    True
    """
    out: dict[str, dict[str, Any]] = {}
    for name, m in mask.items():
        bits = np.packbits(m.detach().cpu().numpy().astype(bool).ravel()).tobytes()
        out[name] = {"shape": list(m.shape), "packbits": base64.b64encode(bits).decode("ascii")}
    return out


def unpack_mask(packed: Mapping[str, Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """The bool tensors of a :func:`pack_mask` record (e.g. a study result's ``artifacts.mask``)."""
    fn = "unpack_mask"
    out: dict[str, torch.Tensor] = {}
    for name, rec in packed.items():
        if not isinstance(rec, Mapping) or set(rec) != {"shape", "packbits"}:
            raise fail(fn, f"{{'shape', 'packbits'}} for tensor {name!r}", repr(rec)[:80])
        shape = tuple(int(s) for s in rec["shape"])
        raw = np.frombuffer(base64.b64decode(rec["packbits"]), dtype=np.uint8)
        n = math.prod(shape)
        if raw.size != (n + 7) // 8:
            raise fail(fn, f"{(n + 7) // 8} packed bytes for tensor {name!r} of shape {shape}",
                       raw.size)
        bits = np.unpackbits(raw, count=n).astype(bool).reshape(shape)
        out[name] = torch.from_numpy(bits.copy())
    return out


# ------------------------------------------------------------------------------------- the steps


@dataclass
class PipelineResult:
    r"""What one run of the pipeline produced.

    ``status`` (ok / diverged), ``device``, ``metrics`` (the trial's metrics,
    docs/results-schema.md), ``history`` (one row per evaluation; empty without training),
    ``artifacts`` (the records asked for), ``data`` (the loader's description), ``mask`` (the
    mask training held at the end, on the CPU; None for ``dense``), ``model`` (trained in place)
    and ``train_result`` (:class:`~spectrumkit.training.TrainResult`, None without training).
    """

    status: str
    device: str
    metrics: dict[str, Any]
    history: pd.DataFrame
    artifacts: dict[str, Any]
    data: str
    mask: Mask | None
    model: Model
    train_result: TrainResult | None = None

    def outcome(self) -> dict[str, Any]:
        """The trial's return value: ``{"status", "device", "metrics", "history", "artifacts",
        "data"}`` with the history as ``{column: [values]}``."""
        history = {k: self.history[k].tolist() for k in self.history.columns}
        return {"status": self.status, "device": self.device, "metrics": self.metrics,
                "history": history, "artifacts": self.artifacts, "data": self.data}


@dataclass
class _Run:
    """The run options and what the steps have built so far."""

    c: TrialConfig
    device: str
    log: Callable[[str], None]
    task: TaskData
    model: Model = field(init=False)
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)


def load_data(c: TrialConfig, data_root: str | os.PathLike | None = None) -> TaskData:
    """Step 1: ``load_task(c.task, root=data_root, **c.data)``."""
    return load_task(c.task, root=None if data_root is None else Path(data_root), **c.data)


def _build_model(run: _Run) -> None:
    """Step 2: the model from ``c.seed``, and the metrics every trial reports."""
    c = run.c
    run.model = make_model(run.task, c.cell, c.hidden_size, init=c.init, seed=c.seed,
                           embed_size=c.embed_size, device=run.device,
                           dtype=getattr(torch, c.dtype), softmax_samples=c.softmax_samples)
    total = sum(p.numel() for p in run.model.prunable(c.include_bias).values())
    run.metrics = {"density": 1.0 if c.method == "dense" else c.density, "kept": total,
                   "prunable": total, "score_seconds": None}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _in_dtype(batch: tuple[torch.Tensor, torch.Tensor], dtype: str
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch with its floating tensors in the run's dtype (token ids and labels stay integers);
    float32, the data's own dtype, leaves the batch as it is."""
    want = getattr(torch, dtype)
    return tuple(t.to(want) if t.is_floating_point() else t for t in batch)  # type: ignore[return-value]


def _score(run: _Run) -> Mask | None:
    """Step 3: scores on the scoring batch, then the exact-K mask (None for dense and l2)."""
    c, model = run.c, run.model
    if c.method in ("dense", "l2"):
        return None
    batch = _in_dtype(sample_batch(run.task.train, c.score_batch,
                                   generator=_generator(c.seed, "score-batch"),
                                   bptt=run.task.bptt, device=run.device), c.dtype)
    opts = c.scoring()
    assert opts is not None  # a score method (not dense, not l2)
    best = math.inf
    for _ in range(c.score_repeats):  # timing: the best of k identical runs
        _sync(run.device)
        t0 = time.perf_counter()
        scores = compute_scores(opts, model, batch, generator=_generator(c.seed, "scores"),
                                include_bias=c.include_bias)
        _sync(run.device)
        best = min(best, time.perf_counter() - t0)
    mask = topk_mask(scores, c.density, scope=c.scope)
    run.metrics.update(score_seconds=best, kept=int(sum(int(m.sum()) for m in mask.values())))
    run.log(f"scores: {c.method} {c.score_options} in {best:.3f} s; kept {run.metrics['kept']} of "
            f"{run.metrics['prunable']}")
    return mask


def _anatomy_records(run: _Run, mask: Mask | None) -> None:
    """Step 4a: the anatomy and connection map of the scored mask (all kept for dense / l2)."""
    c, model = run.c, run.model
    if mask is None:
        mask = {k: torch.ones_like(p, dtype=torch.bool)
                for k, p in model.prunable(c.include_bias).items()}
    D, N = model.input_size, model.hidden_size
    if "anatomy" in c.record:
        table = mask_anatomy(model.cell, mask, D, N)
        # NOTE [Undefined values] in spectrumkit.study.values: JSON has no inf or NaN; a ratio
        # whose denominator is 0 is stored as null, with the kept counts that tell inf from 0/0
        summary = {k: v if not isinstance(v, float) or math.isfinite(v) else None
                   for k, v in anatomy_summary(model.cell, mask, D, N).items()}
        rows = table.to_dict(orient="records")
        run.artifacts["anatomy"] = {"rows": rows, "summary": summary}
        run.metrics.update(ir_ratio=summary["ir_ratio"], gate_imbalance=summary["gate_imbalance"],
                           dead_units=summary["dead_units"])
        for b in ("input", "recurrent"):
            run.metrics[f"kept_{b}"] = int(sum(r["kept"] for r in rows if r["block"] == b))
        kept = sum(r["kept"] for r in rows)  # each gate's share of the kept entries
        for g in dict.fromkeys(r["gate"] for r in rows):
            run.metrics[f"share_{g}"] = (sum(r["kept"] for r in rows if r["gate"] == g) / kept
                                         if kept else None)
    if "connection_map" in c.record:
        cmap, meta = connection_map(model.cell, mask, D, N)
        run.artifacts["connection_map"] = {
            "shape": list(cmap.shape),
            "packbits": base64.b64encode(np.packbits(cmap.ravel()).tobytes()).decode("ascii"),
            **meta}


def _masked(params: Mapping[str, torch.Tensor], mask: Mask | None) -> Mask:
    detached = {k: v.detach() for k, v in params.items()}
    if mask is None:
        return detached
    return {k: v.masked_fill(~mask[k].to(v.device), 0.0) if k in mask else v
            for k, v in detached.items()}


def _sv_records(c: TrialConfig, model: Model, params: Mask, xs: torch.Tensor) -> dict[str, Any]:
    """sv_hist and spectrum_steps of the cell with ``params`` on xs (T, B, D)."""
    lanczos = c.spectrum_method == "lanczos"        # matrix-free: NOTE [SLQ density]
    bins = c.hist_bins or 50
    if lanczos:
        sp = spectrum(model.cell, params, xs, bins=bins, method="lanczos",
                      seed=sub_seed(c.seed, "spectrum-probes"))
    else:
        sp = spectrum(model.cell, params, xs, bins=bins)
    # NOTE [Shared histogram edges]: bins over [0, hi] with hi = max(2, ceil(max σ)), so
    # every seed and both phases share edges whenever σ < 2 (the figures pool seeds only
    # over equal edges), and the counts still cover every singular value.
    hi = max(2.0, math.ceil(float(sp.singular_values.max())))
    if lanczos:                          # expected counts of the SLQ density, same bins
        h = sp.matrix_free.density.histogram(bins=bins, value_range=(0.0, hi))
    else:
        h = histogram(sp.singular_values, bins=bins, value_range=(0.0, hi))
    sv_hist: dict[str, Any] = {"edges": h.edges.tolist(), "counts": h.counts.tolist(),
                               "mean": float(sp.pooled["mean"]),
                               "n": round(float(h.counts.sum())) if lanczos
                               else int(h.counts.sum())}
    if lanczos:
        sv_hist["method"] = "lanczos"
    return {"sv_hist": sv_hist,
            "spectrum_steps": {"step": [int(s) for s in sp.table.index],
                               "mean_sigma": sp.table["mean"].astype(float).tolist()}}


def _spectra(c: TrialConfig, model: Model, xs: torch.Tensor, mask: Mask | None) -> dict[str, Any]:
    """sv_hist, spectrum_steps and lyapunov of the (masked) cell on xs (T, B, D)."""
    params = _masked(model.cell_params(), mask)
    out: dict[str, Any] = {}
    with torch.no_grad():
        if "sv_hist" in c.record or "spectrum_steps" in c.record:
            out.update(_sv_records(c, model, params, xs))
        if "lyapunov" in c.record:
            S = model.cell.state_size(model.hidden_size)
            k = min(c.lyapunov_k or S, S)
            lam = lyapunov_exponents(model.cell, params, xs, k=k,
                                     generator=_generator(c.seed, "lyapunov") if k < S else None)
            out["lyapunov"] = lam.double().mean(0).tolist()
    return out


def _spectral_inputs(run: _Run) -> torch.Tensor | None:
    """Step 4b: the cell's inputs (T, B, D) for the spectra, or None when none is recorded."""
    c = run.c
    if not any(r in c.record for r in _SPECTRAL):
        return None
    sb = _in_dtype(sample_batch(run.task.val, c.spectrum_batch or 64,
                                generator=_generator(c.seed, "spectrum-batch"),
                                bptt=run.task.bptt, device=run.device), c.dtype)
    return run.model.cell_inputs(sb).detach()


def _authors_swap(c: TrialConfig, model: Model, mask: Mask | None) -> Mask | None:
    """Step 5, NOTE [The authors' pipeline]: the mask to train with; the cell is set in place."""
    if mask is None or not (c.pipeline == "authors" or c.block_swap):
        return mask
    from .interop import authors_trained_gru

    params = {k: v.detach() for k, v in model.cell_params().items()}
    swapped, smask = authors_trained_gru(params, mask)
    if not c.block_swap:  # zero biases, bias_hh held, but the blocks where they were scored
        swapped = {**swapped, **{k: params[k] for k in mask if not model.cell.is_bias(k)}}
        smask = {**smask, **{k: m for k, m in mask.items() if not model.cell.is_bias(k)}}
    if c.pipeline == "plain":  # the swap alone: the biases stay as initialized, unmasked
        swapped = {**swapped, **{k: params[k] for k in params if model.cell.is_bias(k)}}
        smask = {k: m for k, m in smask.items() if k in mask}
    with torch.no_grad():
        for k, v in swapped.items():
            model.rnn[k].copy_(v)
    return smask


@dataclass(frozen=True)
class _TrainOptions:
    """Run options of the training step (not part of the config, nor of the trial's key)."""

    checkpoint_dir: str | os.PathLike | None = None
    progress: bool | None = False
    identity: Mapping[str, Any] | None = None
    callback: Callable[[dict], None] | None = None


def _fit(run: _Run, mask: Mask | None, opts: _TrainOptions) -> TrainResult:
    """Step 6: train with ``mask`` held, or the paper's iterative L2 baseline."""
    from .training import train, train_l2_iterative  # looked up per call: tests wrap train

    c = run.c
    kw: dict[str, Any] = dict(training=c.training, device=run.device, seed=c.seed,
                              progress=opts.progress, checkpoint_dir=opts.checkpoint_dir,
                              identity=opts.identity, callback=opts.callback)
    if c.method == "l2":
        return train_l2_iterative(run.model, run.task, density=c.density,
                                  stage_steps=c.l2_stage_steps, **kw)
    return train(run.model, run.task, mask=mask, **kw)


def _train_step(run: _Run, scored: Mask | None, mask: Mask | None, opts: _TrainOptions
                ) -> tuple[str, TrainResult | None]:
    """Step 6 and its metrics: training, or an evaluation at initialization (0 epochs / steps)."""
    c, metrics = run.c, run.metrics
    if not ((c.epochs or 0) > 0 or (c.steps or 0) > 0):
        ev = evaluate(run.model, run.task.val, device=run.device)
        metrics.update({f"val_{k}": v for k, v in ev.items() if k not in ("n", "tokens")})
        metrics.update(train_seconds=0.0, diverged_at_step=None)
        return "ok", None
    res = _fit(run, mask, opts)
    if c.method == "l2":
        metrics["kept"] = int(sum(int(m.sum()) for m in (res.mask or {}).values()))
    for row in res.history.to_dict(orient="records"):
        run.log("eval " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in row.items()))
    density = metrics["density"]
    metrics.update(res.metrics)
    if mask is not scored:  # the pipeline's bias_hh mask is not part of the density
        metrics["density"] = density
    metrics["diverged_at_step"] = res.diverged_at
    run.log(f"training: {res.status} after {res.metrics.get('steps')} steps on {res.device}")
    return res.status, res


def _spectra_records(run: _Run, init: dict[str, Any], trained: dict[str, Any]) -> None:
    """Step 7a: each spectral record at init and, unless training diverged, after it."""
    for name in _SPECTRAL:
        if name in run.c.record:
            run.artifacts[name] = {"init": init[name]}
            if name in trained:
                run.artifacts[name]["trained"] = trained[name]
    if "sv_hist" in init:
        run.metrics["sv_mean_init"] = init["sv_hist"]["mean"]
        run.metrics["sv_mean_trained"] = trained.get("sv_hist", {}).get("mean")


def _observed(callback: Callable[[dict], None] | None, run: _Run, mask: Mask | None,
              xs: torch.Tensor | None, init: dict[str, Any]) -> Callable[[dict], None] | None:
    """NOTE [Pipeline callback]: ``callback`` is first called once with ``{"event": "start",
    "step": 0, "model", "mask"}`` (the mask training holds; None for dense and l2) and, when the
    trial records sv_hist or spectrum_steps, ``"spectra"``: a function returning the records at
    initialization; then with train's events, whose evaluations (``"row"``) carry ``"spectra"``,
    a function computing those records of the model as it is then (only when called)."""
    if callback is None:
        return None
    on = xs is not None and any(r in run.c.record for r in ("sv_hist", "spectrum_steps"))

    def now(inputs: torch.Tensor = xs) -> dict[str, Any]:  # type: ignore[assignment]
        with torch.no_grad():
            return _sv_records(run.c, run.model, _masked(run.model.cell_params(), mask), inputs)

    callback({"event": "start", "step": 0, "model": run.model, "mask": mask,
              **({"spectra": lambda: init} if on else {})})
    return (lambda info: callback({**info, "spectra": now} if "row" in info else info)) if on \
        else callback


def run_pipeline(c: TrialConfig, *, device: str = "auto",
                 data_root: str | os.PathLike | None = None,
                 log: Callable[[str], None] = _silent, task: TaskData | None = None,
                 checkpoint_dir: str | os.PathLike | None = None, progress: bool | None = False,
                 identity: Mapping[str, Any] | None = None,
                 callback: Callable[[dict], None] | None = None) -> PipelineResult:
    r"""Prune at initialization and train, as config ``c`` says (the steps in the module docstring).

    Run options, none of which changes a number: ``device`` (``auto``: CUDA when available),
    ``data_root`` (the full data set; None = bundled), ``log`` (called with one line per event),
    ``task`` (the already loaded :func:`load_data` ``(c, data_root)``, to avoid loading twice),
    ``checkpoint_dir``, ``progress`` and ``identity`` (passed to :func:`spectrumkit.training.train`:
    checkpoint and resume; ``callback``: its ``callback``, e.g. a
    :class:`~spectrumkit.tensorboard_log.TensorBoardLog`). A diverged run has status ``diverged``
    (never an exception).
    """
    dev = str(resolve_device(device))
    run = _Run(c=c, device=dev, log=log,
               task=task if task is not None else load_data(c, data_root))
    log(f"data: {run.task.description}")
    _build_model(run)
    scored = _score(run)
    _anatomy_records(run, scored)
    xs = _spectral_inputs(run)
    init = _spectra(c, run.model, xs, scored) if xs is not None else {}
    mask = _authors_swap(c, run.model, scored)
    callback = _observed(callback, run, mask, xs, init)
    status, res = _train_step(run, scored, mask,
                              _TrainOptions(checkpoint_dir, progress, identity, callback))
    if xs is not None:
        trained = _spectra(c, run.model, xs, mask) if status == "ok" else {}
        _spectra_records(run, init, trained)
    held = res.mask if res is not None else mask
    held = None if held is None else {k: v.detach().cpu() for k, v in held.items()}
    if "mask" in c.record:
        run.artifacts["mask"] = None if held is None else pack_mask(held)
    run.metrics.setdefault("val_ppl", None)
    run.metrics.setdefault("test_ppl", None)
    history = res.history if res is not None else pd.DataFrame()
    return PipelineResult(status=status, device=dev, metrics=run.metrics, history=history,
                          artifacts=run.artifacts, data=run.task.description, mask=held,
                          model=run.model, train_result=res)
