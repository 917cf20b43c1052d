r"""TensorBoard curves of a training run (the ``tensorboard`` extra): ``spectrumkit train --log
tensorboard`` writes them to ``OUT/tensorboard``; from Python pass a :class:`TensorBoardLog` as
``train(callback=...)`` / ``run_pipeline(callback=...)``. A study's trials become one run each
with ``spectrumkit study tensorboard OUT/NAME --out DIR`` (:func:`write_study_runs`, from the
stored trial files, after the fact).

What is logged, as scalars (NOTE [Exact scalars]):

=======================  =========================================================================
``<column>``             every column of the run's ``history.csv`` but ``step`` (``train_loss``,
                         ``val_<metric>``, ``density``, ``epoch``, ``seconds``), at the row's step,
                         live after each evaluation
``lr``                   the learning rate at each evaluation (constant: the toolkit has no
                         schedule; read from the optimizer's config, ``lr``)
``mask/ir_ratio``        the mask's kept input / kept recurrent weights, once (step 0)
``mask/gate_share/<g>``  the share of the kept weights in gate g (they sum to 1), once (step 0)
=======================  =========================================================================

NOTE [Exact scalars]
Scalars are written as float64 tensor summaries (``add_scalar(..., new_style=True,
double_precision=True)``), so an event file's values equal ``history.csv`` to the last bit
(TensorBoard's default float32 would round them). TensorBoard's scalar dashboard shows them as
usual; read them back with ``EventAccumulator(...).Tensors(tag)``.

A resumed run logs the rows of its earlier sessions when it finishes (:meth:`TensorBoardLog.finish`
adds every row of the history not yet logged), so the event files always hold the whole history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .errors import fail

__all__ = ["TensorBoardLog", "write_study_runs"]


def _require_tensorboard(fn: str) -> Any:
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard may be cached without it)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise fail(fn, "the tensorboard package for --log tensorboard "
                   "(pip install 'spectrumkit[tensorboard]')", "no tensorboard installed") from None
    return SummaryWriter


class TensorBoardLog:
    """A ``train(callback=...)`` writing a run's curves to TensorBoard event files in ``logdir``.

    Args:
        logdir: the run's event folder (created; one run per folder).
        lr: the learning rate, logged at each evaluation as ``lr``.

    Call :meth:`log_mask` once with the mask held and :meth:`finish` with the history at the end.
    Raises :class:`SpectrumkitError` when the ``tensorboard`` package is missing.
    """

    def __init__(self, logdir: str | Path, *, lr: float) -> None:
        writer_cls = _require_tensorboard("TensorBoardLog")
        self.logdir = Path(logdir)
        self.lr = float(lr)
        self._writer = writer_cls(log_dir=str(self.logdir))
        self._logged: set[int] = set()
        self.mask_logged = False

    def _scalar(self, tag: str, value: float, step: int) -> None:
        self._writer.add_scalar(tag, float(value), step, new_style=True, double_precision=True)

    def __call__(self, info: Mapping[str, Any]) -> None:
        """The training callback: logs ``info["row"]``, the history row of an evaluation."""
        if info.get("event") == "start":  # NOTE [Pipeline callback] in spectrumkit.pipeline
            model = info["model"]
            self.log_mask(model.cell, info.get("mask"), model.input_size, model.hidden_size)
        row = info.get("row")
        if row is not None:
            self.log_row(row)
        spectra = info.get("spectra")
        if spectra is not None and (row is not None or info.get("event") == "start"):
            hist = spectra().get("sv_hist")
            if hist is not None:
                self.log_sv_hist(hist, int(info["step"]))
        if row is not None or info.get("event") == "start":
            self._writer.flush()  # a live view: each evaluation reaches the disk

    def log_row(self, row: Mapping[str, Any]) -> None:
        """Log one history row (every column but ``step``, and ``lr``) at its step, once."""
        step = int(row["step"])
        if step in self._logged:
            return
        self._logged.add(step)
        for k, v in row.items():
            if k != "step" and v is not None and not (isinstance(v, float) and math.isnan(v)):
                self._scalar(k, v, step)  # a missing value (an empty CSV field) is not logged
        self._scalar("lr", self.lr, step)

    def log_mask(self, cell: str, mask: Mapping[str, torch.Tensor] | None, input_size: int,
                 hidden_size: int) -> None:
        r"""Log the mask's I/R ratio and per-gate shares of the kept weights at step 0.

        ``mask/ir_ratio`` = kept input / kept recurrent weights
        (:func:`~spectrumkit.anatomy.anatomy_summary`); ``mask/gate_share/<g>`` = kept in gate g /
        all kept (:func:`~spectrumkit.anatomy.mask_anatomy`). Nothing for a dense run (None).
        """
        if mask is None or self.mask_logged:
            return
        from .anatomy import anatomy_summary, mask_anatomy

        summary = anatomy_summary(cell, mask, input_size, hidden_size)
        table = mask_anatomy(cell, mask, input_size, hidden_size)
        kept = table.groupby("gate", sort=False)["kept"].sum()
        total = int(kept.sum())
        self.log_mask_numbers(summary["ir_ratio"], {str(g): k / total if total else math.nan
                                                    for g, k in kept.items()})

    def log_mask_numbers(self, ir_ratio: float, shares: Mapping[str, float | None]) -> None:
        """Log ``mask/ir_ratio`` and ``mask/gate_share/<g>`` (as computed already) at step 0."""
        self.mask_logged = True
        self._scalar("mask/ir_ratio", ir_ratio, 0)
        for gate, share in shares.items():
            self._scalar(f"mask/gate_share/{gate}", math.nan if share is None else share, 0)

    def log_sv_hist(self, hist: Mapping[str, Any], step: int) -> None:
        r"""Log a recorded ``sv_hist`` (``edges``, ``counts``, ``mean``, ``n``) as the histogram
        ``sv_hist`` at ``step``, and its mean as the scalar ``sv_mean``.

        NOTE [Histograms of recorded bins]
        The record keeps bins, not the singular values, so the histogram is written raw: bucket
        limits = the right edges, buckets = the counts (float64, exactly as recorded); ``min`` and
        ``max`` are the outer edges of the first and last bin (TensorBoard draws the buckets
        between them), ``num`` = n, ``sum`` = mean · n, and ``sum_squares``, not recorded, NaN.
        """
        edges, counts = [float(e) for e in hist["edges"]], [float(c) for c in hist["counts"]]
        self._writer.add_histogram_raw("sv_hist", min=edges[0], max=edges[-1], num=hist["n"],
                                       sum=float(hist["mean"]) * hist["n"],
                                       sum_squares=math.nan, bucket_limits=edges[1:],
                                       bucket_counts=counts, global_step=step)
        self._scalar("sv_mean", hist["mean"], step)

    def finish(self, history: pd.DataFrame) -> None:
        """Log the rows of ``history`` not logged yet (earlier sessions, a divergence), close."""
        for row in history.to_dict(orient="records"):
            self.log_row(row)
        self._writer.flush()
        self._writer.close()


def write_study_runs(study_dir: str | Path, logdir: str | Path) -> list[Path]:
    """One TensorBoard run per stored trial of a study folder ``OUT/NAME``: ``logdir/<key>``.

    Written from the trial files after the fact (so for every executor): each run holds the
    trial's stored history (as :class:`TensorBoardLog` logs a train run's ``history.csv``), ``lr``
    from its config, and, when the trial recorded ``anatomy``, the mask's I/R ratio and gate
    shares (its metrics ``ir_ratio`` and ``share_<g>``). ``logdir`` must be new or empty (a second
    export into the same runs would repeat their points). Returns the run folders, by key.
    """
    from .study.store import ResultStore

    fn = "write_study_runs"
    _require_tensorboard(fn)
    store = ResultStore(study_dir)
    if not store.trials.is_dir():
        raise fail(fn, "a study folder holding trials/ (OUT/<study>)", str(study_dir))
    out = Path(logdir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise fail(fn, "a new or empty folder for the runs", f"{out}, which is not empty")
    keys = sorted(p.stem for p in store.trials.glob("*.json"))
    results = [r for k in keys if (r := store.read(k)) is not None]
    if not results:
        raise fail(fn, "a study folder with at least one stored trial in trials/",
                   f"none in {study_dir}")
    runs = []
    for r in results:
        log = TensorBoardLog(out / r["key"], lr=r["config"]["lr"])
        metrics = r.get("metrics") or {}
        if metrics.get("ir_ratio") is not None:
            log.log_mask_numbers(metrics["ir_ratio"], {k.removeprefix("share_"): v
                                                       for k, v in metrics.items()
                                                       if k.startswith("share_")})
        log.finish(pd.DataFrame(r.get("history") or {}))
        runs.append(log.logdir)
    return runs
