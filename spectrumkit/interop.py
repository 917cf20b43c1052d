"""Bit-exact conversion between spectrumkit cells and ``torch.nn`` recurrent modules.

Supported: ``nn.RNN`` (tanh or relu), ``nn.LSTM`` and ``nn.GRU`` with one unidirectional layer
(``batch_first`` either way), and ``nn.RNNCell``, ``nn.LSTMCell``, ``nn.GRUCell``. Because the
built-in cells use torch.nn's names and gate order (NOTE [Layouts follow PyTorch] in ``cells.py``),
conversion is a renaming plus a copy.

A module built with ``bias=False`` converts to zero biases; converting back then gives a module with
``bias=True`` and zero biases, which computes the same function.

>>> import torch
>>> gru = torch.nn.GRU(3, 4)
>>> cell, params = from_torch(gru)
>>> cell.name, torch.equal(params["weight_hh"], gru.weight_hh_l0)
('gru', True)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .cells import Cell, check_params, get
from .errors import fail

__all__ = ["from_torch", "to_torch"]

_SEQ = (nn.RNN, nn.LSTM, nn.GRU)
_CELLS = (nn.RNNCell, nn.LSTMCell, nn.GRUCell)


def _cell_name(module: nn.Module) -> str:
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        return "lstm"
    if isinstance(module, (nn.GRU, nn.GRUCell)):
        return "gru"
    return "rnn_relu" if module.nonlinearity == "relu" else "rnn"


def from_torch(module: nn.Module) -> tuple[Cell, dict[str, torch.Tensor]]:
    """Convert a torch.nn recurrent module into ``(cell, params)``.

    ``params`` are detached copies (same dtype and device as the module). Raises
    :class:`SpectrumkitError` naming the setting for ``num_layers > 1``, ``bidirectional``,
    ``proj_size`` and ``dropout``, and for unsupported module types.
    """
    fn = "from_torch"
    if isinstance(module, _SEQ):
        if module.num_layers != 1:
            raise fail(fn, "num_layers=1", f"num_layers={module.num_layers}")
        if module.bidirectional:
            raise fail(fn, "a unidirectional module", "bidirectional=True")
        if getattr(module, "proj_size", 0):
            raise fail(fn, "proj_size=0", f"proj_size={module.proj_size}")
        if module.dropout:
            raise fail(fn, "dropout=0 (dropout between layers is not supported)",
                       f"dropout={module.dropout}")
        suffix = "_l0"
    elif isinstance(module, _CELLS):
        suffix = ""
    else:
        raise fail(fn, "nn.RNN, nn.LSTM, nn.GRU or their *Cell versions", type(module).__name__)
    cell = get(_cell_name(module))
    w_ih = getattr(module, "weight_ih" + suffix).detach().clone()
    w_hh = getattr(module, "weight_hh" + suffix).detach().clone()
    if module.bias:
        b_ih = getattr(module, "bias_ih" + suffix).detach().clone()
        b_hh = getattr(module, "bias_hh" + suffix).detach().clone()
    else:
        b_ih = w_ih.new_zeros(w_ih.shape[0])
        b_hh = w_ih.new_zeros(w_ih.shape[0])
    return cell, {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}


def to_torch(cell: str | Cell, params: Mapping[str, torch.Tensor], *, kind: str = "sequence",
             batch_first: bool = False) -> nn.Module:
    """Build the torch.nn module that computes ``cell`` with ``params``.

    ``kind="sequence"`` gives ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (one layer, ``batch_first`` as
    given); ``kind="cell"`` gives the ``*Cell`` version. The module's parameters are copies, with the
    dtype and device of ``params``. The peephole LSTM and user cells have no torch.nn counterpart
    and are refused.
    """
    fn = "to_torch"
    cell = get(cell)
    if cell.builtin and cell.name == "gru_cho":
        raise fail(fn, "a cell with a torch.nn counterpart (rnn, rnn_relu, lstm, gru); torch.nn "
                   "has no GRU with the reset before the product", repr(cell.name))
    if cell.name not in ("rnn", "rnn_relu", "lstm", "gru") or not cell.builtin:
        raise fail(fn, "a cell with a torch.nn counterpart (rnn, rnn_relu, lstm, gru)",
                   repr(cell.name))
    if kind not in ("sequence", "cell"):
        raise fail(fn, "kind 'sequence' or 'cell'", repr(kind))
    D, N = check_params(fn, cell, params)
    w = params["weight_ih"]
    factory = {"dtype": w.dtype, "device": w.device}
    if kind == "sequence":
        cls = {"rnn": nn.RNN, "rnn_relu": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell.name]
        extra = {"nonlinearity": "relu" if cell.name == "rnn_relu" else "tanh"} \
            if cls is nn.RNN else {}
        module = cls(D, N, batch_first=batch_first, **extra, **factory)
        suffix = "_l0"
    else:
        cls = {"rnn": nn.RNNCell, "rnn_relu": nn.RNNCell, "lstm": nn.LSTMCell,
               "gru": nn.GRUCell}[cell.name]
        extra = {"nonlinearity": "relu" if cell.name == "rnn_relu" else "tanh"} \
            if cls is nn.RNNCell else {}
        module = cls(D, N, **extra, **factory)
        suffix = ""
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(module, name + suffix).copy_(params[name])
    return module
