r"""The built-in trial ``prune-train``: data → model → scores → mask → training → metrics.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, P = parameters.

One trial, for a :class:`~spectrumkit.study.config.TrialConfig` c:

1. ``task = load_task(c.task, root=data_root, **c.data)``;
2. ``model = make_model(task, c.cell, c.hidden_size, init=c.init, seed=c.seed, ...)``;
3. unless ``c.method`` is ``dense`` or ``l2``: scores on one minibatch of ``c.score_batch``
   training examples (``compute_scores``; timed as the best of ``c.score_repeats`` runs), then the
   exact-K mask ``topk_mask(scores, 1 - c.sparsity, scope=c.scope)``;
4. the records asked for at initialization (mask anatomy, connection map, spectra of the masked
   cell on ``c.spectrum_batch`` validation sequences);
5. training with the mask held (``train``; ``l2`` = the paper's iterative magnitude baseline,
   ``train_l2_iterative``), or, with 0 epochs / steps, an evaluation at initialization;
6. the spectra again after training (unless it diverged).

NOTE [The authors' pipeline]
With ``c.pipeline = "authors"`` (AUTHORS_CODE.md §6, a reproduction of their code, off by default)
the scored ``gru_cho`` is turned into the cell their code trains between steps 3 and 5:
:func:`~spectrumkit.interop.authors_trained_gru` swaps the z and candidate row blocks of the
weights and of the mask (``c.block_swap``, True by default under this pipeline), sets both biases
to zero (no +0.1) and holds ``bias_hh`` at 0, so one zero-initialized bias per pre-activation
trains; the kept weights keep their scoring values. ``block_swap=False`` keeps the blocks where
they were scored; ``pipeline="plain"`` with ``block_swap=True`` swaps the blocks and keeps the
biases as initialized. Records at initialization (anatomy, connection map, spectra) describe the
SCORED mask and cell.

NOTE [Trial randomness]
Everything random in a trial derives from ``c.seed`` alone: the model's initialization uses
``seed`` (``make_model``), the data order uses ``seed`` (``train``), and the draws of the trial
itself use separate generators seeded with ``SHA-256("<seed>:<purpose>")`` for the purposes
``score-batch`` (which training examples the scores see), ``scores`` (random scores, Hutchinson
probes, γ inputs), ``spectrum-batch``, ``lyapunov`` and ``spectrum-probes`` (the SLQ probes of
``spectrum_method="lanczos"``). Separate streams keep e.g. the random
mask independent of which examples the scores saw, and make a trial's numbers independent of the
process, executor and order it runs in.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from typing import Any

import numpy as np
import torch

from ..anatomy import anatomy_summary, connection_map, mask_anatomy
from ..data import load_task, sample_batch
from ..masks import topk_mask
from ..scores import compute_scores
from ..spectra import histogram, lyapunov_exponents, spectrum
from ..train import evaluate, make_model, resolve_device, train, train_l2_iterative
from .config import TrialConfig
from .executors import TrialContext

__all__ = ["run_trial", "sub_seed"]


def sub_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose of one trial (NOTE [Trial randomness]).

    >>> sub_seed(0, "scores") == sub_seed(0, "scores") != sub_seed(1, "scores")
    True
    """
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _generator(seed: int, purpose: str) -> torch.Generator:
    return torch.Generator().manual_seed(sub_seed(seed, purpose))


def _score_options(c: TrialConfig, T: int) -> dict[str, Any]:
    """The options of ``compute_scores`` for this config (its ``score_options`` win)."""
    o: dict[str, Any] = {}
    if c.method == "jacobian":
        o.update(recipe=c.recipe, horizon=T if c.horizon == "all" else min(int(c.horizon), T),
                 estimator=c.estimator, through_time=c.through_time)
    if c.normalize is not None:
        o["normalize"] = c.normalize
    if c.method == "synflow":
        o["density"] = c.density
    o.update(c.score_options)
    return o


def _authors_pipeline(c: TrialConfig, model: Any, mask: dict[str, torch.Tensor]
                      ) -> dict[str, torch.Tensor]:
    """NOTE [The authors' pipeline]: the mask to train with; the model's cell is set in place."""
    from ..interop import authors_trained_gru

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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _masked(params: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None
            ) -> dict[str, torch.Tensor]:
    params = {k: v.detach() for k, v in params.items()}
    if mask is None:
        return params
    return {k: v.masked_fill(~mask[k].to(v.device), 0.0) if k in mask else v
            for k, v in params.items()}


