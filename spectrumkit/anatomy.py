r"""Mask anatomy: where a mask keeps its weights (the paper's Figures 1 and 3).

Legend: D = input size, N = hidden size, G = gates, K = kept entries.

Every entry of a cell's parameters belongs to one gate and one block (input, recurrent, cell —
the peephole weights from c — or bias); see ``cells.entry_labels``. The anatomy counts the kept
entries per (gate, block); the summary condenses it into the numbers the paper discusses.

NOTE [Per-unit in-degree]
Hidden unit j (0 ≤ j < N) receives, for every gate g, the row g·N + j of every WEIGHT tensor in the
mask (input, recurrent and cell blocks; biases never count, even when masked). Its in-degree is the
number of kept entries in those rows, over all gates and weight blocks: for a GRU it lies in
0..3(D + N), for the peephole LSTM in 0..4(D + 2N). A unit is dead when its in-degree is 0 — no
kept weight reaches any of its gates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from .cells import BLOCKS, Cell, TensorLayout, entry_labels, get, require_layout
from .errors import check_positive_int, fail
from .masks import check_mask

__all__ = ["anatomy_summary", "connection_map", "mask_anatomy"]

_ROW_NAMES = {"input": "input", "recurrent": "hidden", "cell": "cell"}


def _check(fn: str, cell: str | Cell, mask: Any, input_size: int, hidden_size: int
           ) -> tuple[Cell, dict[str, tuple[torch.Tensor, str]], dict[str, torch.Tensor]]:
    cell = get(cell)
    check_positive_int(fn, "input_size", input_size)
    check_positive_int(fn, "hidden_size", hidden_size)
    _layout(fn, cell)
    labels = entry_labels(cell, input_size, hidden_size)
    checked = check_mask(fn, mask, {n: tuple(lab[0].shape) for n, lab in labels.items()},
                         what=f"tensors of {cell.name}",
                         shape_note=f" (D={input_size}, N={hidden_size})")
    out = {n: m.detach().cpu() for n, m in checked.items()}
    return cell, labels, out


def mask_anatomy(cell: str | Cell, mask: Mapping[str, torch.Tensor], input_size: int,
                 hidden_size: int) -> pd.DataFrame:
    r"""Kept entries per (gate, block) of the masked tensors.

    Returns a DataFrame with columns exactly ``gate, block, kept, total, fraction`` and one row per
    (gate, block) with total > 0, in gate order, then block order (input, recurrent, cell, bias).
    The ``kept`` column sums to K, the mask's kept count; tensors absent from the mask are not
    counted.

    >>> m = {"weight_ih": torch.ones(3, 2, dtype=torch.bool), "weight_hh": torch.eye(3) > 0}
    >>> mask_anatomy("rnn", m, 2, 3)[["block", "kept", "total"]].values.tolist()
    [['input', 6, 6], ['recurrent', 3, 9]]
    """
    cell, labels, mask = _check("mask_anatomy", cell, mask, input_size, hidden_size)
    rows = []
    for gi, gate in enumerate(cell.gates):
        for block in BLOCKS:
            kept = total = 0
            for n, m in mask.items():
                g, b = labels[n]
                if b == block:
                    sel = g == gi
                    total += int(sel.sum())
                    kept += int((m & sel).sum())
            if total:
                rows.append({"gate": gate, "block": block, "kept": kept, "total": total,
                             "fraction": kept / total})
    return pd.DataFrame(rows, columns=["gate", "block", "kept", "total", "fraction"])


def _in_degree(cell: Cell, labels: dict, mask: dict[str, torch.Tensor], N: int) -> np.ndarray:
    """(N,) per-unit in-degree of NOTE [Per-unit in-degree]."""
    layout = _layout("anatomy_summary", cell)
    deg = torch.zeros(N, dtype=torch.long)
    for n, m in mask.items():
        if labels[n][1] == "bias":
            continue
        lay = layout[n]
        rows = m.shape[0]
        if m.dim() != 2 or rows != len(lay.gates) * N:
            raise fail("anatomy_summary", f"weight {n!r} with G·N = {len(lay.gates)}·{N} rows "
                       "(one row per gate and unit)", f"shape {tuple(m.shape)}")
        deg += m.sum(1).view(len(lay.gates), N).sum(0)
    return deg.numpy()


def anatomy_summary(cell: str | Cell, mask: Mapping[str, torch.Tensor], input_size: int,
                    hidden_size: int) -> dict[str, float | int]:
    r"""The numbers of the paper's Figure 1 and more, for one mask.

    Keys:
        ``ir_ratio``: kept input weights / kept recurrent weights (``inf`` if no recurrent weight
        is kept); ``dense_ir_ratio``: the same for the dense layer (D/N for every built-in:
        33,600 / 480,000 = 0.07 for a GRU at D=28, N=400); ``gate_imbalance``: max / min over gates
        of the kept fraction of the gate's masked entries (``inf`` if a gate keeps nothing);
        ``dead_units``, ``in_degree_mean``, ``in_degree_min``, ``in_degree_max``: NOTE [Per-unit
        in-degree].

    >>> dense = {"weight_ih": torch.ones(1200, 28, dtype=torch.bool),
    ...          "weight_hh": torch.ones(1200, 400, dtype=torch.bool)}
    >>> s = anatomy_summary("gru", dense, 28, 400)
    >>> round(s["ir_ratio"], 12), s["gate_imbalance"], s["dead_units"], s["in_degree_max"]
    (0.07, 1.0, 0, 1284)
    """
    fn = "anatomy_summary"
    cell, labels, mask = _check(fn, cell, mask, input_size, hidden_size)
    table = mask_anatomy(cell, mask, input_size, hidden_size)
    by_block = table.groupby("block")[["kept", "total"]].sum()

    def block(b: str, col: str) -> int:
        return int(by_block.loc[b, col]) if b in by_block.index else 0

    def ratio(a: float, b: float) -> float:
        return a / b if b else (float("inf") if a else float("nan"))

    by_gate = table.groupby("gate", sort=False)[["kept", "total"]].sum()
    fr = (by_gate["kept"] / by_gate["total"]).to_numpy()
    deg = _in_degree(cell, labels, mask, hidden_size)
    return {
        "ir_ratio": ratio(block("input", "kept"), block("recurrent", "kept")),
        "dense_ir_ratio": ratio(block("input", "total"), block("recurrent", "total")),
        "gate_imbalance": ratio(float(fr.max()), float(fr.min())),
        "dead_units": int((deg == 0).sum()),
        "in_degree_mean": float(deg.mean()),
        "in_degree_min": int(deg.min()),
        "in_degree_max": int(deg.max()),
    }


def connection_map(cell: str | Cell, mask: Mapping[str, torch.Tensor],
                   input_size: int | None = None, hidden_size: int | None = None
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    r"""The kept/pruned map of the paper's Figure 3.

    Rows are the sources [input (D); hidden (N); cell (N), peephole LSTM only], columns are the
    targets gates × units (G·N, gate-major: column g·N + j is gate g of unit j). Entry [r, c] is
    True when the weight from source r to target c is kept, i.e. ``map[off_b + k, c] =
    mask[W_b][c, k]`` for the weight tensor W_b of block b at row offset off_b. Every weight tensor
    of the cell must be in the mask; biases are ignored. D and N are inferred from the mask when
    not given.

    Returns:
        ``(map, meta)``: a numpy bool array (D + N (+ N), G·N) and ``{"row_blocks": [["input", D],
        ["hidden", N], ...], "gates": [...], "hidden_size": N}``.

    >>> m = {"weight_ih": torch.ones(3, 2, dtype=torch.bool), "weight_hh": torch.eye(3) > 0}
    >>> cmap, meta = connection_map("rnn", m)
    >>> cmap.shape, meta["row_blocks"], int(cmap[2:].sum())
    ((5, 3), [['input', 2], ['hidden', 3]], 3)
    """
    fn = "connection_map"
    cell = get(cell)
    layout = _layout(fn, cell)
    weights = [n for n, lay in layout.items() if lay.block != "bias"]
    if not isinstance(mask, Mapping) or not all(n in mask for n in weights):
        got = sorted(mask) if isinstance(mask, Mapping) else type(mask).__name__
        raise fail(fn, f"a mask with every weight tensor of {cell.name} {sorted(weights)}", got)
    input_size, hidden_size = _infer_sizes(fn, layout, weights, mask, input_size, hidden_size)
    cell, labels, mask = _check(fn, cell, mask, input_size, hidden_size)
    row_blocks, parts = [], []
    for block in ("input", "recurrent", "cell"):
        names = [n for n in weights if layout[n].block == block]
        if names:
            part = _block_map(fn, cell, layout, block, {n: mask[n] for n in names}, hidden_size)
            row_blocks.append([_ROW_NAMES[block], int(part.shape[1])])
            parts.append(part.T)
    cmap = torch.cat(parts, 0).numpy()
    return cmap, {"row_blocks": row_blocks, "gates": list(cell.gates), "hidden_size": hidden_size}


def _layout(fn: str, cell: Cell) -> Mapping[str, TensorLayout]:
    """The cell's layout, through the one check :func:`~spectrumkit.cells.require_layout`."""
    layout = require_layout(fn, cell).layout
    assert layout is not None  # require_layout refuses a cell without one
    return layout


