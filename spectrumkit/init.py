r"""Seeded initialization schemes for cell parameters, parsed from strings.

Grammar (one scheme)::

    glorot              Xavier normal:  N(0, 2 / (fan_in + fan_out))
    glorot_uniform      Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    he                  Kaiming normal: N(0, 2 / fan_in)
    normal:STD          N(0, STD^2)                      e.g. normal:0.1
    uniform:A,B         U(A, B)                          e.g. uniform:0,0.1
    orthogonal          a (semi-)orthogonal matrix per gate block (QR of a Gaussian, signs fixed)
    torch               PyTorch's default for the module: U(-1/sqrt(N), 1/sqrt(N))
    zero                all zeros
    constant:C          every entry C                    e.g. constant:0.1
    constant:C1,...,CG  gate g's rows C_g, one value per gate of the tensor (NOTE [Constants])

Per-block overrides join ``block=scheme`` items with ``;``, with an optional bare default first::

    glorot;recurrent=orthogonal        glorot everywhere except the recurrent block

or pass a dict ``{"default": "glorot", "recurrent": "orthogonal"}``. Blocks are ``input``,
``recurrent``, ``cell`` (peephole) and ``bias``. An override may also name one tensor of the cell
(``weight_ih``, ``bias_hh``, ...); it wins over its block's scheme::

    normal:0.07;bias_ih=constant:0.1,-0.1,0.1    the authors' scored GRU in distribution

(:data:`AUTHORS_GRU_INIT`, NOTE [The authors' GRU] in ``interop.py``).

NOTE [Constants]
``constant:C`` fills every entry with C and draws nothing (the generator is still required, as for
every scheme, and is left where it was). ``constant:C1,...,CG`` gives gate g's row block the value
C_g; it needs exactly as many values as the tensor has gates (3 for a GRU's tensors, 4 for an
LSTM's), and is refused otherwise. Both serve biases, e.g. the +0.1 the authors add to every
pre-activation, which for ``gru_cho`` becomes +0.1, -0.1, +0.1 on (r, z, n).

NOTE [Fans per gate]
Every weight matrix stacks G gate blocks of N rows. Fans are taken per gate block, as if each gate
were its own dense layer: for ``weight_ih`` of a GRU, fan_in = D and fan_out = N (not 3N). The
orthogonal scheme is likewise orthogonal per gate block.

Biases are zero unless asked otherwise: pass ``bias=SCHEME`` (or a ``bias=`` item in the scheme
string), or use the ``torch`` scheme, whose biases follow PyTorch's default as well.

The global RNG is never touched: every draw uses the ``generator`` given, or a fresh one seeded
from ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ._init_spec import AUTHORS_GRU_INIT, Scheme, parse_scheme, parse_spec
from .cells import BLOCKS, Cell, get
from .errors import SpectrumkitError, check_positive_int, fail

__all__ = ["AUTHORS_GRU_INIT", "init_params", "make_generator", "parse_scheme"]

# NOTE [One draw]
# A seed means the same numbers in every dtype: random values are drawn (and scaled) in float32,
# DRAW_DTYPE, and then cast to the dtype asked for, so a float64 model is EXACTLY the float32
# model cast to float64 and a float64 run can check the precision of a float32 run. The
# orthogonal scheme is computed in float64 (QR) for every dtype and then cast; constants
# (``zero``, ``constant:C``) are made in the dtype asked for, so they are exact in every dtype.
# The models' heads and embeddings and the CLI's Gaussian batches follow the same rule.
DRAW_DTYPE = torch.float32


def make_generator(generator: torch.Generator | None, seed: int | None, fn: str
                   ) -> torch.Generator:
    """Return ``generator``, or a new CPU generator seeded with ``seed``; exactly one is given."""
    if (generator is None) == (seed is None):
        raise fail(fn, "exactly one of generator= or seed=", "both" if generator is not None
                   else "neither")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise fail(fn, "generator to be a torch.Generator", type(generator).__name__)
        return generator
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise fail(fn, "seed to be an int", repr(seed))
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _draw(s: Scheme, shape: tuple[int, ...], fan_in: int, fan_out: int, hidden: int,
          g: torch.Generator, dtype: torch.dtype, gate: int = 0) -> torch.Tensor:
    """Draw gate block number ``gate`` of ``shape`` (CPU)."""
    if s.kind == "zero":
        return torch.zeros(shape, dtype=dtype)
    if s.kind == "constant":  # NOTE [Constants]; the value count was checked against the gates
        return torch.full(shape, s.args[gate if len(s.args) > 1 else 0], dtype=dtype)
    if s.kind == "glorot":
        return torch.randn(shape, generator=g, dtype=dtype) * math.sqrt(2.0 / (fan_in + fan_out))
    if s.kind == "glorot_uniform":
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return (torch.rand(shape, generator=g, dtype=dtype) * 2 - 1) * a
    if s.kind == "he":
        return torch.randn(shape, generator=g, dtype=dtype) * math.sqrt(2.0 / fan_in)
    if s.kind == "normal":
        return torch.randn(shape, generator=g, dtype=dtype) * s.args[0]
    if s.kind == "uniform":
        a, b = s.args
        return torch.rand(shape, generator=g, dtype=dtype) * (b - a) + a
    if s.kind == "torch":
        k = 1.0 / math.sqrt(hidden)
        return (torch.rand(shape, generator=g, dtype=dtype) * 2 - 1) * k
    if s.kind == "orthogonal":
        if len(shape) == 1:
            raise SpectrumkitError("init_params: expected orthogonal only for weight blocks, got "
                                   "it for a bias (use bias=zero or another scheme)")
        rows, cols = shape
        gauss = torch.randn(max(rows, cols), min(rows, cols), generator=g, dtype=torch.float64)
        q, r = torch.linalg.qr(gauss)
        sign = torch.sign(torch.diagonal(r))
        q = q * torch.where(sign == 0, torch.ones_like(sign), sign)
        q = q if rows >= cols else q.T
        return q.to(dtype)
    raise AssertionError(s.kind)  # parse_scheme admits nothing else


def init_params(
    cell: str | Cell,
    input_size: int,
    hidden_size: int,
    scheme: str | Mapping[str, str] = "glorot",
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    bias: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    r"""Initialize the parameters of ``cell`` at (D, N) = (input_size, hidden_size).

    Every gate block of every tensor is drawn separately, in the order of ``cell.param_shapes`` and
    of the gates, from ``generator`` (or a fresh generator seeded with ``seed``; exactly one of the
    two is required). The global RNG is never touched. Draws happen on the CPU and are then moved to
    ``device``, so a seed gives the same numbers on every device.

    Biases are zero unless asked otherwise (``bias=SCHEME``, a ``bias=`` override, or the ``torch``
    scheme, which follows PyTorch's default for biases too). See the module docstring for the
    grammar and NOTE [Fans per gate].

    Returns ``{name: tensor}`` with the shapes of ``cell.param_shapes(D, N)``.

    >>> p = init_params("gru", 2, 3, "normal:0.1", seed=0)
    >>> sorted(p), tuple(p["weight_hh"].shape), float(p["bias_ih"].abs().sum())
    (['bias_hh', 'bias_ih', 'weight_hh', 'weight_ih'], (9, 3), 0.0)
    """
    fn = "init_params"
    cell = get(cell)
    check_positive_int(fn, "input_size", input_size)
    check_positive_int(fn, "hidden_size", hidden_size)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise fail(fn, "a floating dtype", repr(dtype))
    if device is not None and torch.device(device).type == "meta":
        raise fail(fn, "a device that holds data (cpu or cuda)", "meta")
    per_block = parse_spec(scheme, bias, set(cell.param_shapes(input_size, hidden_size)))
    g = make_generator(generator, seed, fn)
    out: dict[str, torch.Tensor] = {}
    for name, shape in cell.param_shapes(input_size, hidden_size).items():
        shape = tuple(int(d) for d in shape)
        if cell.layout is not None and name in cell.layout:
            block, n_gates = cell.layout[name].block, len(cell.layout[name].gates)
        else:
            block, n_gates = ("bias" if cell.is_bias(name) else "recurrent"), 1
        s = per_block[name] if name in per_block and name not in BLOCKS else per_block[block]
        rows = shape[0]
        if rows % n_gates:
            raise fail(fn, f"{name} rows divisible by {n_gates} gates", rows)
        if s.kind == "constant" and len(s.args) not in (1, n_gates):
            gates = ", ".join(cell.layout[name].gates) if n_gates > 1 and cell.layout else "one"
            raise fail(fn, f"constant with 1 value or {n_gates} (one per gate: {gates}) for "
                       f"{name} ({block} block)", str(s))
        block_shape = (rows // n_gates, *shape[1:])
        fan_out = block_shape[0]
        fan_in = block_shape[1] if len(block_shape) > 1 else block_shape[0]
        exact = s.kind in ("orthogonal", "zero", "constant")
        draw = dtype if exact else DRAW_DTYPE  # NOTE [One draw]
        parts = [_draw(s, block_shape, fan_in, fan_out, hidden_size, g, draw, k).to(dtype)
                 for k in range(n_gates)]
        t = torch.cat(parts, dim=0)
        if not bool(torch.isfinite(t).all()):
            raise fail(fn, f"finite initial values (scheme {s} in {DRAW_DTYPE})",
                       f"{int((~torch.isfinite(t)).sum())} NaN/Inf entries of {t.numel()} in "
                       f"{name}")
        out[name] = t.to(device=device)
    return out