def _spectra(c: TrialConfig, model: Any, xs: torch.Tensor, mask: dict | None
             ) -> dict[str, Any]:
    """sv_hist, spectrum_steps and lyapunov of the (masked) cell on xs (T, B, D)."""
    params = _masked(model.cell_params(), mask)
    out: dict[str, Any] = {}
    with torch.no_grad():
        if "sv_hist" in c.record or "spectrum_steps" in c.record:
            lanczos = c.spectrum_method == "lanczos"        # matrix-free: NOTE [SLQ density]
            sp = spectrum(model.cell, params, xs, bins=c.hist_bins or 50,
                          **({"method": "lanczos", "seed": sub_seed(c.seed, "spectrum-probes")}
                             if lanczos else {}))
            # NOTE [Shared histogram edges]: bins over [0, hi] with hi = max(2, ceil(max σ)), so
            # every seed and both phases share edges whenever σ < 2 (the figures pool seeds only
            # over equal edges), and the counts still cover every singular value.
            hi = max(2.0, math.ceil(float(sp.singular_values.max())))
            if lanczos:                          # expected counts of the SLQ density, same bins
                h = sp.matrix_free.density.histogram(bins=c.hist_bins or 50, value_range=(0.0, hi))
            else:
                h = histogram(sp.singular_values, bins=c.hist_bins or 50, value_range=(0.0, hi))
            out["sv_hist"] = {"edges": h.edges.tolist(), "counts": h.counts.tolist(),
                              "mean": float(sp.pooled["mean"]),
                              "n": round(float(h.counts.sum())) if lanczos else int(h.counts.sum())}
            if lanczos:
                out["sv_hist"]["method"] = "lanczos"
            out["spectrum_steps"] = {"step": [int(s) for s in sp.table.index],
                                     "mean_sigma": sp.table["mean"].astype(float).tolist()}
        if "lyapunov" in c.record:
            S = model.cell.state_size(model.hidden_size)
            k = min(c.lyapunov_k or S, S)
            lam = lyapunov_exponents(model.cell, params, xs, k=k,
                                     generator=_generator(c.seed, "lyapunov") if k < S else None)
            out["lyapunov"] = lam.double().mean(0).tolist()
    return out


def _anatomy(c: TrialConfig, model: Any, mask: dict[str, torch.Tensor]) -> dict[str, Any]:
    D, N, out = model.input_size, model.hidden_size, {}
    if "anatomy" in c.record:
        table = mask_anatomy(model.cell, mask, D, N)
        out["anatomy"] = {"rows": table.to_dict(orient="records"),
                          "summary": anatomy_summary(model.cell, mask, D, N)}
    if "connection_map" in c.record:
        cmap, meta = connection_map(model.cell, mask, D, N)
        out["connection_map"] = {
            "shape": list(cmap.shape),
            "packbits": base64.b64encode(np.packbits(cmap.ravel())).decode("ascii"),
            **meta}
    return out


