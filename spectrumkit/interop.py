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

The GRU of the paper's authors (their TensorFlow code, not torch.nn) maps onto ``gru_cho``:
:func:`authors_gru_params` converts the kernel they score, :func:`authors_trained_gru` turns a
scored ``gru_cho`` and its masks into the cell their code trains (NOTE [The authors' GRU]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from .cells import GRU_CHO, Cell, check_params, get
from .errors import check_bool_tensor, check_float_tensor, fail

__all__ = ["authors_gru_params", "authors_trained_gru", "from_torch", "to_torch"]

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
    given); ``kind="cell"`` gives the ``*Cell`` version. The module's parameters are copies, with
    the dtype and device of ``params``. The peephole LSTM and user cells have no torch.nn
    counterpart and are refused.
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


# --------------------------------------------------------------------------------------------------
# The authors' GRU (Zhang & Stadie's TensorFlow code; docs/authors-code.md §1, §2, §6)
# --------------------------------------------------------------------------------------------------
# NOTE [The authors' GRU]
# The cell their code SCORES (``SparseDummyGRUCell``) has one kernel K of shape (D+N, 3N) acting on
# the row vector [x; h], with column blocks (r, z_a, candidate) and a fixed +0.1 on every
# pre-activation (their bias tensor is zero and not scored):
#
#     r   = σ([x; h] K_r + 0.1)        z_a = σ([x; h] K_z + 0.1)
#     n   = tanh([x; r ⊙ h] K_n + 0.1)                            (reset BEFORE the product)
#     h'  = (1 - z_a) ⊙ h + z_a ⊙ n                                (z_a weights the NEW candidate)
#
# ``gru_cho`` (NOTE [GRU with the reset before the product] in cells.py) has the same reset but
# torch's / Keras' / Cho's update h' = (1 - z) ⊙ n + z ⊙ h, where z weights the OLD state. The two
# agree when z = 1 - z_a = σ(-[x; h] K_z - 0.1), i.e. with the z block NEGATED and its constant
# -0.1. :func:`authors_gru_params` therefore returns
#
#     weight_ih = [K_r; -K_z; K_n][:D]ᵀ stacked by gate,  weight_hh = the same for the last N rows,
#     bias_ih   = (+c, -c, +c) per gate (r, z, n),        bias_hh   = 0,
#
# with c = 0.1, and ``unroll("gru_cho", ...)`` then equals their cell to rounding (σ(-a) vs
# 1 - σ(a)): tests/test_init_interop.py transcribes §1 and checks 1e-12 in float64. Putting the
# constant in bias_ih is a choice; b_hn is outside r in this form, so bias_hh would do as well.
#
# An INIT with their scored cell's distribution is ``init.AUTHORS_GRU_INIT``,
# ``"normal:0.07;bias_ih=constant:0.1,-0.1,0.1"``: their kernel is N(0, 0.07²) entrywise (§2),
# and a centred Gaussian is symmetric, so negating the z block changes nothing in distribution;
# the constants are exact, with z's negated; bias_hh stays zero. (The tensor override
# ``bias_ih=`` is needed because the ``bias`` block covers bias_ih AND bias_hh, whose sum would
# double the constant; ``constant:C1,...,CG`` gives one value per gate.)
#
# The cell their code TRAINS (``SparseGRUCell``, §6) has the same reset-before-product form and
# update convention, the kept weights with their scored values, one zero-initialized trainable
# bias per pre-activation and NO +0.1, and it reads the scored column blocks permuted: r from
# block 0, its update gate z_a' from block 2 (scored as the candidate), its candidate from block 1
# (scored as z). In gru_cho's convention (z' = 1 - z_a', z rows negated) that is, in terms of the
# SCORED gru_cho rows (whose z rows are already -K_zᵀ):
#
#     trained r rows = scored r rows
#     trained z rows = -(scored n rows)       (= -K_nᵀ: block 2, negated for z = 1 - z_a')
#     trained n rows = -(scored z rows)       (= +K_zᵀ: block 1)
#     masks: r kept, z ← scored n mask, n ← scored z mask (a sign does not change a mask).
#
# Biases: both tensors zero; bias_hh is held at 0 by an all-False mask, so the cell has exactly one
# trainable bias per pre-activation, as theirs (two free copies would receive equal gradients and,
# under Adam, move their sum twice as fast). Negated rows train identically: Adam, SGD and weight
# decay are equivariant under a fixed per-entry sign flip (the gradient flips, v does not), so the
# trajectory is theirs with those entries negated; the test trains both for a few Adam steps.


def _authors_kernel(fn: str, kernel: torch.Tensor) -> tuple[int, int]:
    check_float_tensor(fn, "kernel", kernel)
    if kernel.dim() != 2 or kernel.shape[1] % 3 or kernel.shape[0] <= kernel.shape[1] // 3 \
            or kernel.shape[1] == 0:
        raise fail(fn, "kernel of shape (D+N, 3N) with D, N >= 1 (column blocks r, z, candidate)",
                   f"shape {tuple(kernel.shape)}")
    N = kernel.shape[1] // 3
    return kernel.shape[0] - N, N


def authors_gru_params(kernel: torch.Tensor, *, constant: float = 0.1) -> dict[str, torch.Tensor]:
    r"""``gru_cho`` parameters computing the authors' scored GRU with kernel ``kernel``.

    The authors' cell (Zhang & Stadie 2020, their code; NOTE [The authors' GRU]):
    :math:`r = σ([x;h]K_r + c)`, :math:`z_a = σ([x;h]K_z + c)`,
    :math:`n = \tanh([x; r⊙h]K_n + c)`, :math:`h' = (1-z_a)h + z_a n`. With the returned params,
    ``gru_cho`` (Cho et al. 2014) computes the same h' (its z is :math:`1 - z_a`, so the z block is
    negated and its constant is -c).

    Args:
        kernel: (D+N, 3N) acting on the row vector [x; h], column blocks r, z, candidate.
        constant: c, added to every pre-activation (0.1 in their code).

    Returns:
        ``{"weight_ih": (3N, D), "weight_hh": (3N, N), "bias_ih": (3N,), "bias_hh": (3N,)}``, new
        tensors with the kernel's dtype and device.

    >>> import torch
    >>> K = torch.arange(12.0, dtype=torch.float64).view(4, 3)   # D = 3, N = 1
    >>> p = authors_gru_params(K)
    >>> p["weight_hh"].flatten().tolist(), p["bias_ih"].tolist()
    ([9.0, -10.0, 11.0], [0.1, -0.1, 0.1])
    """
    fn = "authors_gru_params"
    D, N = _authors_kernel(fn, kernel)
    if isinstance(constant, bool) or not isinstance(constant, (int, float)) \
            or not math.isfinite(constant):
        raise fail(fn, "constant to be a finite number", repr(constant))
    sign = kernel.new_tensor([1.0, -1.0, 1.0]).repeat_interleave(N)      # (3N,): z negated
    w = kernel.detach().T * sign[:, None]                                # (3N, D+N)
    return {"weight_ih": w[:, :D].clone(), "weight_hh": w[:, D:].clone(),
            "bias_ih": sign * float(constant), "bias_hh": kernel.new_zeros(3 * N)}


def authors_trained_gru(params: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
                        ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    r"""The ``gru_cho`` the authors' code trains, from the scored ``gru_cho`` and its masks.

    Their trained cell (docs/authors-code.md §6; NOTE [The authors' GRU]) reads the scored column
    blocks permuted: r from block 0, the update gate from block 2 (scored as the candidate), the
    candidate from block 1 (scored as z); its biases are zero and trainable, with no +0.1. In
    ``gru_cho``'s convention:

    .. math::  W'_r = W_r,\quad W'_z = -W_n,\quad W'_n = -W_z \quad (\text{ih and hh rows}),
               \qquad b' = 0,

    and the masks move with the rows (z ← n's, n ← z's). The returned masks also hold
    ``bias_hh`` at 0 (all False), so that one bias per pre-activation trains, as in theirs; note
    that a density computed over all returned masks then counts those 3N biases.

    Args:
        params: the scored ``gru_cho`` parameters, e.g. from :func:`authors_gru_params` or
            ``init_params("gru_cho", ..., AUTHORS_GRU_INIT)``. Their biases are dropped.
        masks: ``{name: bool tensor}`` for ``weight_ih`` and ``weight_hh`` (required), and
            optionally ``bias_ih`` (permuted like the rows; a given ``bias_hh`` is replaced).

    Returns:
        ``(params, masks)``: new tensors; the params are not masked (training holds the mask).

    >>> import torch
    >>> p = authors_gru_params(torch.arange(12.0).view(4, 3))     # D = 3, N = 1
    >>> m = {k: torch.tensor([[True], [False], [True]]).expand(3, n) for k, n in
    ...      (("weight_ih", 3), ("weight_hh", 1))}
    >>> q, mq = authors_trained_gru(p, m)
    >>> q["weight_hh"].flatten().tolist(), mq["weight_hh"].flatten().tolist(), mq["bias_hh"].any()
    ([9.0, -11.0, 10.0], [True, True, False], tensor(False))
    """
    fn = "authors_trained_gru"
    _, N = check_params(fn, GRU_CHO, params)
    if not isinstance(masks, Mapping):
        raise fail(fn, "masks to be a dict {tensor name: bool tensor}", type(masks).__name__)
    unknown = sorted(set(masks) - set(params))
    if unknown:
        raise fail(fn, f"mask names among {sorted(params)}", unknown)
    for name in ("weight_ih", "weight_hh"):
        if name not in masks:
            raise fail(fn, "masks for weight_ih and weight_hh", f"tensors {sorted(masks)}")
    for name, m in masks.items():
        check_bool_tensor(fn, f"masks[{name!r}]", m, params[name].shape)
    r, z, n = slice(0, N), slice(N, 2 * N), slice(2 * N, 3 * N)

    def swap(t: torch.Tensor, negate: bool) -> torch.Tensor:
        zt, nt = (-t[n], -t[z]) if negate else (t[n], t[z])
        return torch.cat([t[r], zt, nt]).clone()

    out = {k: swap(params[k].detach(), True) for k in ("weight_ih", "weight_hh")}
    out.update({k: torch.zeros_like(params[k]) for k in ("bias_ih", "bias_hh")})
    out_masks = {k: swap(m, False) for k, m in masks.items() if k != "bias_hh"}
    out_masks["bias_hh"] = torch.zeros(3 * N, dtype=torch.bool, device=params["bias_hh"].device)
    return out, out_masks
