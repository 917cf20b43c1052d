r"""Recurrent cells: one unbatched step, a parameter layout, and a registry of the built-ins.

Legend used in every docstring: T = steps, B = batch, D = input size, N = hidden size,
S = state size, P = parameters, G = gates.

A cell is a pure function of one example,

.. math::  s_t = \mathrm{step}(\theta, x_t, s_{t-1}),\qquad x_t\in\mathbb R^D,\ s_t\in\mathbb R^S,

plus the shapes of :math:`\theta` and a *layout* that says which gate and which block (input,
recurrent, cell/peephole, bias) every parameter entry belongs to. The state is ONE flat vector: for
the LSTMs :math:`s = [h, c]` and S = 2N, for the others S = N. ``cell.output(s)`` is h, the first N
entries.

Built-in cells follow ``torch.nn``'s tensor names and gate order (NOTE [Layouts follow PyTorch]):

=================  ===================================  ===========================================
cell               gates (row blocks of every matrix)   equations
=================  ===================================  ===========================================
``rnn``            h                                    h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
``rnn_relu``       h                                    same with relu
``lstm``           i, f, g, o                           c' = σ(f)c + σ(i)tanh(g); h' = σ(o)tanh(c')
``peephole_lstm``  i, f, g, o                           as lstm, every gate also sees W_ch c
``gru``            r, z, n                              n = tanh(W_in x + b_in + r(W_hn h + b_hn));
                                                        h' = (1 - z) n + z h
``gru_cho``        r, z, n                              n = tanh(W_in x + b_in + W_hn(r h) + b_hn);
                                                        h' = (1 - z) n + z h
=================  ===================================  ===========================================

``gru_cho`` is the GRU of Cho et al. (2014), Keras' ``GRU(reset_after=False)``: the reset gate
multiplies h *before* the recurrent matrix product (NOTE [GRU with the reset before the product]
in ``_cell_math.py``). It has ``gru``'s tensors, gate order and counts; ``torch.nn`` has no such
module.

The built-in steps also broadcast over leading batch dimensions: ``x`` may be ``(..., D)`` and
``s`` ``(..., S)``. User cells need not; every batched path in spectrumkit uses ``torch.func.vmap``
for them.

Example (weights only, D = 28, N = 400, the paper's Table 1 counts):

>>> [count_params(get(c), 28, 400) for c in ("rnn", "lstm", "peephole_lstm", "gru", "gru_cho")]
[171200, 684800, 1324800, 513600, 513600]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from . import _cell_math as eq
from ._cell_names import BLOCKS, GRU_GATES, LSTM_GATES, RNN_GATES, peephole_shapes, torch_shapes
from .errors import SpectrumkitError, check_float_tensor, check_positive_int, fail

__all__ = [
    "BLOCKS",
    "Cell",
    "TensorLayout",
    "available",
    "check_params",
    "count_params",
    "entry_labels",
    "get",
    "make_cell",
]

Params = Mapping[str, torch.Tensor]
StepFn = Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor]
#: ``jacobian(params, x (B, D), s (B, S)) -> J (B, S, S)``: see :attr:`Cell.jacobian`.
JacobianFn = Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor]

#: BLOCKS (from ``_cell_names.py``): the blocks a parameter entry can belong to. ``cell`` is the
#: peephole block (weights from c).


@dataclass(frozen=True)
class TensorLayout:
    """Where the entries of one parameter tensor belong.

    The tensor's first dimension is split into ``len(gates)`` equal row blocks, one per gate, in
    order; every entry of the tensor belongs to ``block``.
    """

    block: str
    gates: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise fail("TensorLayout", f"block in {BLOCKS}", repr(self.block))
        if not self.gates:
            raise fail("TensorLayout", "at least one gate", "none")


@dataclass(frozen=True, eq=False)
class Cell:
    r"""One recurrent cell: a pure unbatched ``step`` plus its parameter shapes and layout.

    Attributes:
        name: registry name (``"gru"``) or a user's label.
        step: ``step(params, x, s) -> s_next`` with ``x`` of shape (D,) and ``s`` of shape (S,).
        param_shapes: ``param_shapes(D, N) -> {name: shape}``.
        state_factor: S = state_factor · N (2 for the LSTMs, else 1).
        gates: gate names, in row order.
        layout: ``{param name: TensorLayout}``, or None when the cell does not declare one
            (mask anatomy then refuses it; everything else works).
        broadcasts: whether ``step`` accepts leading batch dimensions. If False, batched paths vmap.
        jacobian: the cell's closed-form step Jacobian, or None (then ``method="closed_form"`` is
            refused and ``"auto"`` uses ``jacrev``). Contract, batched over B examples:
            ``jacobian(params, x (B, D), s (B, S)) -> J (B, S, S)`` with
            ``J[b, i, j] = ∂step(params, x[b], s)_i / ∂s_j`` at ``s = s[b]`` (index order
            (output, input), NOTE [Jacobian convention] in ``jacobians.py``); ordinary torch code,
            differentiable with respect to ``params`` and ``s`` by autograd. It is called on one
            step's rows at a time. The built-in cells carry theirs (NOTE [Closed-form engine]).
        builtin: True only for the cells defined in this module.
    """

    name: str
    step: StepFn
    param_shapes: Callable[[int, int], dict[str, tuple[int, ...]]]
    state_factor: int = 1
    gates: tuple[str, ...] = ("h",)
    layout: Mapping[str, TensorLayout] | None = None
    broadcasts: bool = False
    jacobian: JacobianFn | None = field(default=None, repr=False)
    builtin: bool = field(default=False, repr=False)

    def state_size(self, hidden_size: int) -> int:
        """S for a hidden size N."""
        check_positive_int("Cell.state_size", "hidden_size", hidden_size)
        return self.state_factor * hidden_size

    def output(self, s: torch.Tensor) -> torch.Tensor:
        """The readout h: the first N = S / state_factor entries of ``s`` (..., S) -> (..., N)."""
        return s[..., : s.shape[-1] // self.state_factor]

    def is_bias(self, name: str) -> bool:
        """Whether tensor ``name`` is a bias (by layout, or by a ``bias`` prefix without one)."""
        if self.layout is not None and name in self.layout:
            return self.layout[name].block == "bias"
        return name.startswith("bias")

    def __repr__(self) -> str:
        return f"Cell({self.name!r}, S={self.state_factor}N, gates={self.gates})"


def make_cell(
    name: str,
    step: StepFn,
    param_shapes: Callable[[int, int], dict[str, tuple[int, ...]]],
    *,
    state_factor: int = 1,
    gates: tuple[str, ...] = ("h",),
    layout: Mapping[str, TensorLayout] | None = None,
    broadcasts: bool = False,
    jacobian: JacobianFn | None = None,
) -> Cell:
    """Build a user-defined cell from a one-example step function and its parameter shapes.

    Every spectrumkit API accepts the result: autodiff paths (jacrev, jacfwd, jvp) work unchanged.
    ``jacobian``, if given, is its closed-form step Jacobian (contract: :attr:`Cell.jacobian`),
    used by ``step_jacobians(method="closed_form" | "auto")``; without one that method is refused.

    >>> import torch
    >>> lin = make_cell("linear", lambda p, x, s: p["A"] @ s + p["B"] @ x,
    ...                 lambda D, N: {"A": (N, N), "B": (N, D)})
    >>> lin.state_size(3)
    3
    """
    if jacobian is not None and not callable(jacobian):
        raise fail("make_cell", "jacobian to be callable or None", type(jacobian).__name__)
    if not callable(step) or not callable(param_shapes):
        raise fail("make_cell", "callable step and param_shapes", f"{type(step).__name__}, "
                   f"{type(param_shapes).__name__}")
    check_positive_int("make_cell", "state_factor", state_factor)
    gates = tuple(gates)
    if layout is not None:
        layout = dict(layout)
        for k, v in layout.items():
            if not isinstance(v, TensorLayout):
                raise fail("make_cell", f"layout[{k!r}] to be a TensorLayout", type(v).__name__)
    return Cell(name, step, param_shapes, state_factor, gates, layout, broadcasts, jacobian,
                builtin=False)


# --------------------------------------------------------------------------------------------------
# Built-in cells
# --------------------------------------------------------------------------------------------------
# NOTE [Layouts follow PyTorch]
# Tensor names and gate order are torch.nn's (weight_ih, weight_hh, bias_ih, bias_hh; LSTM rows
# i, f, g, o; GRU rows r, z, n with r multiplying W_hn h + b_hn). That makes interop a renaming,
# bit-exact, and lets the same layout table serve masks, anatomy and connection maps. The peephole
# LSTM has no torch.nn counterpart: it adds weight_ch (4N, N), full-matrix peepholes from c_{t-1}
# to every gate (the paper's "gates see [x, h, c]", 4N(D + 2N) weights), and a single bias (4N,).
# The steps and their closed-form Jacobians are in _cell_math.py.


def _torch_layout(gates: tuple[str, ...]) -> dict[str, TensorLayout]:
    return {"weight_ih": TensorLayout("input", gates),
            "weight_hh": TensorLayout("recurrent", gates),
            "bias_ih": TensorLayout("bias", gates), "bias_hh": TensorLayout("bias", gates)}


RNN = Cell("rnn", eq.rnn_tanh_step, torch_shapes(1), 1, RNN_GATES, _torch_layout(RNN_GATES),
           True, eq.RNN_FORM, True)
RNN_RELU = Cell("rnn_relu", eq.rnn_relu_step, torch_shapes(1), 1, RNN_GATES,
                _torch_layout(RNN_GATES), True, eq.RNN_RELU_FORM, True)
LSTM = Cell("lstm", eq.lstm_step, torch_shapes(4), 2, LSTM_GATES, _torch_layout(LSTM_GATES),
            True, eq.LSTM_FORM, True)
PEEPHOLE_LSTM = Cell(
    "peephole_lstm", eq.peephole_step, peephole_shapes, 2, LSTM_GATES,
    {"weight_ih": TensorLayout("input", LSTM_GATES),
     "weight_hh": TensorLayout("recurrent", LSTM_GATES),
     "weight_ch": TensorLayout("cell", LSTM_GATES),
     "bias": TensorLayout("bias", LSTM_GATES)},
    True, eq.PEEPHOLE_LSTM_FORM, True)
GRU = Cell("gru", eq.gru_step, torch_shapes(3), 1, GRU_GATES, _torch_layout(GRU_GATES), True,
           eq.GRU_FORM, True)
GRU_CHO = Cell("gru_cho", eq.gru_cho_step, torch_shapes(3), 1, GRU_GATES,
               _torch_layout(GRU_GATES), True, eq.GRU_CHO_FORM, True)

_REGISTRY: dict[str, Cell] = {c.name: c for c in (RNN, RNN_RELU, LSTM, PEEPHOLE_LSTM, GRU, GRU_CHO)}


def available() -> tuple[str, ...]:
    """Names of the built-in cells."""
    return tuple(_REGISTRY)


def get(cell: str | Cell) -> Cell:
    """Look up a built-in cell by name; a :class:`Cell` passes through unchanged."""
    if isinstance(cell, Cell):
        return cell
    if isinstance(cell, str) and cell in _REGISTRY:
        return _REGISTRY[cell]
    raise fail("cells.get", f"a Cell or one of {', '.join(available())}", repr(cell))


# --------------------------------------------------------------------------------------------------
# Parameters: validation, sizes, counts, layout labels
# --------------------------------------------------------------------------------------------------


def _infer_sizes(cell: Cell, params: Params) -> tuple[int, int] | None:
    """Find (D, N) with ``param_shapes(D, N)`` equal to the given shapes, or None."""
    if cell.builtin:
        w = params.get("weight_ih")
        if w is None or w.dim() != 2:
            return None
        return int(w.shape[1]), int(w.shape[0]) // len(cell.gates)
    dims = sorted({int(d) for t in params.values() for d in t.shape if int(d) > 0})
    given = {k: tuple(t.shape) for k, t in params.items()}
    for n in dims:
        for d in dims:
            try:
                if {k: tuple(v) for k, v in cell.param_shapes(d, n).items()} == given:
                    return d, n
            except Exception:  # noqa: BLE001 - a user shape function may reject sizes
                continue
    return None


def check_params(fn: str, cell: Cell, params: Params, input_size: int | None = None
                 ) -> tuple[int, int]:
    """Validate ``params`` for ``cell`` and return (D, N).

    Raises :class:`SpectrumkitError` naming a missing or unexpected tensor, a tensor of the wrong
    shape (with both shapes), a non-floating or non-finite tensor, or mixed dtypes.
    """
    if not isinstance(params, Mapping):
        raise fail(fn, "params to be a dict of tensors", type(params).__name__)
    for k, t in params.items():
        check_float_tensor(fn, f"params[{k!r}]", t)
    dtypes = {t.dtype for t in params.values()}
    if len(dtypes) > 1:
        raise fail(fn, "every parameter tensor to share one dtype", sorted(map(str, dtypes)))
    sizes = _infer_sizes(cell, params)
    if sizes is None:
        # Report against the most plausible sizes, so the message names a tensor and both shapes.
        if input_size is None:
            raise fail(fn, f"parameters of {cell.name} named {sorted(_example_names(cell))}",
                       {k: tuple(t.shape) for k, t in params.items()})
        sizes = (input_size, _guess_hidden(cell, params))
    D, N = (sizes[0] if input_size is None else input_size), sizes[1]
    expected = cell.param_shapes(D, N)
    for k, shape in expected.items():
        if k not in params:
            raise fail(fn, f"params to contain {k!r} of shape {tuple(shape)}",
                       f"tensors {sorted(params)}")
        if tuple(params[k].shape) != tuple(shape):
            raise fail(fn, f"params[{k!r}] of shape {tuple(shape)} (D={D}, N={N})",
                       f"shape {tuple(params[k].shape)}")
    extra = sorted(set(params) - set(expected))
    if extra:
        raise fail(fn, f"only the tensors {sorted(expected)}", f"also {extra}")
    return D, N


def _example_names(cell: Cell) -> list[str]:
    try:
        return list(cell.param_shapes(1, 1))
    except Exception:  # noqa: BLE001 - a user shape function may reject sizes 1, 1
        return []


def _guess_hidden(cell: Cell, params: Params) -> int:
    for k in ("weight_hh", "weight_ch"):
        if k in params and params[k].dim() == 2:
            return int(params[k].shape[1])
    return 1


def count_params(cell: str | Cell, input_size: int, hidden_size: int, include_bias: bool = False
                 ) -> int:
    """Number of parameter entries of ``cell`` at (D, N); weights only unless ``include_bias``."""
    cell = get(cell)
    check_positive_int("count_params", "input_size", input_size)
    check_positive_int("count_params", "hidden_size", hidden_size)
    total = 0
    for name, shape in cell.param_shapes(input_size, hidden_size).items():
        if include_bias or not cell.is_bias(name):
            n = 1
            for d in shape:
                n *= int(d)
            total += n
    return total


def require_layout(fn: str, cell: Cell) -> Cell:
    """``cell`` itself if it has a layout (gates and blocks of every entry), else one line.

    Everything that groups entries by gate or block (anatomy, connection maps, balancing,
    entry labels) asks for the layout through this one check.
    """
    if cell.layout is None:
        raise fail(fn, "a cell with a layout (make_cell(..., layout=...))",
                   f"cell {cell.name!r} without one")
    return cell


def entry_labels(cell: str | Cell, input_size: int, hidden_size: int
                 ) -> dict[str, tuple[torch.Tensor, str]]:
    """Label every parameter entry with its gate and block.

    Returns ``{name: (gate_index, block)}`` where ``gate_index`` is a long tensor of the parameter's
    shape holding the index into ``cell.gates`` of each entry, and ``block`` is one of
    :data:`BLOCKS`.

    >>> g, block = entry_labels("gru", 2, 3)["weight_hh"]
    >>> block, g[:, 0].tolist()
    ('recurrent', [0, 0, 0, 1, 1, 1, 2, 2, 2])
    """
    cell = get(cell)
    check_positive_int("entry_labels", "input_size", input_size)
    check_positive_int("entry_labels", "hidden_size", hidden_size)
    layout = require_layout("entry_labels", cell).layout
    assert layout is not None  # require_layout refuses a cell without one
    out: dict[str, tuple[torch.Tensor, str]] = {}
    for name, shape in cell.param_shapes(input_size, hidden_size).items():
        if name not in layout:
            raise SpectrumkitError(f"entry_labels: expected a layout entry for {name!r}, got "
                                   f"layout keys {sorted(layout)}")
        lay = layout[name]
        rows = int(shape[0])
        g = len(lay.gates)
        if rows % g:
            raise fail("entry_labels", f"{name} rows divisible by {g} gates", rows)
        idx = torch.arange(g).repeat_interleave(rows // g)
        idx = torch.tensor([cell.gates.index(lay.gates[i]) for i in idx.tolist()], dtype=torch.long)
        out[name] = (idx.view(-1, *([1] * (len(shape) - 1))).expand(*shape).clone(), lay.block)
    return out