def run_trial(c: TrialConfig, ctx: TrialContext) -> dict[str, Any]:
    r"""Run one ``prune-train`` trial (see the module docstring) and return its outcome.

    Returns ``{"status", "device", "metrics", "history", "artifacts", "data"}`` as
    RESULTS_SCHEMA.md describes (``data``: the loader's description of the data used); a diverged
    run has status ``diverged`` and its ``diverged_at_step``.
    """
    device = str(resolve_device(ctx.device))
    task = load_task(c.task, root=ctx.data_root, **c.data)
    ctx.log(f"data: {task.description}")
    model = make_model(task, c.cell, c.hidden_size, init=c.init, seed=c.seed,
                       embed_size=c.embed_size, device=device, softmax_samples=c.softmax_samples)
    prunable = model.prunable(c.include_bias)
    total = sum(p.numel() for p in prunable.values())
    metrics: dict[str, Any] = {"density": 1.0 if c.method == "dense" else c.density,
                               "kept": total, "prunable": total, "score_seconds": None}
    mask = None
    if c.method not in ("dense", "l2"):
        batch = sample_batch(task.train, c.score_batch, generator=_generator(c.seed, "score-batch"),
                             bptt=task.bptt, device=device)
        T = int(model.cell_inputs(batch).shape[0])
        opts = _score_options(c, T)
        best = math.inf
        for _ in range(c.score_repeats):
            _sync(device)
            t0 = time.perf_counter()
            scores = compute_scores(c.method, model, batch, generator=_generator(c.seed, "scores"),
                                    include_bias=c.include_bias, **opts)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
        mask = topk_mask(scores, c.density, scope=c.scope)
        metrics.update(score_seconds=best, kept=int(sum(int(m.sum()) for m in mask.values())))
        ctx.log(f"scores: {c.method} {opts} in {best:.3f} s; kept {metrics['kept']} of {total}")
    full = {k: torch.ones_like(p, dtype=torch.bool) for k, p in prunable.items()}
    artifacts = _anatomy(c, model, mask if mask is not None else full)
    if "anatomy" in artifacts:
        s = artifacts["anatomy"]["summary"]
        metrics.update(ir_ratio=s["ir_ratio"], gate_imbalance=s["gate_imbalance"],
                       dead_units=s["dead_units"])
        # issue 10: each gate's share of the kept entries (share_r, share_z, share_n for a GRU)
        rows = artifacts["anatomy"]["rows"]
        kept = sum(r["kept"] for r in rows)
        for g in dict.fromkeys(r["gate"] for r in rows):
            metrics[f"share_{g}"] = (sum(r["kept"] for r in rows if r["gate"] == g) / kept
                                     if kept else None)
    spectral = any(r in c.record for r in ("sv_hist", "spectrum_steps", "lyapunov"))
    if spectral:
        sb = sample_batch(task.val, c.spectrum_batch or 64,
                          generator=_generator(c.seed, "spectrum-batch"), bptt=task.bptt,
                          device=device)
        xs = model.cell_inputs(sb).detach()
        init_spectra = _spectra(c, model, xs, mask)
    train_mask = mask
    if mask is not None and (c.pipeline == "authors" or c.block_swap):
        train_mask = _authors_pipeline(c, model, mask)
    status, history = "ok", {}
    if (c.epochs or 0) > 0 or (c.steps or 0) > 0:
        kw = dict(epochs=c.epochs or None, steps=c.steps or None, batch_size=c.batch_size,
                  lr=c.lr, optimizer=c.optimizer, clip=c.clip, device=device, seed=c.seed,
                  eval_every=c.eval_every, progress=False)
        if c.method == "l2":
            res = train_l2_iterative(model, task, density=c.density,
                                     stage_steps=c.l2_stage_steps, **kw)
            metrics["kept"] = int(sum(int(m.sum()) for m in res.mask.values()))
        else:
            res = train(model, task, mask=train_mask, **kw)
        status = res.status
        history = {k: res.history[k].tolist() for k in res.history.columns}
        for row in res.history.to_dict(orient="records"):
            ctx.log("eval " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in row.items()))
        density = metrics["density"]
        metrics.update(res.metrics)
        if train_mask is not mask:  # the pipeline's bias_hh mask is not part of the density
            metrics["density"] = density
        metrics["diverged_at_step"] = res.diverged_at
        ctx.log(f"training: {status} after {res.metrics.get('steps')} steps on {res.device}")
    else:
        ev = evaluate(model, task.val, device=device)
        metrics.update({f"val_{k}": v for k, v in ev.items() if k not in ("n", "tokens")})
        metrics.update(train_seconds=0.0, diverged_at_step=None)
    if spectral:
        trained = _spectra(c, model, xs, train_mask) if status == "ok" else {}
        for name in ("sv_hist", "spectrum_steps", "lyapunov"):
            if name in c.record:
                artifacts[name] = {"init": init_spectra[name]}
                if name in trained:
                    artifacts[name]["trained"] = trained[name]
        if "sv_hist" in init_spectra:
            metrics["sv_mean_init"] = init_spectra["sv_hist"]["mean"]
            metrics["sv_mean_trained"] = trained.get("sv_hist", {}).get("mean")
    metrics.setdefault("val_ppl", None)
    metrics.setdefault("test_ppl", None)
    return {"status": status, "device": device, "metrics": metrics, "history": history,
            "artifacts": artifacts, "data": task.description}
