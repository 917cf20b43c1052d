r"""TensorBoard curves of a training run (the ``tensorboard`` extra): ``spectrumkit train --log
tensorboard`` writes them to ``OUT/tensorboard``; from Python pass a :class:`TensorBoardLog` as
``train(callback=...)`` / ``run_pipeline(callback=...)``.

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

__all__ = ["TensorBoardLog"]


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

    def _scalar(self, tag: str, value: float, step: int) -> None:
        self._writer.add_scalar(tag, float(value), step, new_style=True, double_precision=True)

    def __call__(self, info: Mapping[str, Any]) -> None:
        """The training callback: logs ``info["row"]``, the history row of an evaluation."""
        row = info.get("row")
        if row is not None:
            self.log_row(row)
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
        if mask is None:
            return
        from .anatomy import anatomy_summary, mask_anatomy

        summary = anatomy_summary(cell, mask, input_size, hidden_size)
        self._scalar("mask/ir_ratio", summary["ir_ratio"], 0)
        table = mask_anatomy(cell, mask, input_size, hidden_size)
        kept = table.groupby("gate", sort=False)["kept"].sum()
        total = int(kept.sum())
        for gate, k in kept.items():
            self._scalar(f"mask/gate_share/{gate}", k / total if total else math.nan, 0)

    def finish(self, history: pd.DataFrame) -> None:
        """Log the rows of ``history`` not logged yet (earlier sessions, a divergence), close."""
        for row in history.to_dict(orient="records"):
            self.log_row(row)
        self._writer.flush()
        self._writer.close()