def _infer_sizes(fn: str, layout: Mapping[str, TensorLayout], weights: list[str],
                 mask: Mapping[str, Any], input_size: int | None, hidden_size: int | None
                 ) -> tuple[int, int]:
    """D and N as given, or read off the weight masks' shapes (N from rows = G·N)."""
    if hidden_size is None or input_size is None:
        for n in weights:
            lay, m = layout[n], mask[n]
            if not isinstance(m, torch.Tensor) or m.dim() != 2:
                raise fail(fn, f"mask[{n!r}] a 2-D bool tensor", getattr(m, "shape", m))
            if hidden_size is None and m.shape[0] % len(lay.gates) == 0:
                hidden_size = m.shape[0] // len(lay.gates)
            if input_size is None and lay.block == "input":
                input_size = int(m.shape[1])
    if input_size is None or hidden_size is None:
        raise fail(fn, "input_size and hidden_size (they could not be inferred from the mask)",
                   f"{input_size}, {hidden_size}")
    return input_size, hidden_size


def _block_map(fn: str, cell: Cell, layout: Mapping[str, TensorLayout], block: str,
               masks: Mapping[str, torch.Tensor], N: int) -> torch.Tensor:
    """(G·N, width) kept map of one block: row g·N + j is gate g of unit j, from ``masks``."""
    G = len(cell.gates)
    part: torch.Tensor | None = None
    covered: set[str] = set()
    for n, m in masks.items():
        lay = layout[n]
        if len(set(lay.gates) & covered) or m.shape[0] != len(lay.gates) * N or (
                part is not None and part.shape[1] != m.shape[1]):
            raise fail(fn, f"one {block} weight row per (gate, unit) in {cell.name}'s layout",
                       f"{n!r} of shape {tuple(m.shape)} overlapping {sorted(covered)}")
        covered |= set(lay.gates)
        full = torch.zeros(G * N, m.shape[1], dtype=torch.bool)
        for k, gate in enumerate(lay.gates):
            gi = cell.gates.index(gate)
            full[gi * N:(gi + 1) * N] = m[k * N:(k + 1) * N]
        part = full if part is None else part | full
    assert part is not None  # masks holds at least one tensor
    return part
