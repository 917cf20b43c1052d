"""The built-in cells by name, without torch: their names, gates and parameter tensors.

:mod:`spectrumkit.cells` owns the cells (their equations, shapes and layouts) and builds the
built-in ones from the names here; a configuration's checks (``ModelConfig.cell``, an init
scheme's tensor overrides, a study's metric names) read them here, so that loading a run
configuration or a study imports no torch (NOTE [Lazy commands] in ``cli/_lazy.py``).

NOTE [Cell names without torch]
Once :mod:`spectrumkit.cells` is imported its registry is the answer (:func:`cell_names`,
:func:`tensor_names`); before, no cell but the built-in ones can exist in the process, and the
table :data:`BUILTIN_CELLS` is the answer (``tests/test_cell_names.py`` checks that it describes
the registry's cells).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from types import ModuleType

from .errors import check_positive_int

__all__ = ["BLOCKS", "BUILTIN_CELLS", "GRU_GATES", "LSTM_GATES", "RNN_GATES", "cell_gates",
           "cell_names", "cell_sizes", "peephole_shapes", "tensor_names", "torch_shapes"]

#: The blocks a parameter entry can belong to. ``cell`` is the peephole block (weights from c).
BLOCKS = ("input", "recurrent", "cell", "bias")

RNN_GATES = ("h",)
LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")

Shapes = Callable[[int, int], dict[str, tuple[int, ...]]]


def torch_shapes(g: int) -> Shapes:
    """The parameter shapes of torch's recurrent layers with ``g`` gates, at (D, N)."""
    def shapes(D: int, N: int) -> dict[str, tuple[int, ...]]:
        return {"weight_ih": (g * N, D), "weight_hh": (g * N, N), "bias_ih": (g * N,),
                "bias_hh": (g * N,)}
    return shapes


def peephole_shapes(D: int, N: int) -> dict[str, tuple[int, ...]]:
    """The parameter shapes of the peephole LSTM at (D, N)."""
    return {"weight_ih": (4 * N, D), "weight_hh": (4 * N, N), "weight_ch": (4 * N, N),
            "bias": (4 * N,)}


#: ``{built-in cell: (its gates, its state factor S / N, its parameter shapes)}``, in the
#: registry's order.
BUILTIN_CELLS: dict[str, tuple[tuple[str, ...], int, Shapes]] = {
    "rnn": (RNN_GATES, 1, torch_shapes(1)),
    "rnn_relu": (RNN_GATES, 1, torch_shapes(1)),
    "lstm": (LSTM_GATES, 2, torch_shapes(4)),
    "peephole_lstm": (LSTM_GATES, 2, peephole_shapes),
    "gru": (GRU_GATES, 1, torch_shapes(3)),
    "gru_cho": (GRU_GATES, 1, torch_shapes(3)),
}


def _cells() -> ModuleType | None:
    """:mod:`spectrumkit.cells` if it is imported (NOTE [Cell names without torch])."""
    cells = sys.modules.get("spectrumkit.cells")
    return cells if cells is not None and hasattr(cells, "available") else None


def cell_names() -> tuple[str, ...]:
    """The names :func:`spectrumkit.cells.available` gives, without importing it."""
    cells = _cells()
    return tuple(cells.available()) if cells is not None else tuple(BUILTIN_CELLS)


def cell_gates(name: str) -> tuple[str, ...]:
    """The gates of the cell ``name`` (one of :func:`cell_names`)."""
    cells = _cells()
    return tuple(cells.get(name).gates) if cells is not None else BUILTIN_CELLS[name][0]


def cell_sizes(name: str, input_size: int, hidden_size: int) -> tuple[int, int] | None:
    """``(S, P)``: the state size and the parameter entries, biases included, of the cell
    ``name`` at (D, N) (:meth:`spectrumkit.cells.Cell.state_size`,
    :func:`spectrumkit.cells.count_params`); None for a name not in :func:`cell_names`."""
    cells = _cells()
    if cells is not None:
        if name not in cells.available():
            return None
        return (cells.get(name).state_size(hidden_size),
                cells.count_params(name, input_size, hidden_size, include_bias=True))
    if name not in BUILTIN_CELLS:
        return None
    check_positive_int("count_params", "input_size", input_size)
    check_positive_int("count_params", "hidden_size", hidden_size)
    _, factor, shapes = BUILTIN_CELLS[name]
    return factor * hidden_size, sum(math.prod(s) for s in shapes(input_size, hidden_size).values())


def tensor_names() -> set[str]:
    """The parameter tensors' names of every cell of :func:`cell_names`."""
    cells = _cells()
    if cells is not None:
        return {n for c in cells.available() for n in cells.get(c).param_shapes(1, 1)}
    return {n for _, _, shapes in BUILTIN_CELLS.values() for n in shapes(1, 1)}
