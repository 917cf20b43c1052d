"""The built-in cells' names, gates, shapes and sizes read without torch
(``spectrumkit/_cell_names.py``) are those of the cells themselves (``spectrumkit/cells.py``)."""

from __future__ import annotations

import sys

from spectrumkit import _cell_names, cells


def test_the_table_describes_the_built_in_cells():
    assert tuple(_cell_names.BUILTIN_CELLS) == cells.available()
    for name, (gates, factor, shapes) in _cell_names.BUILTIN_CELLS.items():
        cell = cells.get(name)
        assert (gates, factor * 5) == (cell.gates, cell.state_size(5))
        assert shapes(3, 5) == cell.param_shapes(3, 5)
    assert cells.BLOCKS == ("input", "recurrent", "cell", "bias")


def test_the_lookups_give_the_registry_once_cells_is_imported():
    assert _cell_names.cell_names() == cells.available()
    assert _cell_names.cell_gates("lstm") == ("i", "f", "g", "o")
    assert _cell_names.tensor_names() == {"weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                          "weight_ch", "bias"}
    # peephole LSTM at D = 3, N = 5: S = 2N; 4N·D + 4N·N + 4N·N + 4N entries
    assert _cell_names.cell_sizes("peephole_lstm", 3, 5) == (10, 60 + 100 + 100 + 20)
    assert _cell_names.cell_sizes("gru", 3, 5) == (5, cells.count_params("gru", 3, 5, True))
    assert _cell_names.cell_sizes("nope", 3, 5) is None


def test_the_lookups_without_cells_imported_give_the_same_answers(monkeypatch):
    def answers():
        return (_cell_names.cell_names(),
                [_cell_names.cell_gates(c) for c in _cell_names.BUILTIN_CELLS],
                [_cell_names.cell_sizes(c, 3, 5) for c in (*_cell_names.BUILTIN_CELLS, "nope")],
                _cell_names.tensor_names())

    imported = answers()
    monkeypatch.delitem(sys.modules, "spectrumkit.cells")
    assert answers() == imported
